"""Tests for Camera Moves (spec v1): the renderer's conventions, the builder, and the scoring
(100% on the data set's own videos, robust to blur and noise, low on mismatched prompts)."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from sora_lite import camera_metrics as M
from sora_lite.datasets import camera_moves as C
from sora_lite.datasets import generated


def test_examples_are_pure_and_splits_keep_the_heldout_combinations_apart():
    a, b = C.example("train", 3, 32, 48, 9), C.example("train", 3, 32, 48, 9)
    np.testing.assert_array_equal(a["video"], b["video"])
    assert a["video"].shape == (9, 32, 48, 3) and a["video"].dtype == np.uint8
    train = {(e["subject"], e["move"]) for e in (C.example("train", i, 16, 16, 2) for i in range(300))}
    assert len(C.SEEN) == 56 and train <= set(C.SEEN) and not train & set(C.HELDOUT)
    heldout = {(C.example("test_heldout", i, 16, 16, 2)["subject"], C.example("test_heldout", i, 16, 16, 2)["move"])
               for i in range(8)}
    assert heldout == set(C.HELDOUT)
    with pytest.raises(ValueError, match="H, W >= 16 and T >= 2"):
        C.render("cat", "pans left", 8, 32, 17, np.random.default_rng(0))


def test_each_move_is_its_own_on_screen_transform():
    """Rendered over a photo, each move is best explained by its own warp of frame 0."""
    for k, move in enumerate(C.MOVES):
        v = C.render(C.SUBJECTS[k], move, 32, 32, 9, np.random.default_rng(k))
        errors = M.move_errors(v)
        assert min(errors, key=errors.get) == move and errors["still"] > 2 * errors[move], (move, errors)
    # Pans move the content the opposite way: the camera pans left, the content moves right.
    assert M.warp_source("pans left", 1.0, 20.0, 10.0, 32, 32)[0] < 20


def _videos(shape, count):
    """`count` validation and held-out examples, every subject and move among them."""
    T, H, W = shape
    return [C.example("validation", i, H, W, T) for i in range(count - 4)] + \
        [C.example("test_heldout", i, H, W, T) for i in range(4)]


@pytest.mark.parametrize("shape", [(17, 32, 32), (9, 32, 48)])
def test_scoring_judges_the_datasets_own_videos_correct_also_blurred_or_noisy(shape):
    rng = np.random.default_rng(0)
    for ex in _videos(shape, 8):
        v, want = ex["video"], (ex["subject"], ex["move"])
        blurred = np.clip(np.round(gaussian_filter(v.astype(float), (0, 1, 1, 0))), 0, 255).astype(np.uint8)
        noisy = np.clip(np.round(v + rng.normal(0, 10, v.shape)), 0, 255).astype(np.uint8)
        for variant in (v, blurred, noisy):
            score = M.score_video(variant, *want)
            assert score["correct"], (want, score)
        # A mismatched prompt scores wrong: the prediction names the true subject and move.
        other_move = C.MOVES[(C.MOVES.index(ex["move"]) + 1) % len(C.MOVES)]
        assert not M.score_video(v, ex["subject"], other_move)["correct"]


def test_accuracy_parses_prompts_in_every_template():
    exs = _videos((9, 32, 32), 6)
    prompts = [C.caption(e["subject"], e["move"], k % 3) for k, e in enumerate(exs)]
    assert M.accuracy([e["video"] for e in exs], prompts) == {"accuracy": 100.0, "subject": 100.0, "move": 100.0,
                                                              "n": 6}
    still = np.repeat(exs[0]["video"][:1], 9, axis=0)  # a video that does not move
    assert M.accuracy([still], [prompts[0]])["move"] == 0.0
    with pytest.raises(ValueError, match="cannot parse prompt"):
        M.parse_prompt("a red circle moving left")


def test_builder_writes_splits_of_the_asked_size(tmp_path):
    b = generated.prepare(generated.CameraMoves, str(tmp_path), frames=5, height=16, width=16, train_size=8)
    assert b.info.splits["train"].num_examples == 8
    assert b.info.splits["validation"].num_examples == 1024
    first = b.as_data_source("validation")[0]
    np.testing.assert_array_equal(first["video"], C.example("validation", 0, 16, 16, 5)["video"])


class _RenderingPipe:
    """Generates what a perfect model would: each prompt's combination, rendered."""

    def generate(self, prompts, num_frames, height, width, seed=0, **kwargs):
        rng = np.random.default_rng(seed)
        return np.stack([C.render(*M.parse_prompt(p), height, width, num_frames, rng) for p in prompts])


def test_evaluate_pipeline_scores_seen_and_heldout_combinations():
    result = M.evaluate_pipeline(_RenderingPipe(), 5, 32, 32, seeds=(0,))
    assert result["seen"] == {"accuracy": 100.0, "subject": 100.0, "move": 100.0, "n": 56}
    assert result["heldout"]["n"] == 8 and result["heldout"]["accuracy"] == 100.0


def test_camera_clips_index_their_captions(tmp_path):
    from configs import tiny
    from sora_lite import captions, data

    cfg = tiny.get_config().data
    cfg.update(name="camera_moves", mixture="5x16x16", train_size=64, dir=str(tmp_path))
    rows = captions.caption_rows(cfg)
    assert len(rows) == 56 and all(len(r) == 3 for r in rows)
    batch = next(data.batches(data.clips(cfg, "validation"), 8, seed=0, repeat=False))
    assert batch["video"].shape == (8, 5, 16, 16, 3)
    assert all(c in rows[s] for c, s in zip(batch["caption"], batch["subject"]))
    assert data.sample_prompts(cfg) and all(M.parse_prompt(p) in C.SEEN for p in data.sample_prompts(cfg))


def test_partial_captions_add_each_attribute_alone_to_every_row():
    from configs import camera
    from sora_lite import captions

    def rows(partial):
        cfg = camera.get_config().data
        cfg.partial_captions = partial
        return captions.caption_rows(cfg)

    full, rows, rows3 = rows(0), rows(True), rows(3)  # True: v10's command, once each
    assert len(rows) == len(rows3) == len(full) == 56
    for (subject, move), row, row3, templates in zip(C.SEEN, rows, rows3, full):
        parts = [f"the camera {move}", f"the {subject}"]
        assert row == templates + templates + parts  # a quarter of the draws are partial
        assert row3 == templates + templates + parts * 3  # half


@pytest.mark.parametrize("update,message", [
    (dict(name="camera_move"), "data.name 'camera_move' is not a data set: use one of moving_shapes, camera_moves"),
    (dict(name="camera_moves", mixture="5x16x16,1x16x16"), "entry 1x16x16: Camera Moves clips need at least 2 frames"),
    (dict(partial_captions=1), "data.partial_captions is for Camera Moves' captions, not for moving_shapes"),
])
def test_bad_data_keys_are_one_line_errors(update, message):
    from configs import tiny
    from sora_lite import training

    cfg = tiny.get_config()
    cfg.data.update(**update)
    with pytest.raises(ValueError, match=message):
        training.check_mixture(cfg)
