"""Video autoencoder (Sora's "video compression network"): a causal (2+1)D-convolutional VAE.

Time is compressed x4 with the first frame encoded on its own, so a clip of T = 1 + 4k
frames becomes t = 1 + k latent frames and an image is a 1-frame video. Space is
compressed by `space_factor` (4 or 8). The latent has C channels, KL-regularised.

Layout, chosen for speed on CPU (2D convs with time folded into the batch are ~6x
faster than 3D convs there) without giving up causality:
  * the input folds each group of 4 frames (the first frame alone, repeated) and each
    2x2 pixel block into channels: [B, T, H, W, 3] -> [B, t, H/2, W/2, 48];
  * residual blocks mix space with 3x3 convs and time with a causal temporal conv
    over latent frames (a shifted concat + matmul), so latent frame j sees frames <= 4j;
  * the decoder mirrors it and unfolds the channels back into frames and pixels;
  * with `linear_skip`, each side also adds a linear map between a latent pixel and the
    4 x f x f block of pixels it stands for, beside the network (see `linear_skip`);
  * with `base` (another autoencoder's architecture, its weights frozen inside this one), the
    base's latent is this one's first channels and its decoding is added to this decoder's, so
    the new channels carry what the base misses and a DiT trained on the base's latent keeps
    its inputs exactly (`dit.widen`).
`latent_shift` / `latent_scale` (per-channel data statistics) live in the module, so
they are saved and restored with its checkpoint.
"""

import einops
import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from sora_lite import checkpoint
from sora_lite.flax_setup import nnx

TIME_FACTOR = 4


class LatentStat(nnx.Variable):
    """Non-trainable per-channel statistics of the latent, set from data after training."""


def latent_shape(ae_cfg: ConfigDict, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(t, h, w, C) of a T x H x W video, or a one-line ValueError naming the constraint."""
    f = ae_cfg.space_factor
    if frames < 1 or (frames - 1) % TIME_FACTOR:
        raise ValueError(f"frames must be 1 + 4k (1, 5, 9, 13, 17, ...); got {frames}")
    if height <= 0 or width <= 0 or height % f or width % f:
        raise ValueError(f"height and width must be positive multiples of {f}; got {height}x{width}")
    return 1 + (frames - 1) // TIME_FACTOR, height // f, width // f, ae_cfg.latent_channels


def fold_time(x):
    """[B, T, H, W, C] -> [B, t, H, W, 4C]: the first frame alone (repeated), then groups of 4."""
    first = jnp.repeat(x[:, :1], TIME_FACTOR, axis=1)  # [B, 4, H, W, C]
    x = jnp.concatenate([first, x[:, 1:]], axis=1)  # [B, 4t, H, W, C]
    return einops.rearrange(x, "b (t f) h w c -> b t h w (f c)", f=TIME_FACTOR)


def unfold_time(x):
    """Inverse of fold_time: [B, t, H, W, 4C] -> [B, 1 + 4(t-1), H, W, C]."""
    x = einops.rearrange(x, "b t h w (f c) -> b (t f) h w c", f=TIME_FACTOR)
    return x[:, TIME_FACTOR - 1 :]  # the first group holds one real frame, in its last slot


# Logical axis names of the weights (sharding.RULES keeps them whole on every device: the
# autoencoder's weights are small next to its activations, which split over the batch).
KERNEL = nnx.with_partitioning(nnx.initializers.lecun_normal(), ("ae_in", "ae_out"))
CONV_KERNEL = nnx.with_partitioning(nnx.initializers.lecun_normal(), (None, None, "ae_in", "ae_out"))
BIAS = nnx.with_partitioning(nnx.initializers.zeros_init(), ("ae_out",))


def linear_skip(cfg: ConfigDict) -> bool:
    """Whether the encoder and decoder each add a linear map between the folded pixels and the
    latent (DC-AE's residual shortcut, learned): the autoencoder is at least a PCA of its blocks
    from the first steps. Autoencoders saved before the key existed have none."""
    return bool(cfg.get("linear_skip", False))


def linear(cin, cout, rngs):
    return nnx.Linear(cin, cout, kernel_init=KERNEL, bias_init=BIAS, rngs=rngs)


class SpatialConv(nnx.Module):
    """3x3 conv on every frame: time folded into the batch."""

    def __init__(self, cin, cout, rngs, strides=1):
        self.conv = nnx.Conv(cin, cout, (3, 3), strides=strides, padding="SAME", kernel_init=CONV_KERNEL,
                             bias_init=BIAS, rngs=rngs)

    def __call__(self, x):  # [B, t, h, w, c]
        b = x.shape[0]
        y = self.conv(einops.rearrange(x, "b t h w c -> (b t) h w c"))
        return einops.rearrange(y, "(b t) h w c -> b t h w c", b=b)


class CausalTimeConv(nnx.Module):
    """Causal conv over latent frames (kernel 3): concat of shifted copies, then a matmul."""

    def __init__(self, c, rngs, kernel=3):
        self.kernel = kernel
        self.proj = linear(kernel * c, c, rngs)

    def __call__(self, x):  # [B, t, h, w, c]
        pad = jnp.repeat(x[:, :1], self.kernel - 1, axis=1)  # replicate the first frame
        xp = jnp.concatenate([pad, x], axis=1)  # [B, t + k - 1, h, w, c]
        t = x.shape[1]
        taps = jnp.concatenate([xp[:, i : i + t] for i in range(self.kernel)], axis=-1)
        return self.proj(taps)  # [B, t, h, w, c]


class ResBlock(nnx.Module):
    """(2+1)D residual block: a spatial 3x3 conv, then a causal temporal conv."""

    def __init__(self, c, rngs):
        self.norm1 = nnx.LayerNorm(c, rngs=rngs)
        self.space = SpatialConv(c, c, rngs)
        self.norm2 = nnx.LayerNorm(c, rngs=rngs)
        self.time = CausalTimeConv(c, rngs)

    def __call__(self, x):
        x = x + self.space(nnx.silu(self.norm1(x)))
        return x + self.time(nnx.silu(self.norm2(x)))


class Upsample(nnx.Module):
    """x2 in space: a 3x3 conv to 4x channels, then depth-to-space."""

    def __init__(self, cin, cout, rngs):
        self.conv = SpatialConv(cin, 4 * cout, rngs)

    def __call__(self, x):
        return einops.rearrange(self.conv(x), "b t h w (p q c) -> b t (h p) (w q) c", p=2, q=2)


def base_channels(cfg: ConfigDict) -> int:
    """The leading latent channels that are the frozen base autoencoder's (0 without one)."""
    return cfg.base.latent_channels if cfg.get("base") else 0


class Encoder(nnx.Module):
    def __init__(self, cfg, rngs):
        widths = cfg.widths
        self.stem = SpatialConv(TIME_FACTOR * 4 * 3, widths[0], rngs)
        self.stages = nnx.List([
            nnx.List([ResBlock(w, rngs) for _ in range(cfg.blocks)]) for w in widths
        ])
        self.downs = nnx.List([
            SpatialConv(widths[i], widths[i + 1], rngs, strides=2) for i in range(len(widths) - 1)
        ])
        self.norm = nnx.LayerNorm(widths[-1], rngs=rngs)
        own = cfg.latent_channels - base_channels(cfg)
        self.out = linear(widths[-1], 2 * own, rngs)
        self.f = cfg.space_factor
        self.skip = linear(TIME_FACTOR * self.f**2 * 3, 2 * own, rngs) if linear_skip(cfg) else None

    def __call__(self, x):  # [B, T, H, W, 3]
        x = fold_time(x)  # [B, t, H, W, 12]
        skip = 0.0 if self.skip is None else self.skip(  # [B, t, h, w, 2C]
            einops.rearrange(x, "b t (h p) (w q) c -> b t h w (p q c)", p=self.f, q=self.f))
        x = einops.rearrange(x, "b t (h p) (w q) c -> b t h w (p q c)", p=2, q=2)
        x = self.stem(x)  # [B, t, H/2, W/2, D0]
        for i, blocks in enumerate(self.stages):
            for block in blocks:
                x = block(x)
            if i < len(self.downs):
                x = self.downs[i](x)
        return self.out(nnx.silu(self.norm(x))) + skip  # [B, t, h, w, 2 (C - base channels)]


class Decoder(nnx.Module):
    def __init__(self, cfg, rngs):
        widths = cfg.widths[::-1]
        self.stem = linear(cfg.latent_channels, widths[0], rngs)
        self.stages = nnx.List([
            nnx.List([ResBlock(w, rngs) for _ in range(cfg.blocks + 1)]) for w in widths
        ])
        self.ups = nnx.List([Upsample(widths[i], widths[i + 1], rngs) for i in range(len(widths) - 1)])
        self.norm = nnx.LayerNorm(widths[-1], rngs=rngs)
        self.out = SpatialConv(widths[-1], 2 * 2 * TIME_FACTOR * 3, rngs)
        self.f = cfg.space_factor
        self.skip = linear(cfg.latent_channels, TIME_FACTOR * self.f**2 * 3, rngs) if linear_skip(cfg) else None

    def __call__(self, z):  # [B, t, h, w, C]
        skip = 0.0 if self.skip is None else einops.rearrange(  # [B, t, H, W, 12]
            self.skip(z), "b t h w (p q c) -> b t (h p) (w q) c", p=self.f, q=self.f)
        x = self.stem(z)
        for i, blocks in enumerate(self.stages):
            for block in blocks:
                x = block(x)
            if i < len(self.ups):
                x = self.ups[i](x)
        x = self.out(nnx.silu(self.norm(x)))  # [B, t, H/2, W/2, 48]
        x = einops.rearrange(x, "b t h w (p q c) -> b t (h p) (w q) c", p=2, q=2)
        return unfold_time(x + skip)  # [B, T, H, W, 3]


class Autoencoder(nnx.Module):
    def __init__(self, cfg: ConfigDict, rngs: nnx.Rngs):
        if cfg.space_factor != 2 ** len(cfg.widths):
            raise ValueError(f"space_factor {cfg.space_factor} needs {cfg.space_factor.bit_length() - 1} "
                             f"widths (one per x2 stage), got {len(cfg.widths)}")
        if base_channels(cfg) >= cfg.latent_channels:
            raise ValueError(f"latent_channels {cfg.latent_channels} must exceed the base autoencoder's "
                             f"{base_channels(cfg)}: the new channels are what it adds")
        self.cfg = cfg
        self.base = Autoencoder(cfg.base, rngs) if cfg.get("base") else None
        self.encoder = Encoder(cfg, rngs)
        self.decoder = Decoder(cfg, rngs)
        if self.base is not None:  # zero-init: before training, the autoencoder decodes as its base
            for layer in (self.decoder.out.conv, self.decoder.skip):
                if layer is not None:
                    layer.kernel[...] = jnp.zeros_like(layer.kernel[...])
        self.latent_shift = LatentStat(jnp.zeros((cfg.latent_channels,)))
        self.latent_scale = LatentStat(jnp.ones((cfg.latent_channels,)))

    def encode(self, video):
        """video [B, T, H, W, 3] in [-1, 1] -> (mean, logvar), each [B, t, h, w, C]."""
        mean, logvar = jnp.split(self.encoder(video), 2, axis=-1)
        logvar = jnp.clip(logvar, -30.0, 20.0)
        if self.base is None:
            return mean, logvar
        base_mean, base_logvar = self.base.encode(video)
        return jnp.concatenate([base_mean, mean], -1), jnp.concatenate([base_logvar, logvar], -1)

    def decode(self, z):
        """z [B, t, h, w, C] -> video [B, T, H, W, 3], roughly in [-1, 1]."""
        if self.base is None:
            return self.decoder(z)
        return self.base.decode(z[..., : base_channels(self.cfg)]) + self.decoder(z)

    def normalize(self, z):
        """Raw latent -> the unit-scale latent the diffusion model works on."""
        return (z - self.latent_shift[...]) / self.latent_scale[...]

    def denormalize(self, z):
        return z * self.latent_scale[...] + self.latent_shift[...]


@nnx.jit
def encode_latent(ae: Autoencoder, video):
    """video [B, T, H, W, 3] in [-1, 1] -> what the DiT works on: the encoder's mean, normalised."""
    return ae.normalize(ae.encode(video)[0])


def build_autoencoder(cfg: ConfigDict, seed: int = 0) -> Autoencoder:
    """The autoencoder of `cfg.ae` (its architecture section)."""
    return Autoencoder(cfg.ae, nnx.Rngs(seed))


def read_autoencoder(path: str) -> tuple[ConfigDict, dict]:
    """(architecture, weights as saved) of the autoencoder of an autoencoder workdir, or of the
    one inside a DiT model (a training workdir or an exported model): its newest readable step's."""
    kind, cfg, arrays = checkpoint.load_arrays(checkpoint.directory(path), ("autoencoder", "dit"))
    return cfg.ae, arrays["ae"] if kind == "dit" else arrays


def fill_autoencoder(ae: Autoencoder, arrays: dict, path: str):
    """`read_autoencoder`'s weights into `ae`; weights it lacks are a one-line error."""
    missing = checkpoint.fill(ae, arrays, path)
    if missing:
        raise checkpoint.CheckpointError(f"{path} lacks autoencoder weights ({', '.join(missing[:3])}); retrain it")


def load_autoencoder(path: str) -> Autoencoder:
    """The trained autoencoder (with its latent statistics) at `path` (`read_autoencoder`),
    rebuilt from the architecture its checkpoint carries, on this process's first device (not
    wherever the saving run kept it: with several processes that device may belong to another one)."""
    ae_cfg, arrays = read_autoencoder(path)
    ae = Autoencoder(ae_cfg, nnx.Rngs(0))
    nnx.update(ae, jax.device_put(nnx.state(ae), jax.sharding.SingleDeviceSharding(jax.local_devices()[0])))
    fill_autoencoder(ae, arrays, path)
    return ae


def loss_fn(model: Autoencoder, video, key, kl_weight: float):
    """L1 + L2 reconstruction of a sampled latent, plus a small KL to N(0, 1)."""
    mean, logvar = model.encode(video)
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
    recon = model.decode(z)
    l1 = jnp.abs(recon - video).mean()
    l2 = jnp.square(recon - video).mean()
    kl = 0.5 * jnp.mean(jnp.square(mean) + jnp.exp(logvar) - 1.0 - logvar)
    return l1 + l2 + kl_weight * kl, {"l1": l1, "l2": l2, "kl": kl}


# What training moves: never the frozen base autoencoder. The decoder-only phase trains the
# decoder; the encoder, and so the latents the DiT learns, stay fixed.
TRAINED = nnx.All(nnx.Param, nnx.Not(nnx.PathContains("base")))
DECODER = nnx.All(TRAINED, nnx.PathContains("decoder"))


def decoder_loss_fn(model: Autoencoder, mean, video):
    """Squared error of decoding the frozen encoder's mean latent [B, t, h, w, C]. Without L1's
    constant pull on the (already right) black background, the gradient goes to shape edges."""
    return jnp.square(model.decode(mean) - video).mean()
