"""Tests for sora_lite.autoencoder: shapes, the latent size rule, causality, time folding."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from ml_collections import ConfigDict

from sora_lite import autoencoder as A


def ae_cfg(space_factor=4, widths=(8, 16), latent_channels=4, linear_skip=False):
    return ConfigDict(dict(space_factor=space_factor, widths=widths, blocks=1, latent_channels=latent_channels,
                           linear_skip=linear_skip))


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "linear_skip"])
def ae4(request):
    return A.Autoencoder(ae_cfg(linear_skip=request.param), nnx.Rngs(0))


# Jitted once per shape: faster than running the modules op by op.
encode = nnx.jit(lambda model, video: model.encode(video))
decode = nnx.jit(lambda model, z: model.decode(z))


def _video(key, T, H=16, W=16, B=1):
    return jax.random.uniform(jax.random.key(key), (B, T, H, W, 3), minval=-1.0, maxval=1.0)


@pytest.mark.parametrize("linear_skip", [False, True])
@pytest.mark.parametrize("space_factor,widths", [(4, (8, 16)), (8, (8, 16, 32))])
def test_encode_decode_shapes(space_factor, widths, linear_skip):
    """Shapes by abstract evaluation (no compile); the numeric tests below run the real thing."""
    cfg = ae_cfg(space_factor, widths, linear_skip=linear_skip)
    model = nnx.eval_shape(lambda: A.Autoencoder(cfg, nnx.Rngs(0)))
    for T, H, W in [(1, 16, 16), (5, 16, 16), (9, 16, 16), (5, 16, 24), (9, 32, 8)]:
        video = jax.ShapeDtypeStruct((2, T, H, W, 3), jnp.float32)
        mean, logvar = nnx.eval_shape(lambda m, v: m.encode(v), model, video)
        t, h, w, c = A.latent_shape(cfg, T, H, W)
        assert (t, h, w, c) == (1 + (T - 1) // 4, H // space_factor, W // space_factor, 4)
        assert mean.shape == logvar.shape == (2, t, h, w, c)
        assert nnx.eval_shape(lambda m, z: m.decode(z), model, mean).shape == (2, T, H, W, 3)


def test_decode_encode_run(ae4):
    mean, logvar = encode(ae4, _video(0, 5, 16, 24))
    assert mean.shape == (1, 2, 4, 6, 4) and np.isfinite(mean).all() and (logvar <= 20).all()
    out = decode(ae4, mean)
    assert out.shape == (1, 5, 16, 24, 3) and np.isfinite(out).all()


def test_space_factor_must_match_widths():
    with pytest.raises(ValueError, match="space_factor 8 needs 3 widths"):
        A.Autoencoder(ae_cfg(8, (8, 16)), nnx.Rngs(0))


@pytest.mark.parametrize("frames,height,width,constraint", [
    (6, 32, 32, "frames must be 1 + 4k"),
    (0, 32, 32, "frames must be 1 + 4k"),
    (5, 30, 32, "positive multiples of 4"),
    (5, 0, 32, "positive multiples of 4"),
    (5, 32, -4, "positive multiples of 4"),
])
def test_latent_shape_errors_name_the_constraint(frames, height, width, constraint):
    with pytest.raises(ValueError, match=re.escape(constraint)) as e:
        A.latent_shape(ae_cfg(), frames, height, width)
    assert "\n" not in str(e.value)


def test_latent_shape_valid():
    assert A.latent_shape(ae_cfg(), 17, 32, 48) == (5, 8, 12, 4)
    assert A.latent_shape(ae_cfg(8, (8, 16, 32), 16), 1, 64, 32) == (1, 8, 4, 16)


def test_encoder_is_causal(ae4):
    """Latent frame j sees only frames <= 4j: changing later frames leaves it unchanged."""
    video = _video(1, 9)
    mean, _ = encode(ae4, video)
    for j in range(3):
        changed = video.at[:, 4 * j + 1 :].set(_video(2, 9)[:, 4 * j + 1 :])
        mean2, _ = encode(ae4, changed)
        np.testing.assert_array_equal(mean2[:, : j + 1], mean[:, : j + 1])
        if j < 2:  # ... and the later latent frames do see the change
            assert not np.allclose(mean2[:, j + 1], mean[:, j + 1], atol=1e-4)


def test_decoder_is_causal(ae4):
    """Output frames of latent frame j (frames <= 4j) do not depend on later latent frames."""
    z = jax.random.normal(jax.random.key(3), (1, 3, 4, 4, 4))
    out = decode(ae4, z)
    out2 = decode(ae4, z.at[:, 2].add(1.0))
    np.testing.assert_array_equal(out2[:, :5], out[:, :5])
    assert not np.allclose(out2[:, 5:], out[:, 5:], atol=1e-4)


def test_fold_unfold_time_round_trip():
    x = jax.random.normal(jax.random.key(0), (2, 9, 4, 6, 3))
    folded = A.fold_time(x)
    assert folded.shape == (2, 3, 4, 6, 12)
    # The first latent frame is the first frame repeated; the next holds frames 1..4 in order.
    np.testing.assert_array_equal(folded[:, 0], jnp.tile(x[:, 0], (1, 1, 1, 4)))
    np.testing.assert_array_equal(folded[:, 1, ..., 3:6], x[:, 2])
    np.testing.assert_array_equal(A.unfold_time(folded), x)
    one = x[:, :1]
    np.testing.assert_array_equal(A.unfold_time(A.fold_time(one)), one)


def test_normalize_round_trip(ae4):
    z = jax.random.normal(jax.random.key(4), (1, 2, 4, 4, 4))
    ae4.latent_shift[...] = jnp.arange(4.0)
    ae4.latent_scale[...] = jnp.full((4,), 2.0)
    try:
        np.testing.assert_allclose(ae4.normalize(z), (z - jnp.arange(4.0)) / 2.0, rtol=1e-6)
        np.testing.assert_allclose(ae4.denormalize(ae4.normalize(z)), z, rtol=1e-5, atol=1e-6)
    finally:
        ae4.latent_shift[...] = jnp.zeros(4)
        ae4.latent_scale[...] = jnp.ones(4)
    assert isinstance(ae4.latent_shift, A.LatentStat) and not isinstance(ae4.latent_shift, nnx.Param)


def test_an_autoencoder_on_a_base_has_its_latent_first_and_decodes_as_it_before_training():
    base = A.Autoencoder(ae_cfg(linear_skip=True), nnx.Rngs(0))
    base.latent_shift[...], base.latent_scale[...] = jnp.arange(4.0), jnp.full((4,), 2.0)
    ae = A.Autoencoder(ConfigDict(dict(ae_cfg(latent_channels=6, linear_skip=True), base=base.cfg)), nnx.Rngs(1))
    nnx.update(ae.base, nnx.state(base))
    video = _video(5, 5)
    mean, logvar = encode(ae, video)
    base_mean, base_logvar = encode(base, video)
    assert mean.shape == (1, 2, 4, 4, 6)
    np.testing.assert_array_equal(mean[..., :4], base_mean)
    np.testing.assert_array_equal(logvar[..., :4], base_logvar)
    assert np.abs(mean[..., 4:]).max() > 0  # its own channels
    np.testing.assert_array_equal(decode(ae, mean), decode(base, base_mean))  # the new decoder starts at zero
    with pytest.raises(ValueError, match="latent_channels 4 must exceed the base autoencoder's 4"):
        A.Autoencoder(ConfigDict(dict(ae_cfg(), base=base.cfg)), nnx.Rngs(1))
