"""Sampling: a time grid, an Euler step, classifier-free guidance, and the loop."""

import jax
import jax.numpy as jnp

from sora_lite import conditioning, diffusion
from sora_lite.flax_setup import nnx


def time_grid(steps: int, shift: float):
    """steps + 1 times from 1 (noise) to 0 (data), warped by the resolution shift."""
    return diffusion.shift_time(jnp.linspace(1.0, 0.0, steps + 1), shift)


def euler_step(x, v, t, t_next):
    return x + (t_next - t) * v


def guided_velocity(model, x, t, cond, null_text, null_mask, scale: float):
    """v_uncond + scale (v_cond - v_uncond), with both halves in one batched forward; the
    unconditional half drops the text and keeps any given frames."""
    b = x.shape[0]
    both = jax.tree.map(lambda a: jnp.concatenate([a, a]), cond)._replace(
        text=jnp.concatenate([cond.text, jnp.broadcast_to(null_text, cond.text.shape)]),
        mask=jnp.concatenate([cond.mask, jnp.broadcast_to(null_mask, cond.mask.shape)]))
    v = model(jnp.concatenate([x, x]), jnp.full((2 * b,), t), both)
    v_cond, v_uncond = v[:b], v[b:]
    return v_uncond + scale * (v_cond - v_uncond)


def sample(model, noise, cond, null_text, null_mask, steps: int, guidance: float | None, shift: float,
           start: float = 1.0):
    """Integrate the velocity field from x at time `start` (1: pure noise [B, t, h, w, C]; less:
    a noised latent, SDEdit) to a latent at t=0, in `steps` steps of the shifted grid. Latent
    frames wholly given (`cond.frames`) are held at their given latent, noised to each time.
    `guidance` None: the conditional velocity alone (scale 1), one forward pass a step, not two."""
    ts = start * time_grid(steps, shift)
    held = None if cond.frames is None else conditioning.held(cond.frames)  # (latent, keep)
    # The weights ride in the loop carry: NNX modules must live at the loop body's trace level.
    graphdef, state = nnx.split(model)

    def body(i, carry):
        x, state = carry
        model = nnx.merge(graphdef, state)
        if guidance is None:
            v = model(x, jnp.full(x.shape[:1], ts[i]), cond)
        else:
            v = guided_velocity(model, x, ts[i], cond, null_text, null_mask, guidance)
        x = euler_step(x, v, ts[i], ts[i + 1])
        if held is not None:
            latent, keep = held
            x = jnp.where(keep, diffusion.add_noise(latent, noise, jnp.full(x.shape[:1], ts[i + 1])), x)
        return x, state

    return jax.lax.fori_loop(0, steps, body, (noise, state))[0]
