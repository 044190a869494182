"""Scoring a video of a Camera Moves prompt (spec v1, "Scoring a generated video"), in numpy.

- **Move**: on screen every move is a fixed transform of frame 0 about the canvas centre,
  whatever the photo: pans shift the content by 0.3 f of the canvas (the opposite way),
  zooms magnify it by 0.6 ** -f (in) or 0.6 ** f (out), rotations turn it by 30 f degrees
  (counterclockwise when the camera turns clockwise). Each of the 8 moves and `still` warps
  frame 0 to every later frame; the mean squared error over the pixels that stay in view,
  summed over frames, is lowest for the video's move.
- **Subject**: each photo is resampled, like the renderer samples it, at the window sizes
  the spec's starts can have; the photo whose best axis-aligned window (every position) is
  nearest frame 0 in mean squared error is the video's subject. Both sides are smoothed
  alike first (a 1-pixel Gaussian), so a blurred video does not favour a smoother photo.
A video is correct when both match the prompt.
"""

import functools
import re

import numpy as np
from scipy.fft import irfft2, next_fast_len, rfft2
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from sora_lite.datasets.camera_moves import HELDOUT, MOVES, PAN, ROTATE, SEEN, SUBJECTS, ZOOM, caption, photo, sample

STILL = "still"
SMOOTH = (1.0, 1.0, 0.0)  # Gaussian sigma (canvas pixels) on frame and windows alike: blur-robust subjects


def parse_prompt(prompt: str) -> tuple[str, str]:
    """(subject, move) named in a caption in the spec's words."""
    text = " ".join(re.findall(r"[a-z]+", prompt.lower()))
    subjects = [s for s in SUBJECTS if re.search(rf"\b{s}\b", text)]
    moves = [m for m in MOVES if re.search(rf"\b{m}\b", text)]
    if len(subjects) != 1 or len(moves) != 1:
        raise ValueError(f"cannot parse prompt {prompt!r}: expected one subject of {SUBJECTS} and one move of {MOVES}")
    return subjects[0], moves[0]


def warp_source(move: str, f: float, x: np.ndarray, y: np.ndarray, width: int, height: int):
    """Where in frame 0 the content at screen points (x, y) of the frame at fraction f came from."""
    cx, cy = width / 2, height / 2
    if move.startswith("pans"):
        dx, dy = {"left": (PAN * width, 0), "right": (-PAN * width, 0), "up": (0, PAN * height),
                  "down": (0, -PAN * height)}[move.split()[1]]
        return x - dx * f, y - dy * f
    if move.startswith("zooms"):
        m = ZOOM ** (-f if move == "zooms in" else f)  # magnification of the content
        return cx + (x - cx) / m, cy + (y - cy) / m
    if move.startswith("rotates"):
        # The content turns counterclockwise on screen (y down) when the camera turns clockwise.
        t = np.deg2rad(ROTATE * f if move == "rotates clockwise" else -ROTATE * f)
        c, s = np.cos(t), np.sin(t)
        return cx + c * (x - cx) - s * (y - cy), cy + s * (x - cx) + c * (y - cy)
    return x, y  # still


def move_errors(video: np.ndarray) -> dict:
    """{move: mean squared error of frame 0 warped by it, summed over the later frames}."""
    video = np.asarray(video, np.float64)
    T, H, W, _ = video.shape
    x, y = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    errors = {}
    for move in (*MOVES, STILL):
        total = 0.0
        for t in range(1, T):
            sx, sy = warp_source(move, t / (T - 1), x, y, W, H)
            inside = (sx >= 0.5) & (sx <= W - 0.5) & (sy >= 0.5) & (sy <= H - 0.5)
            if inside.any():
                predicted = sample(video[0], sx, sy)
                total += float(np.mean((predicted[inside] - video[t][inside]) ** 2))
        errors[move] = total
    return errors


@functools.cache
def _lattices(height: int, width: int) -> dict:
    """{subject: [(sum of window^2 at every position [Hv, Wv], the window's FFT [3, P, Q'], (P, Q))]}
    for the photo resampled at each start window size: a window of the canvas size in one of
    these, at any position, is the view of an axis-aligned camera of that size. What does not
    depend on the frame is computed here once per canvas size."""
    aspect = width / height
    out = {}
    for subject in SUBJECTS:
        image = photo(subject)
        ph, pw = image.shape[:2]
        base = min(ph, pw / aspect)
        # start sizes u in [0.5, 0.7] (x 0.9 per retry), and zooms out's first frame at 0.6 of that
        sizes = base * np.geomspace(0.6 * 0.5 * 0.9**2, 0.7, 16)
        grids = []
        for s in sizes:
            step = s / height  # photo pixels per canvas pixel
            xs, ys = np.arange(0.5 * step, pw, step), np.arange(0.5 * step, ph, step)
            if len(xs) >= width and len(ys) >= height:
                gx, gy = np.meshgrid(xs, ys)
                grid = gaussian_filter(sample(image, gx, gy), SMOOTH)  # [Hg, Wg, 3]
                size = (next_fast_len(grid.shape[0] + height - 1), next_fast_len(grid.shape[1] + width - 1))
                sq = fftconvolve(np.sum(grid**2, -1), np.ones((height, width)), "valid")  # [Hv, Wv]
                grids.append((sq, rfft2(np.moveaxis(grid, -1, 0), size), size))
        out[subject] = grids
    return out


def subject_errors(frame: np.ndarray) -> dict:
    """{subject: the lowest mean squared error of any window of its photo against `frame`}."""
    frame = gaussian_filter(np.asarray(frame, np.float64), SMOOTH)
    H, W, _ = frame.shape
    flipped = np.moveaxis(frame[::-1, ::-1], -1, 0)  # [3, H, W]: correlation as a convolution
    transforms = {}  # the frame's FFT at each padded size
    errors = {}
    for subject, grids in _lattices(H, W).items():
        best = np.inf
        for sq, window_fft, size in grids:
            # |window - frame|^2 at every position = sum window^2 - 2 window.frame + sum frame^2
            # (correlations by FFT: every position of a large photo at once).
            if size not in transforms:
                transforms[size] = rfft2(flipped, size)
            full = irfft2(np.sum(window_fft * transforms[size], axis=0), size)  # [P, Q]
            cross = full[H - 1 : H - 1 + sq.shape[0], W - 1 : W - 1 + sq.shape[1]]  # the "valid" positions
            best = min(best, float(np.min(sq - 2 * cross)) + float(np.sum(frame**2)))
        errors[subject] = max(best, 0.0) / frame.size
    return errors


def score_video(video: np.ndarray, subject: str, move: str) -> dict:
    """Predicted subject and move of a uint8 [T, H, W, 3] video, and whether each matches."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] < 2:
        raise ValueError(f"expected a video [T >= 2, H, W, 3]; got shape {video.shape}")
    moves, subjects = move_errors(video), subject_errors(video[0])
    pred = {"subject": min(subjects, key=subjects.get), "move": min(moves, key=moves.get)}
    result = dict(pred, subject_ok=pred["subject"] == subject, move_ok=pred["move"] == move)
    result["correct"] = result["subject_ok"] and result["move_ok"]
    return result


def accuracy(videos, prompts) -> dict:
    """Percent correct overall, per subject and per move, over videos of `prompts` (spec words)."""
    scores = [score_video(v, *parse_prompt(p)) for v, p in zip(videos, prompts, strict=True)]
    pct = lambda k: 100.0 * float(np.mean([s[k] for s in scores]))  # noqa: E731
    return {"accuracy": pct("correct"), "subject": pct("subject_ok"), "move": pct("move_ok"), "n": len(scores)}


def evaluate_pipeline(pipe, frames: int = 17, height: int = 32, width: int = 32, seeds=(0, 1),
                      batch_size: int = 64, **generate_kwargs) -> dict:
    """Prompt accuracy of `pipe` (subject and move apart) over the seen and the held-out
    combinations at one shape, the spec's first template, every prompt once per seed."""
    results = {}
    for name, combos in (("seen", SEEN), ("heldout", HELDOUT)):
        prompts = [caption(s, m) for s, m in combos]
        videos = [v for seed in seeds for i in range(0, len(prompts), batch_size)
                  for v in np.asarray(pipe.generate(prompts[i : i + batch_size], num_frames=frames, height=height,
                                                    width=width, seed=seed, **generate_kwargs))]
        results[name] = accuracy(videos, prompts * len(seeds))
    return results
