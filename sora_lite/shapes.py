"""Video shapes: "FRAMESxHEIGHTxWIDTH" as the command line and configs write them, and the
training mixture (`data.mixture`, "17x32x32:2,1x32x32:1": shapes and their shares of steps).

Kept apart from data.py so that sampling, which needs a model's default shape, does not
import the input pipeline.
"""

import dataclasses
import math

from ml_collections import ConfigDict


@dataclasses.dataclass(frozen=True)
class Entry:
    """One shape of the mixture and its share of training steps."""

    frames: int
    height: int
    width: int
    weight: float = 1.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.frames, self.height, self.width

    def __str__(self):
        return "x".join(map(str, self.shape))


def parse_shape(text: str) -> tuple[int, int, int]:
    """"17x32x48" -> (frames, height, width), or a one-line ValueError."""
    parts = text.strip().lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"a shape is FRAMESxHEIGHTxWIDTH with positive integers (e.g. 17x32x48); got {text!r}")
    return tuple(int(p) for p in parts)


def mixture(data: ConfigDict) -> list[Entry]:
    """The entries of `data.mixture` ("17x32x32:2,1x32x32:1"; a weight defaults to 1), or a
    one-line ValueError naming the entry that is wrong."""
    if not str(data.mixture).strip():
        raise ValueError("data.mixture is empty: list at least one shape, e.g. --config.data.mixture=17x32x32:1")
    entries = []
    for item in str(data.mixture).split(","):
        shape, _, weight = item.partition(":")
        try:
            entry = Entry(*parse_shape(shape), float(weight) if weight else 1.0)
        except ValueError as e:
            raise ValueError(f"data.mixture entry {item.strip()!r}: {e}") from None
        if not entry.weight > 0 or not math.isfinite(entry.weight):
            raise ValueError(f"data.mixture entry {item.strip()!r}: the weight must be a positive number")
        if min(entry.height, entry.width) < 16:
            raise ValueError(f"data.mixture entry {item.strip()!r}: Moving Shapes needs height and width >= 16")
        if str(entry) in map(str, entries):
            raise ValueError(f"data.mixture entry {item.strip()!r}: the shape is listed twice")
        entries.append(entry)
    return entries


