"""Sampling: a time grid, an Euler step, classifier-free guidance, and the loop."""

import jax
import jax.numpy as jnp
from flax import nnx

from sora_lite import diffusion


def time_grid(steps: int, shift: float):
    """steps + 1 times from 1 (noise) to 0 (data), warped by the resolution shift."""
    return diffusion.shift_time(jnp.linspace(1.0, 0.0, steps + 1), shift)


def euler_step(x, v, t, t_next):
    return x + (t_next - t) * v


def guided_velocity(model, x, t, text, mask, null_text, null_mask, scale: float):
    """v_uncond + scale (v_cond - v_uncond), with both halves in one batched forward."""
    b = x.shape[0]
    v = model(jnp.concatenate([x, x]), jnp.full((2 * b,), t),
              jnp.concatenate([text, jnp.broadcast_to(null_text, text.shape)]),
              jnp.concatenate([mask, jnp.broadcast_to(null_mask, mask.shape)]))
    v_cond, v_uncond = v[:b], v[b:]
    return v_uncond + scale * (v_cond - v_uncond)


def sample(model, noise, text, mask, null_text, null_mask, steps: int, guidance: float, shift: float):
    """Integrate the velocity field from noise [B, t, h, w, C] at t=1 to a latent at t=0."""
    ts = time_grid(steps, shift)
    # The weights ride in the loop carry: NNX modules must live at the loop body's trace level.
    graphdef, state = nnx.split(model)

    def body(i, carry):
        x, state = carry
        v = guided_velocity(nnx.merge(graphdef, state), x, ts[i], text, mask, null_text, null_mask, guidance)
        return euler_step(x, v, ts[i], ts[i + 1]), state

    return jax.lax.fori_loop(0, steps, body, (noise, state))[0]
