"""Prompt-following metrics for Moving Shapes (spec v2, `shared/specs/moving-shapes.md`,
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
  than two present frames there is no direction: `direction_ok` is False.
- **Images** (T = 1, a prompt without motion): correct when the frame shows the object in
  the prompt's colour and shape; direction is not judged (`direction_ok` is None).
"""

import re

import numpy as np

from sora_lite.captions import heldout_caption, spec_captions
from sora_lite.datasets.moving_shapes import COLORS, DIRECTIONS, HELDOUT, SEEN, SHAPES

IMAGE_SUBJECTS = tuple((c, s, None) for c in COLORS for s in SHAPES)  # the 18 colour-shape pairs

COLOR_NAMES = tuple(COLORS)
PALETTE = np.array([COLORS[name] for name in COLOR_NAMES], np.float64)  # [6, 3]

BRIGHT = 100  # a pixel is bright when its max channel is >= this
MIN_ALPHA = 0.5  # coverage along the palette colour
LINE_TOLERANCE = 0.2  # max distance to the colour line, relative to |c|
TRIANGLE_RATIO = 0.6  # above/below mass below this -> triangle
SQUARE_FILL = 0.88  # bbox fill at least this -> square
MIN_MOTION = 0.15  # displacement threshold, fraction of min(H, W)
MIN_PRESENT = 0.9  # consistency: fraction of frames with the object in the video's colour


def parse_prompt(prompt: str) -> tuple[str, str, str | None]:
    """(color, shape, direction) named in a caption in the spec's words; direction is None for
    an image caption, which names none."""
    words = re.findall(r"[a-z]+", prompt.lower())
    found = []
    for vocabulary in (COLOR_NAMES, SHAPES, DIRECTIONS):
        hits = set(w for w in words if w in vocabulary)
        if len(hits) > 1 or not hits and vocabulary is not DIRECTIONS:
            raise ValueError(f"cannot parse prompt {prompt!r}: expected exactly one colour {COLOR_NAMES}, "
                             f"one shape {SHAPES} and at most one direction {DIRECTIONS}")
        found.append(hits.pop() if hits else None)
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


def score_video(video: np.ndarray, color: str, shape: str, direction: str | None) -> dict:
    """Predicted attributes of a uint8 [T, H, W, 3] video and whether each matches the prompt;
    `direction` None (an image prompt) leaves motion unjudged."""
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
    result["direction_ok"] = None if direction is None else pred["direction"] == direction
    result["consistent_ok"] = bool(present.mean() >= MIN_PRESENT)
    result["correct"] = all(result[k] is not False for k in ("color_ok", "shape_ok", "direction_ok", "consistent_ok"))
    return result


def accuracy(videos, subjects) -> dict:
    """Percent (0-100) of videos correct overall and per attribute, plus the count `n`, for
    videos of `subjects` (color, shape, direction or None). An attribute judged on no video
    (direction, for images) is None."""
    if len(videos) != len(subjects):
        raise ValueError(f"got {len(videos)} videos for {len(subjects)} prompts")
    scores = [score_video(v, *s) for v, s in zip(videos, subjects)]
    keys = {"accuracy": "correct", "color": "color_ok", "shape": "shape_ok",
            "direction": "direction_ok", "consistency": "consistent_ok"}
    result = {}
    for name, k in keys.items():
        judged = [s[k] for s in scores if s[k] is not None]
        result[name] = 100.0 * sum(judged) / len(judged) if judged else None
    result["n"] = len(scores)
    return result


def prompt_accuracy(videos, prompts) -> dict:
    """`accuracy` for prompts in the spec's words (parsed with `parse_prompt`)."""
    return accuracy(videos, [parse_prompt(p) for p in prompts])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 videos (peak 255); inf if equal."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def prompt_set(name: str, frames: int, seed: int = 0) -> list[tuple[str, tuple]]:
    """(prompt, subject) pairs of an evaluation set, for videos of `frames` frames:
    "seen" (the 64 validation combinations; for images, the 18 colour-shape pairs) and
    "heldout" (the 8 held-out combinations; images have none) in the spec's first template;
    "new_words": every combination (or pair) in the held-out vocabulary only (captions.HELDOUT),
    a wording that depends on `seed`."""
    image = frames == 1
    subjects = {"seen": IMAGE_SUBJECTS if image else SEEN, "heldout": () if image else HELDOUT,
                "new_words": IMAGE_SUBJECTS if image else SEEN + HELDOUT}
    if name not in subjects:
        raise ValueError(f"unknown prompt set {name!r}; choose from {list(subjects)}")
    if name == "new_words":
        return [(heldout_caption(s, seed), s) for s in subjects[name]]
    return [(spec_captions(s)[0], s) for s in subjects[name]]


def evaluate_pipeline(pipe, frames: int = 17, height: int = 32, width: int = 32, seeds=(0, 1),
                      sets=("seen", "heldout"), batch_size: int = 64, **generate_kwargs) -> dict:
    """Prompt accuracy of `pipe` on each of `sets` (see `prompt_set`; "heldout" is skipped for
    images) at one video shape: every prompt generated once per seed, in batches of `batch_size`;
    extra keyword arguments (e.g. steps, guidance) go to `pipe.generate`."""
    results = {}
    for name in sets:
        if frames == 1 and name == "heldout":
            continue
        videos, subjects = [], []
        for seed in seeds:
            pairs = prompt_set(name, frames, seed)
            for start in range(0, len(pairs), batch_size):
                prompts, batch_subjects = zip(*pairs[start : start + batch_size])
                out = pipe.generate(list(prompts), num_frames=frames, height=height, width=width, seed=seed,
                                    **generate_kwargs)
                videos.extend(np.asarray(out))
                subjects.extend(batch_subjects)
        results[name] = accuracy(videos, subjects)
    return results
