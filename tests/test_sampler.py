"""Tests for sora_lite.sampler: the time grid, Euler steps and classifier-free guidance."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sora_lite import diffusion, sampler
from sora_lite.conditioning import Condition


def test_time_grid():
    for steps, shift in [(1, 1.0), (4, 1.0), (25, 1.0), (10, 2.5)]:
        ts = np.asarray(sampler.time_grid(steps, shift))
        assert ts.shape == (steps + 1,) and ts[0] == 1.0 and ts[-1] == 0.0
        assert (np.diff(ts) < 0).all()
        expected = diffusion.shift_time(np.linspace(1.0, 0.0, steps + 1), shift)
        np.testing.assert_allclose(ts, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sampler.time_grid(4, 1.0), [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-7)


def test_euler_step():
    x, v = jnp.ones(3), jnp.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(sampler.euler_step(x, v, 0.8, 0.6), x - 0.2 * v, rtol=1e-6)


class Constant(nnx.Module):
    """The velocity field v(x, t) = c, whatever the text: Euler integrates it exactly."""

    def __init__(self, c):
        self.c = nnx.Param(c)

    def __call__(self, x, t, cond):
        return jnp.broadcast_to(self.c[...], x.shape)


class TextShift(nnx.Module):
    """v = x * scale + sum over real text tokens (+ given frames): conditional and unconditional
    fields differ."""

    def __init__(self):
        self.scale = nnx.Param(jnp.array(0.5))

    def __call__(self, x, t, cond):
        pooled = (cond.text * cond.mask[..., None]).sum((1, 2))  # [B]
        frames = 0.0 if cond.frames is None else cond.frames
        return x * self.scale[...] + (pooled + t)[:, None, None, None, None] + frames


def _text():
    text = jnp.arange(2 * 3 * 4, dtype=jnp.float32).reshape(2, 3, 4) / 10
    mask = jnp.array([[True, True, False], [True, False, False]])
    return Condition(text, mask), jnp.full((3, 4), -1.0), jnp.array([True, False, False])


def test_euler_on_constant_velocity_is_exact():
    noise = jax.random.normal(jax.random.key(0), (2, 2, 2, 2, 3))
    c = jnp.array([0.5, -1.0, 2.0])
    cond, null_text, null_mask = _text()
    for steps, shift, guidance in [(1, 1.0, 1.0), (7, 1.0, 4.0), (5, 3.0, 0.0)]:
        out = sampler.sample(Constant(c), noise, cond, null_text, null_mask, steps, guidance, shift)
        np.testing.assert_allclose(out, noise - c, rtol=1e-5, atol=1e-5)  # x0 = x1 - integral of v dt
    # From a noised latent at `start` (SDEdit), the integral covers [0, start] only.
    out = sampler.sample(Constant(c), noise, cond, null_text, null_mask, 4, 1.0, 2.0, start=0.4)
    np.testing.assert_allclose(out, noise - 0.4 * c, rtol=1e-5, atol=1e-5)


def test_guidance_scale_one_is_conditional_and_zero_unconditional():
    model = TextShift()
    x = jax.random.normal(jax.random.key(1), (2, 1, 2, 2, 3))
    c, null_text, null_mask = _text()
    c = c._replace(frames=jax.random.normal(jax.random.key(3), x.shape))
    t = 0.3
    cond = model(x, jnp.full((2,), t), c)
    # The unconditional half drops the text and keeps the given frames.
    uncond = model(x, jnp.full((2,), t), c._replace(text=jnp.broadcast_to(null_text, c.text.shape),
                                                   mask=jnp.broadcast_to(null_mask, c.mask.shape)))
    assert not np.allclose(cond, uncond)
    g = lambda s: sampler.guided_velocity(model, x, t, c, null_text, null_mask, s)  # noqa: E731
    np.testing.assert_allclose(g(1.0), cond, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g(0.0), uncond, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g(3.0), uncond + 3.0 * (cond - uncond), rtol=1e-5, atol=1e-5)


def test_sample_matches_a_python_loop():
    model = TextShift()
    noise = jax.random.normal(jax.random.key(2), (2, 1, 2, 2, 3))
    cond, null_text, null_mask = _text()
    steps, guidance, shift = 3, 2.0, 1.5
    x, ts = noise, sampler.time_grid(steps, shift)
    for i in range(steps):
        v = sampler.guided_velocity(model, x, ts[i], cond, null_text, null_mask, guidance)
        x = sampler.euler_step(x, v, ts[i], ts[i + 1])
    out = sampler.sample(model, noise, cond, null_text, null_mask, steps, guidance, shift)
    np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-5)


def test_no_guidance_is_scale_one_in_one_forward_pass():
    calls = []

    class Counting(TextShift):
        def __call__(self, x, t, cond):
            calls.append(x.shape[0])
            return super().__call__(x, t, cond)

    noise = jax.random.normal(jax.random.key(2), (2, 1, 2, 2, 3))
    cond, null_text, null_mask = _text()
    unguided = sampler.sample(Counting(), noise, cond, null_text, null_mask, 3, None, 1.5)
    assert calls == [2]  # traced once in the loop, at the batch's own size: no unconditional half
    guided = sampler.sample(TextShift(), noise, cond, null_text, null_mask, 3, 1.0, 1.5)
    np.testing.assert_allclose(unguided, guided, rtol=1e-5, atol=1e-5)


def test_wholly_given_latent_frames_are_held_at_their_noised_latent():
    """The given latent frame ends exactly at its latent; the others follow the model."""
    noise = jax.random.normal(jax.random.key(4), (2, 3, 2, 2, 3))
    c = jnp.array([0.5, -1.0, 2.0])
    given = jax.random.normal(jax.random.key(5), (2, 3, 2, 2, 3))
    mask = jnp.zeros((2, 3, 2, 2, 4)).at[0, 1].set(1.0)  # latent frame 1 of the first video, all 4 frames
    cond, null_text, null_mask = _text()
    out = sampler.sample(Constant(c), noise, cond._replace(frames=jnp.concatenate([given, mask], -1)),
                         null_text, null_mask, 4, 1.0, 1.5)
    np.testing.assert_allclose(out[0, 1], given[0, 1], rtol=1e-5, atol=1e-5)
    free = np.ones(out.shape[:2], bool)
    free[0, 1] = False
    np.testing.assert_allclose(np.asarray(out)[free], np.asarray(noise - c)[free], rtol=1e-5, atol=1e-5)
