"""Scoring the frames-as-prompts tasks (issue 10's table) on Moving Shapes validation clips.

A spec-correct clip's whole trajectory follows from its first frame and its caption, so each
task is scored against the reference clip it was given frames of: prompt accuracy (metrics.py;
for a story, each scene's motion), PSNR of the frames it was given, and the object's centroid
at the frames it had to invent (distance in pixels to the reference's, for a story the jump
across the seam; within 3 px is the goal); `both` counts videos that are right on both.

Reference clips: validation example i (moving_shapes.example) for i < 64, one per seen
combination; prompts in the spec's first template. Each task runs once per seed.
"""

import numpy as np

from sora_lite import metrics
from sora_lite.captions import spec_captions
from sora_lite.datasets.moving_shapes import COLORS, SEEN, example

TASKS = ("image_to_video", "extend_forward", "extend_backward", "connect", "interpolate", "edit", "story")
REVERSE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def references(frames: int, height: int, width: int, count: int = len(SEEN)) -> tuple[np.ndarray, list[tuple]]:
    """(uint8 [N, T, H, W, 3] validation clips, their subjects): the first `count`, one per seen
    combination (64)."""
    clips = [example("validation", i, height, width, frames) for i in range(count)]
    return np.stack([c["video"] for c in clips]), [(c["color"], c["shape"], c["direction"]) for c in clips]


def centroid(frame: np.ndarray, color: str) -> np.ndarray | None:
    """(row, column) of the pixels of `color`'s object in a uint8 [H, W, 3] frame, or None."""
    mask = metrics.object_mask(frame[None], metrics.COLOR_NAMES.index(color))[0]
    return np.argwhere(mask).mean(0) if mask.any() else None


def distance(a: np.ndarray, b: np.ndarray, color: str, color_b: str | None = None) -> float:
    """Pixels between the centroids of `color`'s object in frame a and `color_b`'s (default: the
    same) in frame b; inf when one lacks it."""
    ca, cb = centroid(a, color), centroid(b, color_b or color)
    return float(np.inf) if ca is None or cb is None else float(np.linalg.norm(ca - cb))


def _summary(correct: list[bool], distances: list[float], psnrs: list[float] | None = None) -> dict:
    d, ok = np.asarray(distances), np.asarray(correct)
    out = {"accuracy": 100.0 * float(ok.mean()), "within_3px": 100.0 * float(np.mean(d <= 3)),
           "both": 100.0 * float(np.mean(ok & (d <= 3))), "median_px": float(np.median(d)), "n": len(correct)}
    if psnrs is not None:
        out["given_psnr"] = float(np.mean(psnrs))
    return out


def _other_color(color: str) -> str:
    names = list(COLORS)
    return names[(names.index(color) + 3) % len(names)]  # the palette's opposite: a clear change


def evaluate(pipe, frames: int = 17, height: int = 32, width: int = 32, seeds=(0, 1), tasks=TASKS,
             clips: int = len(SEEN), **kwargs) -> dict:
    """{task: {"accuracy", "within_3px", "both", "median_px", "n"[, "given_psnr"]}} for `pipe` at one shape
    on the first `clips` references; `kwargs` (steps, guidance) go to every call. T must be 17
    or more (extend is given 9 frames)."""
    if frames < 17:
        raise ValueError(f"the frame tasks need at least 17 frames; got {frames}")
    if not 1 <= clips <= len(SEEN):
        raise ValueError(f"clips must be 1 to {len(SEEN)} (one per seen combination); got {clips}")
    ref, subjects = references(frames, height, width, clips)  # [N, T, H, W, 3]
    prompts = [spec_captions(s)[0] for s in subjects]
    T, mid, colors = frames, frames // 2, [s[0] for s in subjects]
    results = {}
    for task in tasks:
        correct, dist, psnrs = [], [], []
        for seed in seeds:
            run = dict(seed=seed, **kwargs)
            if task == "story":  # correct: each scene moves the way its prompt says
                for prompt, s in zip(prompts, subjects):
                    second = (s[0], s[1], REVERSE[s[2]])
                    out = pipe.story([prompt, spec_captions(second)[0]], T, **run)[0]  # [2T, H, W, 3]
                    correct.append(metrics.score_video(out[:T], *s)["direction_ok"]
                                   and metrics.score_video(out[T:], *second)["direction_ok"])
                    dist.append(distance(out[T - 1], out[T], s[0]))  # the seam
                continue
            if task == "image_to_video":
                out = pipe.image_to_video(prompts, ref[:, 0], T, **run)
                given, judged = slice(0, 1), T - 1
            elif task == "extend_forward":
                out = pipe.extend(prompts, ref[:, :9], T, **run)
                given, judged = slice(0, 9), T - 1
            elif task == "extend_backward":
                out = pipe.extend(prompts, ref[:, T - 8 :], T, backward=True, **run)
                given, judged = slice(T - 8, T), 0
            elif task == "connect":
                out = pipe.connect(prompts, ref[:, 0], ref[:, T - 1], T, **run)
                given, judged = None, mid
            elif task == "interpolate":
                out = pipe.interpolate(prompts, ref[:, [0, mid, T - 1]], T, **run)
                given, judged = None, mid // 2
            elif task == "edit":
                edited = [(_other_color(c), sh, d) for c, sh, d in subjects]
                out = pipe.edit([spec_captions(s)[0] for s in edited], ref, **run)
                for o, r, s, c in zip(out, ref, edited, colors):
                    correct.append(metrics.score_video(o, *s)["correct"])
                    dist.append(float(np.mean([distance(o[f], r[f], s[0], c) for f in range(T)])))
                continue
            else:
                raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
            for o, r, s in zip(out, ref, subjects):
                correct.append(metrics.score_video(o, *s)["correct"])
                dist.append(distance(o[judged], r[judged], s[0]))
                if given is not None:
                    psnrs.append(metrics.psnr(o[given], r[given]))
        results[task] = _summary(correct, dist, psnrs if psnrs else None)
    return results

