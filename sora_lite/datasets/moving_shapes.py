"""Moving Shapes (spec v2, `shared/specs/moving-shapes.md`): a text-video dataset whose
caption fully determines the correct video, so prompt following can be scored exactly.
An image is a 1-frame clip: no motion, a caption naming colour and shape only.

`render(color, shape, direction, H, W, T, rng)` draws one clip; `example(split, i, ...)`
is the pure function of `(split, i, H, W, T)` the spec asks for (datasets/generated.py
stores its clips for training: `generated.MovingShapes`).
"""

import itertools
import zlib

import numpy as np

COLORS = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 40),
    "magenta": (210, 60, 210),
    "cyan": (40, 210, 220),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
TEMPLATES = (
    "a {color} {shape} moving {direction}",
    "a {color} {shape} moves {direction}",
    "the {color} {shape} is moving {direction}",
    "{color} {shape} going {direction}",
)
IMAGE_TEMPLATES = (
    "a {color} {shape}",
    "the {color} {shape}",
    "a {color} {shape} on black",
    "{color} {shape}",
)
HELDOUT = (
    ("red", "triangle", "up"),
    ("green", "circle", "left"),
    ("blue", "square", "down"),
    ("yellow", "triangle", "right"),
    ("magenta", "circle", "down"),
    ("cyan", "square", "up"),
    ("red", "square", "left"),
    ("blue", "circle", "right"),
)
ALL_COMBOS = tuple(itertools.product(COLORS, SHAPES, DIRECTIONS))
SEEN = tuple(c for c in ALL_COMBOS if c not in HELDOUT)  # 64 combinations


def caption(color: str, shape: str, direction: str | None, template: int = 0) -> str:
    """The spec's caption; an image (`direction` None) gets an image template, without motion."""
    if direction is None:
        return IMAGE_TEMPLATES[template].format(color=color, shape=shape)
    return TEMPLATES[template].format(color=color, shape=shape, direction=direction)


def shape_mask(shape: str, side: int) -> np.ndarray:
    """Boolean [side, side] mask of a shape filling its bounding box (pixel centres tested)."""
    c = (np.arange(side) + 0.5) - side / 2  # pixel-centre offsets from the box centre
    if shape == "square":
        return np.ones((side, side), bool)
    if shape == "circle":
        return c[:, None] ** 2 + c[None, :] ** 2 <= (side / 2) ** 2
    if shape == "triangle":  # apex at the top centre, base along the bottom row
        half_width = (np.arange(side) + 0.5) / side * (side / 2)  # [side] per row
        return np.abs(c[None, :]) <= half_width[:, None]
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def render(color, shape, direction, height, width, frames, rng) -> np.ndarray:
    """One clip, uint8 [T, H, W, 3], drawn with the spec's size, speed and start rules; an
    image (T = 1) does not move, and its object may sit anywhere its box fits."""
    if min(height, width) < 16 or frames < 1:
        raise ValueError(f"Moving Shapes needs H, W >= 16 and T >= 1; got {frames}x{height}x{width}")
    side = int(round(0.3 * min(height, width) * rng.uniform(0.9, 1.1)))
    horizontal = direction in ("left", "right")
    travel = int(round(0.4 * (width if horizontal else height))) if frames > 1 else 0
    sign = 1 if direction in ("right", "down") else -1
    along, across = (width, height) if horizontal else (height, width)
    # Start so the box stays inside in every frame: [0, along - side - travel] moving +,
    # shifted by `travel` moving -.
    start = rng.integers(0, along - side - travel + 1) + (travel if sign < 0 else 0)
    fixed = rng.integers(0, across - side + 1)
    mask = shape_mask(shape, side)
    video = np.zeros((frames, height, width, 3), np.uint8)
    for f in range(frames):
        pos = start + sign * int(round(travel * f / max(frames - 1, 1)))
        y, x = (fixed, pos) if horizontal else (pos, fixed)
        video[f, y : y + side, x : x + side][mask] = COLORS[color]
    return video


def example(split: str, index: int, height: int, width: int, frames: int) -> dict:
    """Example `index` of `split`: a pure function of its arguments (seeded, no global state).

    Its combination and caption template do not depend on T, so at T = 1 (an image) it is the
    combination it has as a video, with the motion dropped (`direction` is then "")."""
    rng = np.random.default_rng([zlib.crc32(split.encode()), index, height, width])
    if split == "train":
        color, shape, direction = SEEN[rng.integers(len(SEEN))]
        template = int(rng.integers(len(TEMPLATES)))
    else:  # evaluation splits cycle through their combinations evenly, first template
        combos = SEEN if split == "validation" else HELDOUT
        color, shape, direction = combos[index % len(combos)]
        template = 0
    direction = direction if frames > 1 else None
    rng = np.random.default_rng([zlib.crc32(split.encode()), index, height, width, frames])
    return {
        "video": render(color, shape, direction, height, width, frames, rng),
        "caption": caption(color, shape, direction, template),
        "color": color,
        "shape": shape,
        "direction": direction or "",
    }

