"""The diffusion transformer over spacetime patches.

patchify -> linear embed (+ given frames, conditioning.py; + canvas position) -> depth x [adaLN-Zero self-attention with 3D RoPE and QK-norm,
cross-attention to text tokens, adaLN-Zero MLP] -> adaLN final layer -> unpatchify.

The blocks are stacked (one parameter tree with a leading `layers` axis) and run with
`nnx.scan`, so compile time does not grow with depth. Every parameter carries logical
axis names (`embed`, `heads`, `mlp`, ...) that `sharding.py` maps onto mesh axes.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from sora_lite import patchify as P
from sora_lite import sharding
from sora_lite.conditioning import MASK_CHANNELS, Condition
from sora_lite.flax_setup import nnx

TEXT_DIM = 384  # MiniLM hidden size
CANVAS_OCTAVES = 4  # frequencies of each axis's canvas fraction (patchify.canvas_features)


@dataclasses.dataclass(frozen=True)
class Size:
    depth: int
    width: int
    heads: int
    mlp_ratio: float = 4.0


# DiT's S/B/L/XL (Peebles & Xie), plus small sizes that train on a CPU.
SIZES = {
    "tiny": Size(depth=2, width=64, heads=4),  # 4 heads: Ulysses runs on a sequence=4 mesh
    "cpu": Size(depth=6, width=128, heads=4),
    "cpu_deep": Size(depth=12, width=128, heads=4),  # "cpu" at twice the depth: a cpu model grows into it
    "S": Size(depth=12, width=384, heads=6),
    "B": Size(depth=12, width=768, heads=12),
    "L": Size(depth=24, width=1024, heads=16),
    "XL": Size(depth=28, width=1152, heads=16),
}

# The one visible place where adaLN-Zero, the output projection and the given-frames and canvas
# position inputs are zero-initialised: the gated self-attention and MLP branches start switched
# off, the model starts by predicting zero velocity, and given frames and canvas positions start
# ignored (so a checkpoint without them fine-tunes into a model with them from where it stands).
ZERO = nnx.initializers.zeros_init()
DENSE = nnx.initializers.xavier_uniform()

# `precision`: the compute dtype. Parameters (and so the optimizer state) stay float32: the
# master weights; each layer casts them to the compute dtype on use.
PRECISIONS = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# `remat`: what a block keeps for the backward pass. "dots" keeps the projections' outputs
# (2D matmuls) and recomputes attention and the elementwise ops; "full" keeps only each
# block's input and recomputes the block.
REMAT_POLICIES = {"none": None, "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
                  "full": jax.checkpoint_policies.nothing_saveable}


@jax.custom_vjp
def add_bias(y, b):  # y [M, D], b [D]
    return y + b


# The bias gradient as a product with ones: XLA:CPU rewrites a sum over the rows into a windowed
# tree reduction that runs several times slower than this matrix-vector product.
add_bias.defvjp(lambda y, b: (y + b, None), lambda _, g: (g, jnp.ones(g.shape[0], g.dtype) @ g))


class Dense(nnx.Linear):
    """nnx.Linear as XLA:CPU trains it fastest: it multiplies [B*N, D] rather than [B, N, D] (the
    weight gradient of the 2D form is about 2x faster) and adds its bias by `add_bias`. Other
    backends are indifferent to both."""

    def __call__(self, x):  # x [..., Din] -> [..., Dout]
        bias = None if self.bias is None else self.bias[...]
        rows, kernel, bias = self.promote_dtype((x.reshape(-1, x.shape[-1]), self.kernel[...], bias), dtype=self.dtype)
        y = rows @ kernel  # [M, Dout], M = B*N
        return (y if bias is None else add_bias(y, bias)).reshape(*x.shape[:-1], -1)


def dense(din, dout, names, rngs, dtype, init=DENSE, use_bias=True):
    return Dense(din, dout, kernel_init=nnx.with_partitioning(init, names), use_bias=use_bias,
                 bias_init=nnx.with_partitioning(ZERO, names[1:]), dtype=dtype, rngs=rngs)


def modulate(x, shift, scale):  # x [B, N, D]; shift, scale [B, D]
    return x * (1 + scale[:, None]) + shift[:, None]


def timestep_embedding(t, dim: int, max_period: float = 10_000.0):
    """Sinusoidal features of t in [0, 1] (scaled to [0, 1000] like DiT): [B] -> [B, dim]."""
    half = dim // 2
    freqs = jnp.exp(-jnp.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = 1000.0 * t[:, None] * freqs  # [B, dim / 2]
    return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)


class Attention(nnx.Module):
    """Multi-head attention with QK-norm; self-attention gets RoPE, cross-attention a key mask."""

    def __init__(self, dim, heads, rngs, dtype, kv_dim=None):
        self.heads = heads
        kv_dim = kv_dim or dim
        self.q = dense(dim, dim, ("embed", "heads"), rngs, dtype)
        self.kv = dense(kv_dim, 2 * dim, ("embed", "heads"), rngs, dtype)
        self.q_norm = nnx.RMSNorm(dim // heads, dtype=dtype, rngs=rngs)
        self.k_norm = nnx.RMSNorm(dim // heads, dtype=dtype, rngs=rngs)
        self.out = dense(dim, dim, ("heads", "embed"), rngs, dtype)

    def __call__(self, x, context=None, rope=None, mask=None):  # x [B, N, D], context [B, M, Dc]
        b, n, d = x.shape
        context = x if context is None else context
        q = self.q(x).reshape(b, n, self.heads, -1)  # [B, N, K, Dh]
        k, v = jnp.split(self.kv(context).reshape(b, context.shape[1], self.heads, -1), 2, axis=-1)
        q, k = self.q_norm(q), self.k_norm(k)  # QK-norm keeps attention logits bounded
        if rope is not None:
            q, k = P.apply_rope(q, *rope), P.apply_rope(k, *rope)
        mask = None if mask is None else mask[:, None, None, :]  # [B, 1, 1, M]
        o = sharding.attention(q, k.astype(q.dtype), v.astype(q.dtype), mask)  # Ulysses on a sequence mesh
        return self.out(o.reshape(b, n, d))  # [B, N, D]


class Block(nnx.Module):
    def __init__(self, size: Size, rngs, dtype):
        d = size.width
        self.norm1 = nnx.LayerNorm(d, use_bias=False, use_scale=False, dtype=dtype, rngs=rngs)
        self.attn = Attention(d, size.heads, rngs, dtype)
        self.norm_cross = nnx.LayerNorm(d, dtype=dtype, rngs=rngs)
        self.cross = Attention(d, size.heads, rngs, dtype, kv_dim=d)
        self.norm2 = nnx.LayerNorm(d, use_bias=False, use_scale=False, dtype=dtype, rngs=rngs)
        hidden = int(d * size.mlp_ratio)
        self.mlp_in = dense(d, hidden, ("embed", "mlp"), rngs, dtype)
        self.mlp_out = dense(hidden, d, ("mlp", "embed"), rngs, dtype)
        self.ada = dense(d, 6 * d, ("embed", "mlp"), rngs, dtype, init=ZERO)  # adaLN-Zero

    def __call__(self, x, c, text, text_mask, rope):  # x [B, N, D], c [B, D], text [B, L, D]
        # The modulations are gathered whole before the split: each chunk scales the full width.
        # (Splitting a tensor-sharded axis here is also what XLA:CPU miscompiled on a 3-axis mesh.)
        ada = sharding.constrain(self.ada(nnx.silu(c)), ("batch", None))  # [B, 6D]
        shift1, scale1, gate1, shift2, scale2, gate2 = jnp.split(ada, 6, axis=-1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1), rope=rope)
        x = x + self.cross(self.norm_cross(x), text, mask=text_mask)
        h = self.mlp_out(nnx.gelu(self.mlp_in(modulate(self.norm2(x), shift2, scale2))))
        return x + gate2[:, None] * h


class DiT(nnx.Module):
    """Velocity model v(x_t, t, condition) on latent videos of any (t, h, w) divisible by `patch`."""

    def __init__(self, size: str, latent_channels: int, patch=(1, 2, 2), precision: str = "float32",
                 remat: str = "none", canvas_position: bool = True, *, rngs: nnx.Rngs):
        for name, value, choices in (("size", size, SIZES), ("precision", precision, PRECISIONS),
                                     ("remat", remat, REMAT_POLICIES)):
            if value not in choices:
                raise ValueError(f"unknown DiT {name} {value!r}; choose one of {list(choices)}")
        s, dtype = SIZES[size], PRECISIONS[precision]
        self.size, self.patch, self.channels, self.remat = s, tuple(patch), latent_channels, remat
        d, patch_dim = s.width, latent_channels * patch[0] * patch[1] * patch[2]
        self.x_embed = dense(patch_dim, d, ("patch", "embed"), rngs, dtype)
        # No bias: zero given frames (text-to-video) add exactly nothing, however it trains.
        frames_dim = (latent_channels + MASK_CHANNELS) * patch[0] * patch[1] * patch[2]
        self.frames_embed = dense(frames_dim, d, ("patch", "embed"), rngs, dtype, init=ZERO, use_bias=False)
        # Each token's place as a fraction of the canvas (patchify.canvas_features); no bias, like frames.
        self.canvas_embed = (dense(6 * CANVAS_OCTAVES, d, ("freq", "embed"), rngs, dtype, init=ZERO, use_bias=False)
                             if canvas_position else None)
        self.t_embed1 = dense(256, d, ("freq", "embed"), rngs, dtype)
        self.t_embed2 = dense(d, d, ("mlp", "embed"), rngs, dtype)
        self.text_proj = dense(TEXT_DIM, d, ("text", "embed"), rngs, dtype)
        self.text_pool = dense(TEXT_DIM, d, ("text", "embed"), rngs, dtype)

        @nnx.split_rngs(splits=s.depth)
        @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
        def stack(r):
            return Block(s, r, dtype)

        self.blocks = stack(rngs)  # parameters [depth, ...]
        self.final_norm = nnx.LayerNorm(d, use_bias=False, use_scale=False, dtype=dtype, rngs=rngs)
        self.final_ada = dense(d, 2 * d, ("embed", "mlp"), rngs, dtype, init=ZERO)
        self.final = dense(d, patch_dim, ("embed", "patch"), rngs, dtype, init=ZERO)

    def __call__(self, z, t, cond: Condition, unroll: bool = False):
        """z [B, t, h, w, C] noisy latent; t [B]; cond's text [B, L, 384] -> velocity like z.
        `unroll`: unroll the loop over the blocks (training passes True; see below)."""
        grid = P.grid_shape(z.shape[1:4], self.patch)
        x = self.x_embed(P.patchify(z, self.patch))  # [B, N, D]
        if cond.frames is not None:
            x = x + self.frames_embed(P.patchify(cond.frames, self.patch))  # [B, N, D]
        if self.canvas_embed is not None:
            x = x + self.canvas_embed(P.canvas_features(grid, CANVAS_OCTAVES))[None]  # [1, N, D]
        x = sharding.constrain(x, ("batch", "tokens", None))
        text, text_mask = cond.text, cond.mask
        c = self.t_embed2(nnx.silu(self.t_embed1(timestep_embedding(t, 256))))  # [B, D]
        # Mean-pooled text also enters adaLN: a global signal every block can modulate on.
        weights = text_mask[..., None] / jnp.maximum(text_mask.sum(-1)[:, None, None], 1)
        c = c + self.text_pool((text * weights).sum(1))
        ctx = self.text_proj(text)  # [B, L, D]
        rope = P.rope_tables(grid, self.size.width // self.size.heads)

        def forward(block, x):
            return block(x, c, ctx, text_mask, rope)

        if self.remat != "none":
            forward = nnx.remat(forward, policy=REMAT_POLICIES[self.remat])

        # Training without remat unrolls the loop: XLA:CPU runs the backward pass through a rolled
        # loop 25% slower at the shipped size (the weights stay stacked). With remat it stays rolled:
        # what each iteration keeps for the backward pass is then exactly what the policy says.
        # Sampling keeps it rolled: its programs compile in under half the time (BENCHMARKS.md).
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry, unroll=unroll and self.remat == "none")
        def run(x, block):
            return sharding.constrain(forward(block, x), ("batch", "tokens", None))

        x = run(x, self.blocks)
        shift, scale = jnp.split(sharding.constrain(self.final_ada(nnx.silu(c)), ("batch", None)), 2, axis=-1)
        x = self.final(modulate(self.final_norm(x), shift, scale))  # [B, N, patch_dim]
        return P.unpatchify(x, grid, self.patch).astype(jnp.float32)  # the sampler integrates in float32


def grow(saved: dict, model: DiT) -> dict:
    """A trained DiT's arrays (`saved`, as a checkpoint holds them) with its block stack spread over
    `model`'s deeper one, for `train.init_from` to load: trained block i becomes layer
    i * depth // saved_depth, in order, and each layer between them keeps `model`'s fresh weights
    with its cross-attention output zeroed, so that, its adaLN-Zero gates being zero too, it starts
    as the identity and the grown model's step 0 is the trained one. Any other depth is unchanged."""
    old, new = jax.tree.leaves(saved["blocks"])[0].shape[0], model.size.depth
    if old >= new:
        return saved  # same depth; a deeper checkpoint is `checkpoint.fill`'s shape error
    kept = [i * new // old for i in range(old)]
    added = [i for i in range(new) if i not in kept]
    fresh = nnx.to_pure_dict(nnx.state(model.blocks))  # [depth, ...] leaves, without the "value" key

    def place(path, stored):
        names = [str(getattr(k, "key", k)) for k in path][:-1]  # drop the trailing "value" key
        layers = np.array(functools.reduce(lambda d, k: d[k], names, fresh))
        if layers.shape[1:] != stored.shape[1:]:
            return stored  # another width: `checkpoint.fill` names the mismatch
        layers[kept] = stored
        if names[:2] == ["cross", "out"]:
            layers[added] = 0
        return layers

    return {**saved, "blocks": jax.tree_util.tree_map_with_path(place, saved["blocks"])}



def widen(saved: dict, model: DiT) -> dict:
    """A trained DiT's arrays (`saved`) with its latent layers widened to `model`'s latent
    channels, for `train.init_from` onto an autoencoder whose first channels are the trained
    model's latent (`ae.base`): the new channels' input weights and output columns are
    zero, so the widened model's step 0 predicts as the trained one on the old channels and
    nothing on the new ones. The same channel count, or more, is unchanged."""
    p, new = math.prod(model.patch), model.channels
    old = saved["final"]["bias"]["value"].shape[0] // p
    if old >= new:
        return saved  # nothing to widen; more channels is `checkpoint.fill`'s shape error

    def channels(x, axis):  # x's `axis` of p * (old [+ mask]) patch features -> p * (new [+ mask])
        x = np.moveaxis(np.asarray(x).reshape(*x.shape[:axis], p, -1, *x.shape[axis + 1:]), axis + 1, -1)
        wide = np.zeros((*x.shape[:-1], new + x.shape[-1] - old), x.dtype)  # [..., p, new (+ mask)]
        wide[..., :old], wide[..., new:] = x[..., :old], x[..., old:]  # latent channels, then any mask ones
        wide = np.moveaxis(wide, -1, axis + 1)
        return wide.reshape(*wide.shape[:axis], -1, *wide.shape[axis + 2:])

    out = dict(saved)
    for layer, name, axis in (("x_embed", "kernel", 0), ("frames_embed", "kernel", 0), ("final", "kernel", 1),
                              ("final", "bias", 0)):
        out[layer] = {**out[layer], name: {"value": channels(saved[layer][name]["value"], axis)}}
    return out


def build_dit(cfg: ConfigDict, seed: int = 0) -> DiT:
    """The DiT of `cfg.dit` (its architecture section) on `cfg.ae`'s latent channels. Checkpoints
    written before `dit.canvas_position` existed have no canvas input."""
    d = cfg.dit
    return DiT(d.size, cfg.ae.latent_channels, tuple(d.patch), d.precision, d.remat,
               d.get("canvas_position", False), rngs=nnx.Rngs(seed))
