"""Tests for sora_lite.diffusion: rectified flow noising, targets, timesteps, caption dropout, loss."""

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from sora_lite import diffusion as F
from sora_lite.conditioning import Condition


def _pair(shape=(3, 2, 4, 4, 5), seed=0):
    k0, k1 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k0, shape), jax.random.normal(k1, shape)


def test_add_noise_endpoints_and_interpolation():
    x0, noise = _pair()
    np.testing.assert_array_equal(F.add_noise(x0, noise, jnp.zeros(3)), x0)
    np.testing.assert_array_equal(F.add_noise(x0, noise, jnp.ones(3)), noise)
    t = jnp.array([0.0, 0.25, 1.0])  # per-sample t broadcast over the other axes
    xt = F.add_noise(x0, noise, t)
    np.testing.assert_allclose(xt[1], 0.75 * x0[1] + 0.25 * noise[1], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(xt[0], x0[0])
    np.testing.assert_array_equal(xt[2], noise[2])


def test_velocity_target_is_the_time_derivative():
    x0, noise = _pair()
    v = F.velocity_target(x0, noise)
    np.testing.assert_array_equal(v, noise - x0)
    t, dt = jnp.full((3,), 0.4), 1e-2
    finite_diff = (F.add_noise(x0, noise, t + dt) - F.add_noise(x0, noise, t)) / dt
    np.testing.assert_allclose(finite_diff, v, rtol=1e-3, atol=1e-3)


def test_shift_time():
    t = jnp.linspace(0.0, 1.0, 101)
    np.testing.assert_allclose(F.shift_time(t, 1.0), t, rtol=1e-6, atol=1e-7)
    for shift in (0.5, 2.0, 3.0):
        s = np.asarray(F.shift_time(t, shift))
        assert (np.diff(s) > 0).all()  # strictly increasing
        np.testing.assert_allclose(s[[0, -1]], [0.0, 1.0], atol=1e-6)
        inner = s[1:-1] - np.asarray(t[1:-1])
        assert (inner > 0).all() if shift > 1 else (inner < 0).all()  # shift > 1 adds noise
    np.testing.assert_allclose(F.shift_time(0.5, 3.0), 0.75, rtol=1e-6)  # 3 * .5 / (1 + 2 * .5)


def test_timestep_shift_grows_with_tokens():
    assert F.timestep_shift(256, 256) == 1.0
    assert abs(F.timestep_shift(1024, 256) - 2.0) < 1e-6
    shifts = [F.timestep_shift(n, 256) for n in (16, 64, 256, 512, 4096)]
    assert all(a < b for a, b in zip(shifts, shifts[1:])) and isinstance(shifts[0], float)


def test_sample_timesteps_logit_normal_in_open_interval():
    t = np.asarray(F.sample_timesteps(jax.random.key(0), 20_000, 0.0, 1.0, 1.0))
    assert t.shape == (20_000,) and (t > 0).all() and (t < 1).all()
    assert abs(np.median(t) - 0.5) < 0.02  # sigmoid(N(0, 1)) is symmetric about 1/2
    logit = np.log(t / (1 - t))
    assert abs(logit.std() - 1.0) < 0.03
    shifted = np.asarray(F.sample_timesteps(jax.random.key(0), 20_000, 0.0, 1.0, 3.0))
    np.testing.assert_allclose(shifted, F.shift_time(t, 3.0), rtol=1e-5)  # same draws, then warped
    assert (shifted < 1).all() and np.median(shifted) > 0.7
    moved = np.asarray(F.sample_timesteps(jax.random.key(0), 20_000, 1.0, 1.0, 1.0))
    assert abs(np.median(np.log(moved / (1 - moved))) - 1.0) < 0.03


def test_drop_captions_rate_and_replacement():
    B, L, E = 4000, 3, 2
    text = jnp.ones((B, L, E))
    mask = jnp.ones((B, L), bool)
    null_text, null_mask = jnp.full((L, E), -5.0), jnp.array([True, False, False])
    for rate in (0.0, 0.1, 0.5, 1.0):
        frames = jnp.ones((B, 1, 1, 1, 2))
        out, out_mask, out_frames = F.drop_captions(jax.random.key(1), Condition(text, mask, frames), null_text,
                                                    null_mask, rate)
        assert out_frames is frames  # given frames are never dropped
        dropped = np.asarray(out[:, 0, 0] == -5.0)
        assert abs(dropped.mean() - rate) < 0.03
        np.testing.assert_array_equal(out[dropped], np.broadcast_to(null_text, (dropped.sum(), L, E)))
        np.testing.assert_array_equal(out[~dropped], text[~dropped])
        np.testing.assert_array_equal(out_mask[dropped], np.broadcast_to(null_mask, (dropped.sum(), L)))
        assert np.asarray(out_mask[~dropped]).all()


def test_loss_is_zero_for_the_true_velocity_and_positive_otherwise():
    x0, _ = _pair((8, 1, 2, 2, 3))
    cfg = ConfigDict(dict(logit_mean=0.0, logit_std=1.0, caption_dropout=0.1, motion_weight=0.0))
    text, mask = jnp.zeros((8, 2, 4)), jnp.ones((8, 2), bool)
    null = (jnp.zeros((2, 4)), jnp.ones((2,), bool))
    seen_t = []

    def oracle(xt, t, cond):  # knows x0, so recovers v = (x_t - x0) / t exactly
        seen_t.append(t)
        return (xt - x0) / t.reshape(-1, 1, 1, 1, 1)

    cond = Condition(text, mask)
    loss = F.loss(oracle, x0, cond, *null, jax.random.key(0), cfg, 1.0)
    assert float(loss) < 1e-8
    zero = F.loss(lambda xt, *_: jnp.zeros_like(xt), x0, cond, *null, jax.random.key(0), cfg, 1.0)
    # A zero prediction costs E|noise - x0|^2 = 1 + E[x0^2] (about 2 for unit x0).
    assert 1.0 < float(zero) < 3.5
    assert seen_t[0].shape == (8,)


def test_loss_counts_only_the_weighted_latent_frames():
    x0, _ = _pair((2, 3, 2, 2, 3))
    cfg = ConfigDict(dict(logit_mean=0.0, logit_std=1.0, caption_dropout=0.0, motion_weight=0.0))
    cond, null = Condition(jnp.zeros((2, 2, 4)), jnp.ones((2, 2), bool)), (jnp.zeros((2, 4)), jnp.ones((2,), bool))
    wrong_at_frame_1 = lambda xt, t, c: jnp.zeros_like(xt).at[:, 1].set(100.0)  # noqa: E731
    key = jax.random.key(0)
    every = F.loss(wrong_at_frame_1, x0, cond, *null, key, cfg, 1.0)
    without_1 = F.loss(wrong_at_frame_1, x0, cond, *null, key, cfg, 1.0, jnp.array([[1.0, 0.0, 1.0]] * 2))
    only_1 = F.loss(wrong_at_frame_1, x0, cond, *null, key, cfg, 1.0, jnp.array([[0.0, 1.0, 0.0]] * 2))
    assert float(without_1) < 10 < float(every) < float(only_1)


def test_motion_weight_charges_only_errors_that_change_between_latent_frames():
    """An error every latent frame shares (the content) costs the same with the motion term; one
    that differs from frame to frame (the motion) costs more."""
    x0, noise = _pair((2, 3, 2, 2, 3))
    cond, null = Condition(jnp.zeros((2, 2, 4)), jnp.ones((2, 2), bool)), (jnp.zeros((2, 4)), jnp.ones((2,), bool))
    plain, motion = (ConfigDict(dict(logit_mean=0.0, logit_std=1.0, caption_dropout=0.0, motion_weight=w))
                     for w in (0.0, 2.0))
    line = noise - x0
    same = lambda xt, t, c: line + 1.0  # noqa: E731  off by 1 everywhere, in every frame alike
    moving = lambda xt, t, c: line + jnp.array([1.0, -1.0, 1.0])[None, :, None, None, None]  # noqa: E731
    key = jax.random.key(0)
    loss = lambda cfg, model: float(F.loss(model, x0, cond, *null, key, cfg, 1.0, noise=noise))  # noqa: E731
    np.testing.assert_allclose(loss(motion, same), loss(plain, same), rtol=1e-6)
    np.testing.assert_allclose(loss(plain, moving), 1.0, rtol=1e-6)
    # Frames 1 and 2 each change by 2 from the last: (3 + 2 * 2 * 2^2) / 3.
    np.testing.assert_allclose(loss(motion, moving), (3 + 2 * 2 * 4) / 3, rtol=1e-6)


def test_loss_with_given_noise_targets_that_noise():
    """Distillation pairs: x0 is the sample of a known noise, and the target is their line."""
    x0, noise = _pair((4, 1, 2, 2, 3))
    cfg = ConfigDict(dict(logit_mean=0.0, logit_std=1.0, caption_dropout=0.0, motion_weight=0.0))
    cond, null = Condition(jnp.zeros((4, 2, 4)), jnp.ones((4, 2), bool)), (jnp.zeros((2, 4)), jnp.ones((2,), bool))
    line = lambda xt, t, c: noise - x0  # noqa: E731  the straight path's velocity
    assert float(F.loss(line, x0, cond, *null, jax.random.key(0), cfg, 1.0, noise=noise)) < 1e-10
    assert float(F.loss(line, x0, cond, *null, jax.random.key(1), cfg, 1.0)) > 0.5  # fresh noise: another line


def test_channel_weights_scale_each_channels_error():
    x0, noise = _pair((2, 2, 2, 2, 3))
    cfg = ConfigDict(dict(logit_mean=0.0, logit_std=1.0, caption_dropout=0.0, motion_weight=2.0))
    cond, null = Condition(jnp.zeros((2, 2, 4)), jnp.ones((2, 2), bool)), (jnp.zeros((2, 4)), jnp.ones((2,), bool))
    off = lambda xt, t, c: noise - x0 + jnp.array([0.0, 1.0, 3.0])  # noqa: E731  channel c off by 0, 1, 3
    loss = lambda w: float(F.loss(off, x0, cond, *null, jax.random.key(0), cfg, 1.0, noise=noise,  # noqa: E731
                                  channel_weights=w))
    np.testing.assert_allclose(loss(None), (1 + 9) / 3, rtol=1e-6)
    np.testing.assert_allclose(loss(jnp.array([1.0, 1.0, 0.1])), (1 + 0.9) / 3, rtol=1e-6)
