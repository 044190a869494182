"""Arguments checked once, where they enter (the Pipeline's methods, the CLI, the scripts): one
helper per kind of argument. A wrong type is a TypeError, a wrong value a ValueError; each is
one line that names the argument, what it got and what would work."""

import math
import reprlib

import numpy as np


class ArgumentTypeError(TypeError):
    """An argument of the wrong type: the caller's mistake, said in one line (the CLI and the
    scripts print it without a traceback, as they do a ValueError)."""


def _got(value) -> str:
    return f"{reprlib.repr(value)} ({type(value).__name__})"


def _bounds(low, high) -> str:
    if high is None:
        return f">= {low}"
    return f"<= {high}" if low is None else f"between {low} and {high}"


def integer(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """`value` as an int: an integer (Python or numpy, not a bool, float or string) in [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{name} must be an integer; got {_got(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer {_bounds(low, high)}; got {value}")
    return value


def number(name: str, value, low: float | None = None, high: float | None = None) -> float:
    """`value` as a float: a finite real number (not a bool or string) in [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"{name} must be a number; got {_got(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be a number {_bounds(low, high)}; got {value}")
    return value


def prompts(value) -> list[str]:
    """One prompt or a non-empty list of them, each a string with some non-space text."""
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, np.ndarray) or not hasattr(value, "__iter__") or isinstance(value, (bytes, dict)):
        raise ArgumentTypeError(f"prompts must be a string or a list of strings; got {_got(value)}")
    value = list(value)
    if not value:
        raise ValueError("prompts is empty: give at least one prompt")
    for i, p in enumerate(value):
        if not isinstance(p, str):
            raise ArgumentTypeError(f"prompts[{i}] must be a string; got {_got(p)}")
        if not p.strip():
            raise ValueError(f"prompts[{i}] is empty: a prompt needs some text")
    return value


def frames(name: str, x, ndim: int | None, batch: int) -> np.ndarray:
    """A given image or clip: a uint8 numpy array with `ndim` axes (None: 4 or 5), RGB, one row per prompt."""
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise ArgumentTypeError(f"{name} must be a uint8 numpy array like generate's output; "
                        f"got {getattr(x, 'dtype', type(x).__name__)}")
    want = (4, 5) if ndim is None else (ndim,)
    layout = {4: "[B, H, W, 3]", 5: "[B, K, H, W, 3]"}
    if x.ndim not in want or x.shape[-1] != 3 or 0 in x.shape:
        raise ValueError(f"{name} must be {' or '.join(layout[n] for n in want)} with no empty axis; got shape {x.shape}")
    if x.shape[0] != batch:
        raise ValueError(f"{name} has {x.shape[0]} rows for {batch} prompts: give one per prompt")
    return x


def sizes(num_frames, height, width) -> tuple:
    """A video size's frames, height and width: each None (the default) or an integer >= 1."""
    return tuple(None if v is None else integer(name, v, 1)
                 for name, v in (("num_frames", num_frames), ("height", height), ("width", width)))
