"""Spacetime patches: latent video <-> token sequence, and 3D rotary position tables.

Pure functions. Any latent (t, h, w) divisible by the patch (pt, ph, pw) works, so one
model handles any duration, resolution and aspect ratio: the token grid is
(t/pt, h/ph, w/pw); positions enter through RoPE, which needs no table size, and through each
token's place as a fraction of the canvas (NaViT's fractional positions), which no size bounds.
"""

import einops
import jax.numpy as jnp


def grid_shape(latent_thw, patch) -> tuple[int, int, int]:
    """Token grid (t', h', w') of a latent (t, h, w), or a one-line ValueError."""
    if any(n % p for n, p in zip(latent_thw, patch)):
        raise ValueError(f"latent size {tuple(latent_thw)} (t, h, w) must be divisible by the patch {tuple(patch)}")
    return tuple(n // p for n, p in zip(latent_thw, patch))


def patchify(z, patch):
    """[B, t, h, w, c] -> [B, N, pt*ph*pw*c] with N = t' h' w' (time-major order)."""
    pt, ph, pw = patch
    return einops.rearrange(z, "b (t p) (h q) (w r) c -> b (t h w) (p q r c)", p=pt, q=ph, r=pw)


def unpatchify(tokens, grid, patch):
    """Inverse of patchify: [B, N, pt*ph*pw*c] -> [B, t, h, w, c]."""
    (gt, gh, gw), (pt, ph, pw) = grid, patch
    return einops.rearrange(tokens, "b (t h w) (p q r c) -> b (t p) (h q) (w r) c",
                            t=gt, h=gh, w=gw, p=pt, q=ph, r=pw)


def token_coordinates(grid):
    """(t, h, w) index of each token of a (t', h', w') grid, time-major like patchify: [N, 3] float32."""
    coords = jnp.meshgrid(*[jnp.arange(n, dtype=jnp.float32) for n in grid], indexing="ij")
    return jnp.stack(coords, -1).reshape(-1, 3)


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Rotary dims given to (t, h, w): even numbers summing to head_dim, h and w equal."""
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for rotary embeddings; got {head_dim}")
    hw = (head_dim // 3) // 2 * 2
    return head_dim - 2 * hw, hw, hw


def rope_tables(grid, head_dim: int, theta: float = 10_000.0):
    """cos, sin [N, head_dim / 2] for a (t', h', w') token grid, one frequency band per axis."""
    coords = token_coordinates(grid)  # [N, 3]
    angles = []
    for axis, dims in enumerate(rope_split(head_dim)):
        freqs = theta ** (-jnp.arange(0, dims, 2, dtype=jnp.float32) / dims)  # [dims / 2]
        angles.append(coords[:, axis : axis + 1] * freqs)  # [N, dims / 2]
    angles = jnp.concatenate(angles, axis=-1)  # [N, head_dim / 2]
    return jnp.cos(angles), jnp.sin(angles)


def canvas_features(grid, octaves: int):
    """Where each token of a (t', h', w') grid lies as a fraction of the clip and canvas: [N, 6 * octaves],
    per axis (t, h, w) the sin, then cos, of pi 2^k f for its fraction f = (i + 1/2) / n. Relative RoPE
    cannot tell a token how far the canvas edges are; where a motion of 0.4 of the width may start
    depends on it."""
    fractions = (token_coordinates(grid) + 0.5) / jnp.asarray(grid, jnp.float32)  # [N, 3]
    angles = jnp.pi * fractions[:, :, None] * 2.0 ** jnp.arange(octaves, dtype=jnp.float32)  # [N, 3, octaves]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(fractions.shape[0], -1)


def apply_rope(x, cos, sin):
    """Rotate pairs (x[2i], x[2i+1]) of x [B, N, K, Dh] by the token's angles."""
    x1, x2 = x[..., 0::2], x[..., 1::2]  # [B, N, K, Dh / 2]
    cos, sin = cos[:, None, :], sin[:, None, :]  # [N, 1, Dh / 2]
    out = jnp.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
    return out.reshape(x.shape).astype(x.dtype)
