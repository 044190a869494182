"""Tests for sora_lite.validate and the Pipeline's boundary: whatever arguments a user passes,
a call returns a video of the promised shape and dtype or raises one line (a ValueError or a
TypeError) that names the argument; never an internal error, never a crash (hypothesis)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sora_lite import Pipeline, validate

PROMPT = "a red circle moving left"


@pytest.mark.parametrize("call,error,message", [
    (lambda: validate.integer("n", True), TypeError, "n must be an integer; got True (bool)"),
    (lambda: validate.integer("n", 3.0), TypeError, "n must be an integer; got 3.0 (float)"),
    (lambda: validate.integer("n", 0, 1), ValueError, "n must be an integer >= 1; got 0"),
    (lambda: validate.integer("n", 9, 1, 8), ValueError, "n must be an integer between 1 and 8; got 9"),
    (lambda: validate.number("x", "1"), TypeError, "x must be a number; got '1' (str)"),
    (lambda: validate.number("x", float("nan")), ValueError, "x must be a finite number; got nan"),
    (lambda: validate.number("x", -1, 0), ValueError, "x must be a number >= 0; got -1.0"),
    (lambda: validate.prompts(b"a"), TypeError, "prompts must be a string or a list of strings"),
    (lambda: validate.prompts(["a", None]), TypeError, "prompts[1] must be a string; got None"),
    (lambda: validate.frames("image", np.zeros((1, 8, 8, 3), np.float32), 4, 1), TypeError, "image must be a uint8 numpy array"),
])
def test_each_kind_of_argument_fails_in_one_line_naming_it(call, error, message):
    with pytest.raises(error) as e:
        call()
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_good_arguments_come_back_as_plain_values():
    assert validate.integer("n", np.int64(5), 1) == 5 and type(validate.integer("n", np.int64(5))) is int
    assert validate.number("x", np.float32(0.5), 0, 1) == 0.5
    assert validate.prompts("ünïcode ✓") == ["ünïcode ✓"] and validate.prompts(("a", "b")) == ["a", "b"]
    assert validate.sizes(None, 16, np.int32(16)) == (None, 16, 16)


@pytest.fixture(scope="module")
def pipe(tiny_run):
    return Pipeline.from_pretrained(tiny_run["dit_dir"])


def _anything():
    """Values of every kind a caller might pass by mistake."""
    return st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                     st.text(max_size=20), st.lists(st.integers(), max_size=3), st.just(np.float32(5)))


def _one_line(call, check):
    """`call()` either passes `check` or raises a one-line ValueError or TypeError."""
    try:
        out = call()
    except (ValueError, TypeError) as e:
        assert str(e) and "\n" not in str(e), repr(e)
        return
    check(out)


def _video(count, frames, height, width):
    def check(out):
        assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == (count, frames, height, width, 3)
    return check


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
PROMPTS = st.one_of(st.text(max_size=300), st.lists(st.text(max_size=40), max_size=3), _anything())


@SETTINGS
@given(prompts=PROMPTS, frames=st.one_of(st.sampled_from([1, 5, 6]), _anything()),
       size=st.one_of(st.sampled_from([16, 12, 0]), _anything()), seed=st.one_of(st.integers(0, 3), _anything()),
       steps=st.one_of(st.sampled_from([1, 0]), _anything()), guidance=st.one_of(st.floats(), _anything()))
def test_generate_returns_a_video_or_one_line(pipe, prompts, frames, size, seed, steps, guidance):
    count = 1 if isinstance(prompts, str) else len(prompts) if isinstance(prompts, list) else 0
    _one_line(lambda: pipe.generate(prompts, num_frames=frames, height=size, width=16, seed=seed, steps=steps,
                                    guidance=guidance), _video(count, frames, size, 16))


@SETTINGS
@given(image=st.one_of(st.sampled_from([(1, 16, 16, 3), (1, 16, 16), (2, 16, 16, 3), (1, 12, 16, 3), (1, 1, 16, 16, 3),
                                        (1, 0, 16, 3)]), _anything()),
       dtype=st.sampled_from([np.uint8, np.float32, np.int64]),
       frames=st.one_of(st.sampled_from([5, 4]), _anything()), strength=st.one_of(st.floats(), _anything()))
def test_frame_tasks_return_a_video_or_one_line(pipe, image, dtype, frames, strength):
    x = np.zeros(image, dtype) if isinstance(image, tuple) else image
    _one_line(lambda: pipe.image_to_video([PROMPT], x, num_frames=frames, steps=1), _video(1, frames, 16, 16))
    clip = x[:, None] if isinstance(x, np.ndarray) and x.ndim == 4 else x
    _one_line(lambda: pipe.edit([PROMPT], clip, strength=strength, steps=1), _video(1, 1, 16, 16))


@SETTINGS
@given(clip=st.one_of(st.sampled_from([(1, 1, 16, 16, 3), (1, 4, 16, 16, 3), (1, 5, 16, 16, 3), (2, 1, 16, 16, 3),
                                       (1, 1, 16, 24, 3), (1, 1, 16, 16), (1, 0, 16, 16, 3)]), _anything()),
       dtype=st.sampled_from([np.uint8, np.uint8, np.float32]), frames=st.one_of(st.sampled_from([5, 4]), _anything()),
       backward=st.booleans(), prompts=st.one_of(st.sampled_from([[PROMPT], [PROMPT, PROMPT], [], PROMPT]), _anything()))
def test_extend_connect_interpolate_and_story_return_a_video_or_one_line(pipe, clip, dtype, frames, backward, prompts):
    x = np.zeros(clip, dtype) if isinstance(clip, tuple) else clip
    valid_frames = frames if isinstance(frames, int) and not isinstance(frames, bool) else -1
    _one_line(lambda: pipe.extend([PROMPT], x, num_frames=frames, backward=backward, steps=1),
              _video(1, valid_frames, *(x.shape[2:4] if isinstance(x, np.ndarray) and x.ndim == 5 else (0, 0))))
    _one_line(lambda: pipe.connect([PROMPT], x, x, num_frames=frames, steps=1),
              lambda out: _video(1, valid_frames, *out.shape[2:4])(out))
    _one_line(lambda: pipe.interpolate([PROMPT], x, num_frames=frames, steps=1),
              lambda out: _video(1, valid_frames, *out.shape[2:4])(out))
    _one_line(lambda: pipe.story(prompts, frames_per_scene=frames, steps=1),
              lambda out: _video(1, (1 if isinstance(prompts, str) else len(prompts)) * valid_frames, *out.shape[2:4])(out))
