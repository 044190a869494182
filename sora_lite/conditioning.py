"""Frames as prompts: what a video is generated from, and how given frames reach the DiT.

One mechanism serves every task (animate an image, extend, connect, interpolate keyframes,
continue a story): a pixel-frame mask [B, T] says which frames are given. The autoencoder
encodes the video with the other frames zeroed (Wan I2V's choice), and the mask of each
latent frame's four pixel frames is folded into four more channels, so a frame can sit at
any position, not only at the autoencoder's 4-frame group boundaries. The DiT adds these
channels to its tokens through a zero-initialised, bias-free projection: with nothing given
they are zero, which is exactly text-to-video, and a text-to-video checkpoint fine-tunes
from where it stands. The noisy latent keeps noise everywhere; the loss counts only latent
frames that are not wholly given, and sampling holds those at their given latent (`held`).
Guidance drops the text, never the frames.

Letters: B batch, T pixel frames, t latent frames, (h, w) latent size, C latent channels,
L text tokens, E text width.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sora_lite.autoencoder import TIME_FACTOR, fold_time

MASK_CHANNELS = TIME_FACTOR  # one per pixel frame of a latent frame


class Condition(NamedTuple):
    """What a batch of videos is generated from: a pytree the DiT, loss and sampler pass whole."""

    text: jax.Array  # [B, L, E] text encoder states
    mask: jax.Array  # [B, L] bool, the prompt's tokens
    frames: jax.Array | None = None  # [B, t, h, w, C + MASK_CHANNELS] given frames (`given`); None: none


# The kinds of condition training draws per example (config `train.conditions` weighs them).
KINDS = ("none", "first_frame", "head", "tail", "first_last", "keyframes")


def sample_frame_masks(key, batch: int, frames: int, weights) -> jax.Array:
    """[B, T] bool: which frames each example is given, its kind drawn with `weights` (per KINDS).
    head/tail: 1 to T-1 frames; first_last: 1 to max(1, (T-1)/4) at each end; keyframes: each
    frame with probability 0.1-0.5. Images (T = 1) are given nothing."""
    if frames == 1:
        return jnp.zeros((batch, 1), bool)
    k_kind, k_len, k_ends, k_rate, k_keys = jax.random.split(key, 5)
    kind = jax.random.categorical(k_kind, jnp.log(jnp.asarray(weights, jnp.float32)), shape=(batch,))  # [B]
    pos = jnp.arange(frames)[None]  # [1, T]
    n = jax.random.randint(k_len, (batch, 1), 1, frames)  # [B, 1] head or tail length
    a, b = jnp.split(jax.random.randint(k_ends, (batch, 2), 1, max(2, (frames - 1) // 4 + 1)), 2, axis=1)
    rate = jax.random.uniform(k_rate, (batch, 1), minval=0.1, maxval=0.5)
    masks = jnp.stack([jnp.zeros((batch, frames), bool), jnp.broadcast_to(pos == 0, (batch, frames)),
                       pos < n, pos >= frames - n, (pos < a) | (pos >= frames - b),
                       jax.random.uniform(k_keys, (batch, frames)) < rate])  # [KINDS, B, T]
    return jnp.take_along_axis(masks, kind[None, :, None], axis=0)[0]


def given(ae, video, frame_mask):
    """The DiT's frame condition [B, t, h, w, C + 4]: the normalised latent of `video` [B, T, H, W, 3]
    with the frames not in `frame_mask` [B, T] zeroed, and the mask folded per latent frame.
    A row given no frame is all zero, the same as text-to-video."""
    m = frame_mask[:, :, None, None, None].astype(video.dtype)  # [B, T, 1, 1, 1]
    latent = ae.normalize(ae.encode(video * m)[0])  # [B, t, h, w, C]
    any_given = frame_mask.any(axis=1)[:, None, None, None, None]  # [B, 1, 1, 1, 1]
    folded = jnp.broadcast_to(fold_time(m), (*latent.shape[:4], MASK_CHANNELS))  # [B, t, h, w, 4]
    return jnp.concatenate([jnp.where(any_given, latent, 0.0), folded], axis=-1)


def held(frames):
    """(latent [B, t, h, w, C], keep [B, t, 1, 1, 1] bool) of a frame condition: `keep` marks the
    latent frames wholly given. The loss skips them (the DiT is never trained to make them), so
    sampling holds them at their given latent, noised to each step's time (LTX-Video's way)."""
    latent, folded = frames[..., :-MASK_CHANNELS], frames[:, :, :1, :1, -MASK_CHANNELS:]
    return latent, folded.all(axis=-1, keepdims=True) > 0


def keyframe_positions(count: int, frames: int) -> list[int]:
    """Frames round(i (T - 1) / (K - 1)) of K keyframes spread over T frames."""
    return [int(np.round(i * (frames - 1) / (count - 1))) for i in range(count)]
