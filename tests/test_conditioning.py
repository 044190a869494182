"""Tests for sora_lite.conditioning: the kinds of given frames training draws, the frame
condition the DiT reads, and which latent frames the loss counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from ml_collections import ConfigDict

from sora_lite import conditioning as C
from sora_lite.autoencoder import Autoencoder, fold_time


def _only(kind):
    return [float(k == kind) for k in C.KINDS]


@pytest.mark.parametrize("frames", [5, 17])
def test_each_kind_gives_the_frames_it_names(frames):
    key, B = jax.random.key(0), 256
    masks = {k: np.asarray(C.sample_frame_masks(key, B, frames, _only(k))) for k in C.KINDS}
    assert not masks["none"].any()
    assert masks["first_frame"][:, 0].all() and not masks["first_frame"][:, 1:].any()
    for kind, flip in (("head", False), ("tail", True)):
        m = masks[kind][:, ::-1] if flip else masks[kind]
        n = m.sum(1)
        assert (n >= 1).all() and (n <= frames - 1).all() and len(set(n)) > 1
        np.testing.assert_array_equal(m, np.arange(frames)[None] < n[:, None])  # a contiguous run from the end
    ends = masks["first_last"]
    assert ends[:, 0].all() and ends[:, -1].all() and (ends.sum(1) <= 2 * max(1, (frames - 1) // 4)).all()
    rate = masks["keyframes"].mean()
    assert 0.15 < rate < 0.45 and masks["keyframes"].any(0).all()  # spread over every position
    mixed = np.asarray(C.sample_frame_masks(key, 2000, frames, [1, 1, 0, 0, 0, 0]))
    assert 0.45 < (mixed.sum(1) == 0).mean() < 0.55  # the weights set the kinds' shares
    assert not np.asarray(C.sample_frame_masks(key, 8, 1, _only("head"))).any()  # images: nothing given


def test_held_marks_the_latent_frames_wholly_given():
    # 9 frames -> latent frames {0}, {1-4}, {5-8}.
    mask = np.zeros((4, 9), bool)
    mask[0, 0] = True  # the first frame: latent frame 0 is given
    mask[1, :5] = True  # a head of 5 frames: latent frames 0 and 1
    mask[2, [0, 3, 8]] = True  # keyframes: only latent frame 0 wholly given
    folded = np.asarray(fold_time(jnp.asarray(mask)[:, :, None, None, None]), np.float32)  # [B, 3, 1, 1, 4]
    frames = np.concatenate([np.full((4, 3, 2, 2, 5), 7.0), np.broadcast_to(folded, (4, 3, 2, 2, 4))], -1)
    latent, keep = C.held(jnp.asarray(frames))
    assert latent.shape == (4, 3, 2, 2, 5) and (np.asarray(latent) == 7.0).all()
    np.testing.assert_array_equal(np.asarray(keep)[:, :, 0, 0, 0],
                                  [[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]])


def test_given_encodes_the_given_frames_and_folds_their_mask():
    cfg = ConfigDict(dict(space_factor=4, widths=(8, 16), blocks=1, latent_channels=4))
    ae = Autoencoder(cfg, nnx.Rngs(0))
    video = jax.random.uniform(jax.random.key(1), (3, 9, 8, 8, 3), minval=-1, maxval=1)
    mask = np.zeros((3, 9), bool)
    mask[1, 0] = True
    mask[2, [0, 6]] = True
    given = nnx.jit(C.given)  # compiled once: op by op is slow
    out = np.asarray(given(ae, video, jnp.asarray(mask)))  # [B, t, h, w, C + 4]
    assert out.shape == (3, 3, 2, 2, 4 + C.MASK_CHANNELS)
    assert not out[0].any()  # nothing given: all zero, exactly text-to-video
    np.testing.assert_array_equal(out[2, :, 0, 0, 4:], [[1, 1, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0]])
    # Only given frames reach the latent: changing another frame changes nothing.
    other = np.asarray(given(ae, video.at[2, 7].set(0.5), jnp.asarray(mask)))
    np.testing.assert_array_equal(other[2], out[2])
    moved = np.asarray(given(ae, video.at[2, 6].set(0.5), jnp.asarray(mask)))
    assert not np.allclose(moved[2, 2, ..., :4], out[2, 2, ..., :4])


def test_keyframe_positions():
    assert C.keyframe_positions(3, 17) == [0, 8, 16]
    assert C.keyframe_positions(2, 5) == [0, 4]
    assert C.keyframe_positions(4, 9) == [0, 3, 5, 8]
