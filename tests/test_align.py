"""Tests for sora_lite.align: the rotation fit, and aligning an autoencoder changes nothing it decodes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from ml_collections import ConfigDict

from sora_lite import align
from sora_lite import autoencoder as A


def make_ae(channels, seed, linear_skip=False):
    cfg = ConfigDict(dict(space_factor=4, widths=(8, 16), blocks=1, latent_channels=channels, linear_skip=linear_skip))
    ae = A.Autoencoder(cfg, nnx.Rngs(seed))
    ae.latent_shift[...] = jnp.linspace(-0.3, 0.2, channels)  # statistics as training sets them
    ae.latent_scale[...] = jnp.linspace(0.5, 2.0, channels)
    return ae


def videos(n=2):
    return [jax.random.uniform(jax.random.key(i), (2, 5, 16, 16, 3), minval=-1, maxval=1) for i in range(n)]


reconstruct = nnx.jit(lambda ae, v: ae.decode(ae.denormalize(A.encode_latent(ae, v))))


def test_the_coordinates_are_invertible_and_find_a_linearly_hidden_copy():
    rng = np.random.default_rng(0)
    old = rng.normal(size=(500, 3))
    mix = rng.normal(size=(5, 5))  # invertible
    new = np.concatenate([old, rng.normal(size=(500, 2))], axis=1) @ mix + 0.5  # old, hidden in a linear map
    t, c = align.fit_coordinates(new, old)
    assert np.linalg.cond(t) < 1e6
    u = new @ t + c
    np.testing.assert_allclose(u[:, :3], old, atol=1e-8)
    np.testing.assert_allclose(u[:, 3:].mean(0), 0.0, atol=1e-8)  # the rest normalised
    np.testing.assert_allclose(u[:, 3:].var(0, ddof=1), 1.0, rtol=1e-8)


@pytest.mark.parametrize("linear_skip", [False, True])
def test_aligning_keeps_every_reconstruction_and_fits_the_old_latent(linear_skip):
    old, new = make_ae(3, 0), make_ae(5, 1, linear_skip)
    clips = videos()
    before = [reconstruct(new, v) for v in clips]
    unaligned = align._latents(new, clips)[:, :3]
    target = align._latents(old, clips)
    matched = align.align(new, old, clips)
    for v, b in zip(clips, before):
        np.testing.assert_allclose(reconstruct(new, v), b, atol=1e-4)
    np.testing.assert_array_equal(new.latent_shift[...], 0.0)
    np.testing.assert_array_equal(new.latent_scale[...], 1.0)
    aligned = align._latents(new, clips)[:, :3]
    error = np.square(aligned - target).sum() / np.square(target - target.mean(0)).sum()
    np.testing.assert_allclose(matched, 1 - error, rtol=1e-4)
    assert error < np.square(unaligned - target).sum() / np.square(target - target.mean(0)).sum()


def test_an_autoencoder_aligned_to_itself_keeps_its_latent():
    old, new = make_ae(3, 0), make_ae(3, 0)
    clips = videos()
    assert align.align(new, old, clips) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(align._latents(new, clips), align._latents(old, clips), atol=1e-4)


def test_fewer_channels_than_the_model_is_a_clear_error():
    with pytest.raises(ValueError, match="has 2 latent channels, fewer than the model's 3"):
        align.align(make_ae(2, 1), make_ae(3, 0), videos(1))
