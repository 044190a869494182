"""Tests for the Moving Shapes builder (spec v2) and the grain input pipeline (sora_lite.data)."""

import re

import grain
import numpy as np
import pytest
from ml_collections import ConfigDict

from sora_lite import data
from sora_lite.datasets import generated
from sora_lite.datasets import moving_shapes as ms

SIZES = [(5, 16, 16), (9, 32, 32), (5, 16, 24), (3, 40, 16), (1, 24, 40)]  # (T, H, W): non-square, an image


def data_cfg(data_dir, frames=5, height=16, width=16, train_size=64):
    return ConfigDict(dict(dir=data_dir, mixture=f"{frames}x{height}x{width}", train_size=train_size))


# ----------------------------------------------------------------------------- the pure builder


def test_example_is_a_pure_function_of_its_arguments():
    a, b = ms.example("train", 3, 16, 16, 5), ms.example("train", 3, 16, 16, 5)
    assert a["video"].tobytes() == b["video"].tobytes() and a["caption"] == b["caption"]
    assert ms.example("train", 4, 16, 16, 5)["video"].tobytes() != a["video"].tobytes()
    # The split is part of the seed: validation example 3 is not train example 3.
    assert ms.example("validation", 3, 16, 16, 5)["video"].tobytes() != a["video"].tobytes()


def _object_boxes(video):
    """Per frame (y0, y1, x0, x1) of the non-black pixels, inclusive-exclusive."""
    boxes = []
    for frame in video:
        ys, xs = np.nonzero(frame.any(-1))
        assert len(ys), "every frame shows the object"
        boxes.append((ys.min(), ys.max() + 1, xs.min(), xs.max() + 1))
    return np.array(boxes)


@pytest.mark.parametrize("T,H,W", SIZES)
@pytest.mark.parametrize("split", ["train", "validation", "test_heldout"])
def test_rendering_follows_the_spec(split, T, H, W):
    lo, hi = round(0.27 * min(H, W)), round(0.33 * min(H, W))
    for i in range(24):
        e = ms.example(split, i, H, W, T)
        v = e["video"]
        assert v.shape == (T, H, W, 3) and v.dtype == np.uint8
        # Black background, and every other pixel is exactly the palette colour (no anti-aliasing).
        on = v.any(-1)
        assert (v[on] == ms.COLORS[e["color"]]).all()
        boxes = _object_boxes(v)
        y0, y1, x0, x1 = boxes.T
        # The whole box stays inside the canvas: a clipped shape would show a smaller box.
        width, height = x1 - x0, y1 - y0
        side = width[0]
        assert lo <= side <= hi, (e["caption"], side, lo, hi)
        assert (width == side).all()
        if e["shape"] == "triangle":  # an even side has no pixel centre at the apex point
            assert (height == side - (side % 2 == 0)).all()
        else:
            assert (height == side).all()
        # Displacement first -> last frame along the motion axis; constant perpendicular coordinate.
        if T == 1:  # an image: no motion, a caption without one
            assert e["direction"] == ""
            assert e["caption"] in [t.format(color=e["color"], shape=e["shape"]) for t in ms.IMAGE_TEMPLATES]
            continue
        dy, dx = y0[-1] - y0[0], x0[-1] - x0[0]
        expected = {"left": (0, -round(0.4 * W)), "right": (0, round(0.4 * W)),
                    "up": (-round(0.4 * H), 0), "down": (round(0.4 * H), 0)}[e["direction"]]
        if T > 1:
            assert (dy, dx) == expected, e["caption"]
        moving_y = e["direction"] in ("up", "down")
        assert (np.diff(x0) == 0).all() if moving_y else (np.diff(y0) == 0).all()
        # Constant velocity: steps differ by at most one pixel of rounding, all in one direction.
        steps = np.diff(y0 if moving_y else x0)
        if T > 2:
            assert steps.max() - steps.min() <= 1 and (steps * np.sign(sum(expected)) >= 0).all()


def test_triangle_apex_at_top_and_shapes_fill_as_drawn():
    for side in range(3, 14):
        tri = ms.shape_mask("triangle", side)
        rows = tri.sum(1)
        assert (np.diff(rows) >= 0).all() and rows[-1] == side  # widening downwards, full base
        assert rows[0] <= 2 and tri[: side // 2].sum() < tri[side // 2 :].sum()
        assert (tri == tri[:, ::-1]).all()  # isosceles: symmetric about the vertical axis
        assert ms.shape_mask("square", side).all()
        circle = ms.shape_mask("circle", side)
        assert (circle == circle.T).all() and (circle == circle[::-1]).all()
        assert side < 4 or not circle[0, 0]  # corners cut off
    with pytest.raises(ValueError, match="unknown shape"):
        ms.shape_mask("hexagon", 5)


def test_render_rejects_small_canvases():
    rng = np.random.default_rng(0)
    for T, H, W in [(5, 15, 32), (5, 32, 8), (0, 16, 16)]:
        with pytest.raises(ValueError, match="H, W >= 16 and T >= 1"):
            ms.render("red", "circle", "left", H, W, T, rng)


def test_heldout_combinations_never_in_train_or_validation():
    assert len(ms.ALL_COMBOS) == 72 and len(ms.HELDOUT) == 8 and len(ms.SEEN) == 64
    heldout = set(ms.HELDOUT)
    train = {(e["color"], e["shape"], e["direction"])
             for e in (ms.example("train", i, 16, 16, 2) for i in range(400))}
    val = [(e["color"], e["shape"], e["direction"])
           for e in (ms.example("validation", i, 16, 16, 2) for i in range(128))]
    test = {(e["color"], e["shape"], e["direction"])
            for e in (ms.example("test_heldout", i, 16, 16, 2) for i in range(64))}
    assert not train & heldout and not set(val) & heldout
    assert test == heldout  # test_heldout cycles through exactly the 8 held-out combos
    assert len(train) > 55  # 400 uniform draws over 64 combos cover nearly all
    assert set(val) == set(ms.SEEN) and val[:64] == list(ms.SEEN)  # validation cycles evenly


def test_captions_follow_the_templates():
    assert ms.TEMPLATES == ("a {color} {shape} moving {direction}", "a {color} {shape} moves {direction}",
                            "the {color} {shape} is moving {direction}", "{color} {shape} going {direction}")
    used = set()
    for i in range(200):
        e = ms.example("train", i, 16, 16, 2)
        fills = dict(color=e["color"], shape=e["shape"], direction=e["direction"])
        matches = [k for k, t in enumerate(ms.TEMPLATES) if t.format(**fills) == e["caption"]]
        assert len(matches) == 1, e["caption"]
        used.add(matches[0])
    assert used == {0, 1, 2, 3}  # the train split draws every template
    for split in ("validation", "test_heldout"):
        e = ms.example(split, 5, 16, 16, 2)
        assert e["caption"] == f"a {e['color']} {e['shape']} moving {e['direction']}"


def test_an_image_is_the_example_without_its_motion():
    """Spec v2: example i at T = 1 has the combination it has as a video, an image caption, and
    its object anywhere its box fits."""
    templates = {t.format(color="{c}", shape="{s}") for t in ms.IMAGE_TEMPLATES}
    used, positions = set(), set()
    for i in range(200):
        video, image = ms.example("train", i, 32, 32, 17), ms.example("train", i, 32, 32, 1)
        assert (image["color"], image["shape"]) == (video["color"], video["shape"]) and image["direction"] == ""
        used |= {k for k, t in enumerate(ms.IMAGE_TEMPLATES)
                 if t.format(color=image["color"], shape=image["shape"]) == image["caption"]}
        ys, xs = np.nonzero(image["video"][0].any(-1))
        positions.add((ys.min(), xs.min()))
    assert used == {0, 1, 2, 3} and len(templates) == 4
    assert len(positions) > 100  # spread over the canvas, not along a motion path


# ----------------------------------------------------------------------------- the tfds builder


@pytest.mark.parametrize("H,W", [(16, 16), (16, 24)])
def test_builder_split_sizes_and_contents(data_dir, H, W):
    b = generated.prepare(generated.MovingShapes, data_dir, frames=5, height=H, width=W, train_size=64)
    sizes = {"train": 64, "validation": 1024, "test_heldout": 512}
    assert {k: v.num_examples for k, v in b.info.splits.items()} == sizes
    for split, n in sizes.items():
        src = b.as_data_source(split=split)
        assert len(src) == n
        for i in (0, n - 1):  # stored bytes are the pure function's bytes
            got, want = src[i], ms.example(split, i, H, W, 5)
            assert got["video"].shape == (5, H, W, 3) and got["video"].dtype == np.uint8
            assert got["video"].tobytes() == want["video"].tobytes()
            assert got["caption"].decode() == want["caption"]


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_damaged_data_file_stops_with_one_line_naming_it_and_the_rebuild(tmp_path, damage):
    cfg = data_cfg(str(tmp_path), train_size=64)
    b = generated.prepare(generated.MovingShapes, str(tmp_path), 5, 16, 16, 64)
    path = str(b.info.splits["train"].filepaths[0])
    size = len(open(path, "rb").read())
    with open(path, "r+b") as f:
        if damage == "truncated":  # a copy cut short: found when the split opens
            f.truncate(size // 2)
        else:  # bytes overwritten inside the first records: found when one of them is read
            f.seek(1024)
            f.write(bytes(range(256)) * 8)
    with pytest.raises(ValueError) as e:
        ds = data.clips(cfg, "train")
        for i in range(len(ds)):
            ds[i]
    message = str(e.value)
    assert "\n" not in message and path in message and "is unreadable" in message
    assert f"rm -r {b.data_path} and rerun" in message
    data.clips(cfg, "validation")[0]  # the other splits' files still read


def test_clips_are_model_range_floats_with_str_captions(data_dir):
    ds = data.clips(data_cfg(data_dir, width=24), "validation")
    item = ds[7]
    raw = ms.example("validation", 7, 16, 24, 5)
    assert item["video"].shape == (5, 16, 24, 3) and item["video"].dtype == np.float32
    assert item["video"].min() == -1.0 and item["video"].max() <= 1.0
    np.testing.assert_allclose(item["video"], raw["video"] / 127.5 - 1.0, atol=1e-6)
    assert item["caption"] == raw["caption"]


def _take(it, n):
    return [next(it) for _ in range(n)]


def test_batches_are_a_pure_function_of_seed_and_step(data_dir):
    ds = data.clips(data_cfg(data_dir), "train")
    first = _take(data.batches(ds, 4, seed=0), 20)  # 16 batches per epoch: crosses an epoch
    assert first[0]["video"].shape == (4, 5, 16, 16, 3) and len(first[0]["caption"]) == 4
    resumed = _take(data.batches(ds, 4, seed=0, start_step=13), 7)
    for a, b in zip(first[13:], resumed):
        np.testing.assert_array_equal(a["video"], b["video"])
        assert list(a["caption"]) == list(b["caption"])
    other = next(data.batches(ds, 4, seed=1))
    assert not np.array_equal(other["video"], first[0]["video"])
    # The first epoch visits every clip once.
    ids = grain.MapDataset.range(64)
    epoch = np.concatenate(_take(data.batches(ids, 8, seed=0), 8))
    assert sorted(epoch.tolist()) == list(range(64))


def test_process_sharding_gives_disjoint_halves():
    ids = grain.MapDataset.range(64)
    whole = _take(data.batches(ids, 8, seed=3), 8)  # one epoch
    halves = [_take(data.batches(ids, 8, seed=3, process_index=p, process_count=2), 8) for p in (0, 1)]
    for step in range(8):
        a, b = halves[0][step], halves[1][step]
        assert len(a) == len(b) == 4
        assert not set(a.tolist()) & set(b.tolist())
        # Stacked in process order, the halves are the one-process batch row for row (so a
        # global batch built from them, and the per-row noise, match one-process training).
        assert [*a.tolist(), *b.tolist()] == whole[step].tolist()
    # Resuming one process at a step gives that process's batch at the step.
    resumed = next(data.batches(ids, 8, seed=3, start_step=5, process_index=1, process_count=2))
    np.testing.assert_array_equal(resumed, halves[1][5])
    with pytest.raises(ValueError, match="divide evenly over 3 processes"):
        data.batches(ids, 8, seed=0, process_count=3)


def test_one_pass_without_repeat_keeps_order_and_remainder():
    ids = grain.MapDataset.range(10)
    out = list(data.batches(ids, 4, seed=0, repeat=False))
    assert [b.tolist() for b in out] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


# ----------------------------------------------------------------------------- the shape mixture


def test_mixture_parses_entries_and_names_a_bad_one():
    entries = data.mixture(ConfigDict(dict(mixture="17x32x32:3, 1x32x48:0.5,9x16x16")))
    assert [(str(e), e.weight) for e in entries] == [("17x32x32", 3.0), ("1x32x48", 0.5), ("9x16x16", 1.0)]
    for bad, message in [("", "data.mixture is empty"), ("17x32", "entry '17x32': a shape is FRAMESxHEIGHTxWIDTH"),
                         ("17x32x32:0", "entry '17x32x32:0': the weight must be a positive number"),
                         ("17x32x32:-1", "the weight must be a positive number"),
                         ("17x32x32:nan", "the weight must be a positive number"),
                         ("17x32x32:x", "entry '17x32x32:x'"), ("5x8x16", "entry '5x8x16': Moving Shapes needs"),
                         ("17x32x32,17x32x32:2", "entry '17x32x32:2': the shape is listed twice")]:
        with pytest.raises(ValueError, match=re.escape(message)) as e:
            data.mixture(ConfigDict(dict(mixture=bad)))
        assert "\n" not in str(e.value)


def test_schedule_follows_the_weights_and_a_longer_run_extends_it():
    choices = data.schedule([3, 1], seed=0, steps=4000)
    assert abs(np.mean(choices == 0) - 0.75) < 0.03 and set(choices) == {0, 1}
    np.testing.assert_array_equal(data.schedule([3, 1], seed=0, steps=100), choices[:100])
    assert not np.array_equal(data.schedule([3, 1], seed=1, steps=100), choices[:100])


def test_bucket_sizes_carry_the_first_entrys_tokens():
    assert data.bucket_sizes([80, 320, 16, 120], 32, 1) == [32, 8, 160, 21]
    assert data.bucket_sizes([80, 320, 16, 120], 32, 8) == [32, 8, 160, 24]  # multiples of the batch shards
    assert data.bucket_sizes([80, 8000], 32, 4) == [32, 4]  # never empty


def test_mixture_batches_resume_at_any_step():
    sources = [grain.MapDataset.range(40), grain.MapDataset.range(100, 130)]
    choices = data.schedule([2, 1], seed=0, steps=30)
    whole = _take(data.MixtureBatches(sources, [4, 2], choices, seed=5, start=0), 30)
    assert [i for i, _ in whole] == choices.tolist()
    assert all(len(b) == (4 if i == 0 else 2) and (b < 100).all() == (i == 0) for i, b in whole)
    for start in (7, 19):
        resumed = _take(data.MixtureBatches(sources, [4, 2], choices, seed=5, start=start), 30 - start)
        for (i, a), (j, b) in zip(whole[start:], resumed):
            assert i == j
            np.testing.assert_array_equal(a, b)
