"""Rectified flow, as small pure functions.

x_t = (1 - t) x0 + t noise, t in [0, 1] (t = 1 is pure noise); the model predicts the
velocity v = noise - x0, so dx_t/dt = v and sampling integrates from t = 1 to t = 0.
"""

import math

import jax
import jax.numpy as jnp


def timestep_shift(num_tokens: int, base_tokens: int) -> float:
    """Resolution-aware shift: more tokens need more time at high noise (SD3 / Open-Sora)."""
    return math.sqrt(num_tokens / base_tokens)


def shift_time(t, shift: float):
    """Warp t towards 1 (more noise) by `shift`; shift = 1 is the identity."""
    return shift * t / (1 + (shift - 1) * t)


def sample_timesteps(key, batch: int, logit_mean: float, logit_std: float, shift: float):
    """Logit-normal timesteps (SD3), then the resolution shift: [B]."""
    t = jax.nn.sigmoid(logit_mean + logit_std * jax.random.normal(key, (batch,)))
    return shift_time(t, shift)


def noise(seed, count: int, shape) -> jax.Array:
    """Sampling's starting noise [count, *shape]: sample i from fold_in(key(seed), i), so that a
    video does not depend on how many are made with it. `seed` may be traced (a saved program
    makes its own noise: the same bits as made outside it)."""
    key = jax.random.key(seed)
    return jnp.stack([jax.random.normal(jax.random.fold_in(key, i), shape) for i in range(count)])


def add_noise(x0, noise, t):
    """x_t for t [B] broadcast over the latent's other axes."""
    t = t.reshape(-1, *([1] * (x0.ndim - 1)))
    return (1 - t) * x0 + t * noise


def velocity_target(x0, noise):
    return noise - x0


def drop_captions(key, cond, null_text, null_mask, rate: float):
    """Replace each sample's caption by the empty caption with probability `rate` (for CFG);
    given frames stay, as guidance at sampling keeps them."""
    drop = jax.random.bernoulli(key, rate, (cond.text.shape[0],))  # [B]
    text = jnp.where(drop[:, None, None], null_text[None], cond.text)  # [B, L, E]
    mask = jnp.where(drop[:, None], null_mask[None], cond.mask)  # [B, L]
    return cond._replace(text=text, mask=mask)


def loss(model, x0, cond, null_text, null_mask, key, cfg, shift: float, weights=None, noise=None, times=None,
         channel_weights=None):
    """Mean squared error between predicted and true velocity at random t and random `noise` (or
    the noise given: x0 is its sample, distill.py), over the latent frames `weights` [B, t]
    counts (default: all; given frames are not generated), plus `cfg.motion_weight` times that error
    in the change between consecutive latent frames. t is logit-normal, or one of `times` [S] when
    given (distill.py: the few-step sampler's own). `channel_weights` [C] weighs the latent's
    channels in the error (default: all 1)."""
    k_t, k_noise, k_drop = jax.random.split(key, 3)
    if times is None:
        t = sample_timesteps(k_t, x0.shape[0], cfg.logit_mean, cfg.logit_std, shift)
    else:
        t = jax.random.choice(k_t, times, (x0.shape[0],))
    if noise is None:
        noise = jax.random.normal(k_noise, x0.shape, x0.dtype)
    cond = drop_captions(k_drop, cond, null_text, null_mask, cfg.caption_dropout)
    miss = model(add_noise(x0, noise, t), t, cond).astype(jnp.float32) - velocity_target(x0, noise)  # [B, t, h, w, C]
    if channel_weights is not None:
        miss = miss * jnp.sqrt(channel_weights)  # squared below
    err = jnp.mean(jnp.square(miss), axis=(2, 3, 4))  # [B, t]
    if cfg.motion_weight and x0.shape[1] > 1:
        # What changes from one latent frame to the next (the motion) is a small part of the plain
        # error, which the content that every frame shares dominates; this term weighs it on its own
        # and counts it against the later frame of each pair.
        change = jnp.mean(jnp.square(miss[:, 1:] - miss[:, :-1]), axis=(2, 3, 4))  # [B, t - 1]
        err = err.at[:, 1:].add(cfg.motion_weight * change)
    if weights is None:
        return jnp.mean(err)
    return jnp.sum(err * weights) / jnp.maximum(jnp.sum(weights), 1.0)
