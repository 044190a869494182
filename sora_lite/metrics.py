"""Prompt-following metrics for Moving Shapes (spec v1, `shared/specs/moving-shapes.md`,
section "Scoring a generated video"), in plain numpy.

A video is scored without looking at its prompt: we read off the object's colour, shape
and direction from the pixels, then compare them with the prompt's words.

- **Colour, per frame**: each bright pixel (max channel >= 100) votes for its nearest
  palette colour (Euclidean RGB); the frame's colour is the most voted one.
- **Object mask**: a pixel `p` belongs to the object of palette colour `c` when
  `alpha = <p, c> / <c, c> >= 0.5` and its distance to the colour line,
  `|p - alpha * c|`, is at most `LINE_TOLERANCE * |c|` (0.2: blur only dims a pixel
  along the line, and the closest two palette colours are 0.31 apart in this measure).
- **Shown**: a frame shows the object when its mask (in the frame's colour) has at least
  `side**2 / 8` pixels: a quarter of a triangle's area `0.5 * side**2`, with
  `side = round(0.3 * min(H, W))` the nominal bounding-box side.
- **Video colour**: the majority frame colour over the frames that show the object. A frame
  is *present* when it shows the object in the video's colour; shape and motion use those.
- **Consistency**: present in >= 90% of all frames.
- **Shape**: medians over present frames of the mask's bounding-box fill ratio and of
  its mass above / below the box's middle (pixel centres strictly above / below; a row
  exactly on the middle counts for neither): triangle when above/below < 0.6, else
  square when fill >= 0.88, else circle.
- **Motion**: least-squares line through the mask centroids (row, column) against frame
  index; its displacement over the clip `slope * (T - 1)` along the dominant axis must
  exceed `0.15 * min(H, W)`. Rows grow downwards, so `down` is increasing row. With fewer
  than two present frames (e.g. T = 1) there is no direction: `direction_ok` is False.
"""

import re

import numpy as np

from sora_lite.datasets.moving_shapes import COLORS, DIRECTIONS, HELDOUT, SEEN, SHAPES, caption

COLOR_NAMES = tuple(COLORS)
PALETTE = np.array([COLORS[name] for name in COLOR_NAMES], np.float64)  # [6, 3]

BRIGHT = 100  # a pixel is bright when its max channel is >= this
MIN_ALPHA = 0.5  # coverage along the palette colour
LINE_TOLERANCE = 0.2  # max distance to the colour line, relative to |c|
TRIANGLE_RATIO = 0.6  # above/below mass below this -> triangle
SQUARE_FILL = 0.88  # bbox fill at least this -> square
MIN_MOTION = 0.15  # displacement threshold, fraction of min(H, W)
MIN_PRESENT = 0.9  # consistency: fraction of frames with the object in the video's colour


def parse_prompt(prompt: str) -> tuple[str, str, str]:
    """(color, shape, direction) named in a caption, in any of the dataset's templates."""
    words = re.findall(r"[a-z]+", prompt.lower())
    found = []
    for vocabulary in (COLOR_NAMES, SHAPES, DIRECTIONS):
        hits = [w for w in words if w in vocabulary]
        if len(set(hits)) != 1:
            raise ValueError(f"cannot parse prompt {prompt!r}: expected exactly one of each of "
                             f"colour {COLOR_NAMES}, shape {SHAPES}, direction {DIRECTIONS}")
        found.append(hits[0])
    return tuple(found)


def min_object_area(height: int, width: int) -> float:
    """A quarter of a triangle's area, 0.25 * 0.5 * side**2, side = round(0.3 * min(H, W))."""
    side = round(0.3 * min(height, width))
    return side**2 / 8


def _frame_colours(video: np.ndarray) -> np.ndarray:
    """Palette index voted by most bright pixels of each frame, or -1 without any. [T]"""
    pixels = video.astype(np.float64)  # [T, H, W, 3]
    bright = pixels.max(-1) >= BRIGHT
    dist = ((pixels[..., None, :] - PALETTE) ** 2).sum(-1)  # [T, H, W, 6]
    nearest = dist.argmin(-1)
    votes = np.stack([((nearest == k) & bright).sum((1, 2)) for k in range(len(PALETTE))], -1)
    return np.where(votes.max(-1) > 0, votes.argmax(-1), -1)


def object_mask(video: np.ndarray, colour_index) -> np.ndarray:
    """Pixels on palette colour `colour_index` (an int, or one per frame) per the spec. [T, H, W]"""
    pixels = video.astype(np.float64)
    c = PALETTE[np.broadcast_to(colour_index, pixels.shape[:1])][:, None, None, :]  # [T,1,1,3]
    cc = (c * c).sum(-1)
    alpha = (pixels * c).sum(-1) / cc
    off_line = np.linalg.norm(pixels - alpha[..., None] * c, axis=-1)
    return (alpha >= MIN_ALPHA) & (off_line <= LINE_TOLERANCE * np.sqrt(cc))


def _shape_stats(mask: np.ndarray) -> tuple[float, float]:
    """(bounding-box fill ratio, mass above / below the box's middle) of one 2-D mask."""
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    fill = len(rows) / ((bottom - top) * (right - left))
    middle = (top + bottom) / 2  # in pixel-edge coordinates; pixel r has its centre at r + 0.5
    above = np.sum(rows + 0.5 < middle)
    below = np.sum(rows + 0.5 > middle)
    ratio = above / below if below else (np.inf if above else 1.0)
    return fill, ratio


def _classify_shape(fill: float, ratio: float) -> str:
    if ratio < TRIANGLE_RATIO:
        return "triangle"
    return "square" if fill >= SQUARE_FILL else "circle"


def _direction(masks: np.ndarray, frames: np.ndarray, T: int, min_side: int):
    """Direction of the least-squares line through the mask centroids, or None."""
    if len(frames) < 2:
        return None
    centroids = np.array([np.argwhere(m).mean(0) for m in masks])  # [n, 2] (row, col)
    t = frames - frames.mean()
    slope = (t[:, None] * (centroids - centroids.mean(0))).sum(0) / (t**2).sum()
    dy, dx = slope * (T - 1)
    if max(abs(dx), abs(dy)) <= MIN_MOTION * min_side:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def score_video(video: np.ndarray, color: str, shape: str, direction: str) -> dict:
    """Predicted attributes of a uint8 [T, H, W, 3] video and whether each matches the prompt."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected a video [T, H, W, 3]; got shape {video.shape}")
    T, H, W, _ = video.shape
    min_area = min_object_area(H, W)

    frame_colour = _frame_colours(video)
    masks = object_mask(video, np.maximum(frame_colour, 0))
    shown = (frame_colour >= 0) & (masks.sum((1, 2)) >= min_area)

    pred = {"color": None, "shape": None, "direction": None}
    present = np.zeros(T, bool)
    if shown.any():
        colour = np.bincount(frame_colour[shown], minlength=len(PALETTE)).argmax()
        pred["color"] = COLOR_NAMES[colour]
        present = shown & (frame_colour == colour)
        frames = np.flatnonzero(present)
        stats = np.array([_shape_stats(masks[f]) for f in frames])
        pred["shape"] = _classify_shape(np.median(stats[:, 0]), np.median(stats[:, 1]))
        pred["direction"] = _direction(masks[frames], frames, T, min(H, W))

    result = dict(pred)
    result["color_ok"] = pred["color"] == color
    result["shape_ok"] = pred["shape"] == shape
    result["direction_ok"] = pred["direction"] is not None and pred["direction"] == direction
    result["consistent_ok"] = bool(present.mean() >= MIN_PRESENT)
    result["correct"] = all(result[k] for k in ("color_ok", "shape_ok", "direction_ok", "consistent_ok"))
    return result


def prompt_accuracy(videos, prompts) -> dict:
    """Percent (0-100) of videos correct overall and per attribute, plus the count `n`."""
    if len(videos) != len(prompts):
        raise ValueError(f"got {len(videos)} videos for {len(prompts)} prompts")
    scores = [score_video(v, *parse_prompt(p)) for v, p in zip(videos, prompts)]
    keys = {"accuracy": "correct", "color": "color_ok", "shape": "shape_ok",
            "direction": "direction_ok", "consistency": "consistent_ok"}
    n = len(scores)
    result = {name: 100.0 * sum(s[k] for s in scores) / n if n else 0.0 for name, k in keys.items()}
    result["n"] = n
    return result


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 videos (peak 255); inf if equal."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def evaluate_pipeline(pipe, seeds=(0, 1), frames=17, height=32, width=32, batch_size=64,
                      **generate_kwargs) -> dict:
    """Prompt accuracy of `pipe` on seen (the 64 validation combos) and held-out (8) prompts.

    Every prompt is generated once per seed (first caption template), in batches of
    `batch_size`; extra keyword arguments (e.g. steps, guidance) go to `pipe.generate`.
    """
    prompt_sets = {"seen": [caption(*c) for c in SEEN], "heldout": [caption(*c) for c in HELDOUT]}
    results = {}
    for name, prompts in prompt_sets.items():
        videos, all_prompts = [], []
        for seed in seeds:
            for start in range(0, len(prompts), batch_size):
                batch = prompts[start : start + batch_size]
                out = pipe.generate(batch, num_frames=frames, height=height, width=width,
                                    seed=seed, **generate_kwargs)
                videos.extend(np.asarray(out))
                all_prompts.extend(batch)
        results[name] = prompt_accuracy(videos, all_prompts)
    return results
