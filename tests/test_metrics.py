"""Tests for sora_lite.metrics: the spec's scoring rules on the dataset's own videos."""

import functools
import math

import numpy as np
import pytest

from sora_lite import metrics
from sora_lite.datasets.moving_shapes import (
    COLORS, DIRECTIONS, SHAPES, TEMPLATES, ALL_COMBOS, caption, example,
)

COLOR_NAMES = tuple(COLORS)


@functools.cache
def dataset(frames, height, width, n_val=200, n_heldout=100):
    """(videos, captions, (color, shape, direction) list) from validation + test_heldout."""
    examples = [example("validation", i, height, width, frames) for i in range(n_val)]
    examples += [example("test_heldout", i, height, width, frames) for i in range(n_heldout)]
    return ([e["video"] for e in examples], [e["caption"] for e in examples],
            [(e["color"], e["shape"], e["direction"]) for e in examples])


def test_evaluation_sets():
    seen, heldout = metrics.prompt_set("seen", 17), metrics.prompt_set("heldout", 17)
    assert len(seen) == 64 and len(heldout) == 8 and seen[0] == ("a red circle moving left", ("red", "circle", "left"))
    images = metrics.prompt_set("seen", 1)
    assert len(images) == 18 and images[0] == ("a red circle", ("red", "circle", None))
    assert metrics.prompt_set("heldout", 1) == []  # every colour-shape pair is trained on
    words = metrics.prompt_set("new_words", 17, seed=1)
    assert len(words) == 72 and all("red" not in p and "circle" not in p for p, _ in words)
    assert words != metrics.prompt_set("new_words", 17, seed=0)  # a wording per seed
    with pytest.raises(ValueError, match="unknown prompt set 'unseen'"):
        metrics.prompt_set("unseen", 17)


def box_blur(video):
    """3x3 box blur of each frame (zero padding), rounded back to uint8."""
    T, H, W, _ = video.shape
    padded = np.pad(video.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    total = sum(padded[:, i : i + H, j : j + W] for i in range(3) for j in range(3))
    return np.round(total / 9).astype(np.uint8)


def other(values, value, shift=1):
    return values[(values.index(value) + shift) % len(values)]


def assert_all_correct(videos, attrs):
    for video, (color, shape, direction) in zip(videos, attrs):
        s = metrics.score_video(video, color, shape, direction)
        assert s["correct"], (color, shape, direction, s)
        assert (s["color"], s["shape"], s["direction"]) == (color, shape, direction)


@pytest.mark.parametrize("size", [(17, 32, 32), (9, 48, 32), (17, 16, 24), (2, 32, 32)])
def test_dataset_videos_all_correct(size):
    n = (200, 100) if size == (17, 32, 32) else (48, 24)
    videos, captions, attrs = dataset(*size, *n)
    assert_all_correct(videos, attrs)
    result = metrics.prompt_accuracy(videos, captions)
    assert result == {"accuracy": 100.0, "color": 100.0, "shape": 100.0, "direction": 100.0,
                      "consistency": 100.0, "n": len(videos)}


@pytest.mark.parametrize("size", [(17, 32, 32), (9, 48, 32)])
def test_blurred_dataset_videos_all_correct(size):
    n = (200, 100) if size == (17, 32, 32) else (48, 24)
    videos, captions, attrs = dataset(*size, *n)
    blurred = [box_blur(v) for v in videos]
    assert not np.array_equal(blurred[0], videos[0])
    assert metrics.prompt_accuracy(blurred, captions)["accuracy"] == 100.0


def test_noisy_dataset_videos_all_correct():
    videos, captions, _ = dataset(17, 32, 32)
    rng = np.random.default_rng(0)
    noisy = [np.clip(v + rng.normal(0, 8, v.shape), 0, 255).astype(np.uint8) for v in videos[:64]]
    assert metrics.prompt_accuracy(noisy, captions[:64])["accuracy"] == 100.0


@pytest.mark.parametrize("attribute", ["color", "shape", "direction"])
def test_mismatched_prompts_score_wrong(attribute):
    videos, _, attrs = dataset(17, 32, 32)
    videos, attrs = videos[:100], attrs[:100]
    values = {"color": COLOR_NAMES, "shape": SHAPES, "direction": DIRECTIONS}[attribute]
    index = ("color", "shape", "direction").index(attribute)
    prompts = []
    for i, combo in enumerate(attrs):
        wrong = list(combo)
        wrong[index] = other(values, combo[index], shift=1 + i % (len(values) - 1))
        prompts.append(caption(*wrong, template=i % len(TEMPLATES)))
    result = metrics.prompt_accuracy(videos, prompts)
    assert result["accuracy"] == 0.0 and result[attribute] == 0.0
    # The other attributes are still read correctly from the video.
    for key in {"color", "shape", "direction", "consistency"} - {attribute}:
        assert result[key] == 100.0, (key, result)


def test_empty_video_and_single_frame():
    black = np.zeros((5, 32, 32, 3), np.uint8)
    s = metrics.score_video(black, "red", "circle", "left")
    assert s["color"] is s["shape"] is s["direction"] is None
    assert not any(s[k] for k in ("color_ok", "shape_ok", "direction_ok", "consistent_ok", "correct"))

    e = example("validation", 3, 32, 32, 17)  # a video prompt on one frame: no motion to see
    s = metrics.score_video(e["video"][:1], e["color"], e["shape"], e["direction"])
    assert s["color_ok"] and s["shape_ok"] and s["consistent_ok"]
    assert s["direction"] is None and not s["direction_ok"] and not s["correct"]


@pytest.mark.parametrize("size", [(1, 32, 32), (1, 48, 64), (1, 16, 24)])
def test_images_all_correct_and_judged_on_colour_and_shape(size):
    """Spec v2: an image is correct when it shows the object in the prompt's colour and shape."""
    videos, captions, attrs = dataset(*size, 72, 24)
    assert all(d == "" for _, _, d in attrs) and all("moving" not in c for c in captions)
    result = metrics.prompt_accuracy(videos, captions)
    assert result == {"accuracy": 100.0, "color": 100.0, "shape": 100.0, "direction": None,
                      "consistency": 100.0, "n": 96}
    wrong = [caption(other(COLOR_NAMES, c), s, None) for c, s, _ in attrs]
    assert metrics.prompt_accuracy(videos, wrong)["accuracy"] == 0.0
    wrong = [caption(c, other(SHAPES, s), None) for c, s, _ in attrs]
    assert metrics.prompt_accuracy(videos, wrong)["shape"] == 0.0
    assert metrics.prompt_accuracy([np.zeros(size + (3,), np.uint8)], ["a red circle"])["accuracy"] == 0.0


def test_static_object_has_no_direction():
    e = example("validation", 5, 32, 32, 17)
    still = np.repeat(e["video"][:1], 17, axis=0)
    s = metrics.score_video(still, e["color"], e["shape"], e["direction"])
    assert s["color_ok"] and s["shape_ok"] and s["direction"] is None and not s["correct"]


def test_colour_flicker_breaks_consistency():
    e = example("validation", 0, 32, 32, 17)  # red circle
    video = e["video"].copy()
    for f in (2, 7, 12):  # 14/17 = 82% of frames in the video's colour
        on = video[f].max(-1) > 0
        video[f][on] = COLORS[other(COLOR_NAMES, e["color"])]
    s = metrics.score_video(video, e["color"], e["shape"], e["direction"])
    assert s["color_ok"] and s["shape_ok"] and s["direction_ok"]
    assert not s["consistent_ok"] and not s["correct"]


def test_parse_prompt_all_templates():
    for template in range(len(TEMPLATES)):
        for combo in ALL_COMBOS:
            assert metrics.parse_prompt(caption(*combo, template=template)) == combo
    assert metrics.parse_prompt("A Red Square, moving UP.") == ("red", "square", "up")
    assert metrics.parse_prompt("a red square") == ("red", "square", None)  # an image prompt


@pytest.mark.parametrize("prompt", ["a purple circle moving up", "a red blue square moving up",
                                    "a red square moving up left", "a red moving up", ""])
def test_parse_prompt_error(prompt):
    with pytest.raises(ValueError, match="cannot parse prompt"):
        metrics.parse_prompt(prompt)


def test_psnr():
    a = example("validation", 0, 32, 32, 9)["video"]
    assert metrics.psnr(a, a) == math.inf
    b = a.astype(np.int16)
    b = np.where(b < 255, b + 1, b - 1).astype(np.uint8)  # every value off by exactly 1
    assert metrics.psnr(a, b) == pytest.approx(20 * math.log10(255))
    assert metrics.psnr(a, b) == metrics.psnr(b, a)
    noisy = np.clip(a + np.random.default_rng(0).normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    assert 15 < metrics.psnr(a, noisy) < metrics.psnr(a, b)
    with pytest.raises(ValueError):
        metrics.psnr(a, a[:-1])
