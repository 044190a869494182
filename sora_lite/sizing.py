"""What a request of a video size needs, known before anything compiles: its latent grid and
token count (the autoencoder's factors times the patch), its sampling grid's time shift, and
about the memory sampling it takes (`admit`: a one-line error instead of running out).
Training, distillation and the benchmarks size their work with the same functions.
"""

import math
import os

import jax
from ml_collections import ConfigDict

from sora_lite import autoencoder, diffusion, patchify, sharding, validate
from sora_lite.dit import PRECISIONS, SIZES

# How a model may sample, as (low, high) of each `sample` setting: checked when a user samples
# (pipeline.py; `shift` by grid_shift below), and before a training run starts
# (training.SETTINGS), whose samples use them too.
SAMPLE_BOUNDS = {"steps": (1, 1000), "guidance": (0, None), "shift": (1e-3, None), "refine_above": (0, None),
                 "refine_strength": (1e-3, 1), "supersample_below": (0, None)}
INTEGER_SETTINGS = ("steps", "refine_above", "supersample_below")


def latent_grid(cfg: ConfigDict, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(t, h, w, C) of the latent of a video size that `cfg`'s autoencoder and patch divide, or a
    one-line ValueError saying what would."""
    f, (pt, ph, pw) = cfg.ae.space_factor, cfg.dit.patch
    if height <= 0 or width <= 0 or height % (f * ph) or width % (f * pw):
        raise ValueError(f"height and width must be positive multiples of {f * ph} "
                         f"(autoencoder x{f} times patch x{ph}); got {height}x{width}")
    shape = autoencoder.latent_shape(cfg.ae, num_frames, height, width)
    patchify.grid_shape(shape[:3], (pt, ph, pw))
    return shape


def num_tokens(cfg: ConfigDict, num_frames: int, height: int, width: int) -> int:
    """Spacetime patches of one video of that size."""
    return math.prod(patchify.grid_shape(latent_grid(cfg, num_frames, height, width)[:3], tuple(cfg.dit.patch)))


def sampling_shift(cfg: ConfigDict, num_frames: int, height: int, width: int) -> float:
    """The sampling grid's time shift at a video size."""
    tokens = num_tokens(cfg, num_frames, height, width)
    return grid_shift(cfg, diffusion.timestep_shift(tokens, cfg.diffusion.base_tokens))


def grid_shift(cfg: ConfigDict, resolution: float) -> float:
    """The sampling grid's time shift for a shape of resolution shift `resolution`: that times
    `sample.shift` (checkpoints written before that key sample with 1)."""
    return _setting(cfg, "shift", 1.0) * resolution


def sampling_sizes(cfg: ConfigDict, num_frames: int, height: int, width: int) -> list[tuple[int, int, int]]:
    """The sizes text-to-video samples at, smallest first. An image (one frame) of fewer than
    `sample.supersample_below` pixels (0: none) is made at twice its height and width (again
    while still below) and averaged down (pipeline.sample_video): its shape is judged on one
    frame, drawn by a few tokens at a small size. While a frame has more than
    `sample.refine_above` pixels (0: never) and half its height and width still fit the model,
    the layout and motion are first sampled at that half, and each larger size refines the one
    before. Checkpoints written before these keys sample at the size asked, in one go."""
    below = _setting(cfg, "supersample_below", 0)
    while num_frames == 1 and height * width < below:
        height, width = 2 * height, 2 * width
    limit = _setting(cfg, "refine_above", 0)
    sizes = [(num_frames, height, width)]
    while limit and height * width > limit:
        height, width = height // 2, width // 2
        try:
            latent_grid(cfg, num_frames, height, width)
        except ValueError:  # the half no longer divides by the autoencoder and patch
            break
        sizes.insert(0, (num_frames, height, width))
    return sizes


def refine_strength(cfg: ConfigDict) -> float:
    """The time a refined size's sampling starts from: how much of the smaller size's video it redraws."""
    return _setting(cfg, "refine_strength", 1.0)


def _setting(cfg: ConfigDict, key: str, default):
    """`sample.<key>` checked against SAMPLE_BOUNDS (`default` for checkpoints written before it)."""
    check = validate.integer if key in INTEGER_SETTINGS else validate.number
    return check(f"sample.{key}", cfg.sample.get(key, default), *SAMPLE_BOUNDS[key])


def sampling_bytes(cfg: ConfigDict, batch: int, num_frames: int, height: int, width: int) -> int:
    """About the peak memory of sampling `batch` videos of a size: the DiT's activations
    (`_dit_bytes`) and the decoder's full-size ones (a few float32 [B, T, H, W, widths[0]]
    buffers). An upper estimate: XLA's memory analysis of the compiled sampler says 0.32 GiB
    where this says 0.67 (33x128x128, on a CPU)."""
    a, b = _dit_bytes(cfg)
    n = num_tokens(cfg, num_frames, height, width)
    return batch * (a * n * n + b * n) + 4 * batch * num_frames * height * width * cfg.ae.widths[0] * 4


def _dit_bytes(cfg: ConfigDict) -> tuple[int, int]:
    """(a, b): one video of N tokens needs about a N^2 + b N bytes in the DiT (guidance doubles
    the batch): float32 attention scores [2, heads, N, N] where XLA's attention computes them
    (cuDNN's flash attention keeps none), and the MLP's float32 [2, N, 4 width] activations."""
    size = SIZES[cfg.dit.size]
    return (2 * size.heads * 4 if attention_kernel(cfg) == "xla" else 0), 2 * 4 * size.width * 4


def attention_kernel(cfg: ConfigDict) -> str:
    """The kernel `cfg`'s DiT runs self-attention with on this machine (sharding.attention_kernel)."""
    size = SIZES[cfg.dit.size]
    return sharding.attention_kernel(PRECISIONS[cfg.dit.precision], size.width // size.heads)


def device_bytes(device: jax.Device) -> int:
    """Memory one device offers: an accelerator's own limit, or a CPU's host memory."""
    stats = device.memory_stats() or {}
    return int(stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def admit(cfg: ConfigDict, batch: int, shape: tuple[int, int, int], mesh=None):
    """A one-line ValueError, before anything compiles, when sampling `batch` videos of `shape`
    needs more memory than the devices have (the mesh's, or the first local device)."""
    devices = mesh.devices.flat if mesh is not None else jax.local_devices()[:1]
    need, have = sampling_bytes(cfg, batch, *shape), sum(device_bytes(d) for d in devices)
    if need > have:
        a, b = _dit_bytes(cfg)
        c = have / batch  # tokens whose DiT activations fit: a N^2 + b N <= c
        fit = int((math.sqrt(b * b + 4 * a * c) - b) / (2 * a) if a else c / b)
        raise ValueError(f"{batch} video(s) of {'x'.join(map(str, shape))} ({num_tokens(cfg, *shape):,} tokens each) "
                         f"need about {need / 2**30:,.1f} GiB to sample, and the device has {have / 2**30:,.1f} GiB: "
                         f"ask for at most about {fit:,} tokens a video (fewer frames or pixels), fewer prompts at "
                         "once, or sample on a mesh")
