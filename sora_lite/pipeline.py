"""Text in, video out: `Pipeline.from_pretrained(path).generate(prompts, ...)`.

noise -> sampler (DiT with classifier-free guidance) -> autoencoder.decode -> uint8 video.
Given a mesh (sharding.make_mesh), the prompts split over its batch axes (`data`, `fsdp`),
the DiT weights sit where their logical names say, and a long video's tokens split over
`sequence` (Ulysses attention): the same code samples on one device or a pod.
"""

import math
import os

import jax
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec
from ml_collections import ConfigDict

from sora_lite import autoencoder, checkpoint, diffusion, patchify, sampler, shapes, sharding
from sora_lite.dit import DiT, build_dit
from sora_lite.text import TextEncoder
from sora_lite.video import to_uint8

DEFAULT_MODEL = os.path.join(os.path.dirname(__file__), "assets", "default")


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


@nnx.jit(static_argnames=("steps",))
def _generate(dit, ae, noise, text, mask, null_text, null_mask, steps, guidance, shift):
    z = sampler.sample(dit, noise, text, mask, null_text, null_mask, steps, guidance, shift)
    video = ae.decode(ae.denormalize(z))  # [B, T, H, W, 3]
    return sharding.constrain(video, (None,) * video.ndim)  # whole on every device: every host can read it


class Pipeline:
    """A trained DiT (EMA weights), its autoencoder and the frozen text encoder."""

    def __init__(self, dit: DiT, ae: autoencoder.Autoencoder, cfg: ConfigDict, text_encoder=None,
                 mesh: jax.sharding.Mesh | None = None):
        self.dit, self.ae, self.cfg, self.mesh = dit, ae, cfg, mesh
        self.text_encoder = text_encoder or TextEncoder(cfg.text.max_len)
        self._null = self.text_encoder([""])  # the unconditional caption for guidance
        if mesh is not None:  # (a no-op for weights that training already placed there)
            dit_state = nnx.state(dit)
            nnx.update(dit, jax.device_put(dit_state, sharding.param_shardings(dit_state, mesh)))
            # From host values: device_put spreads those over every process's devices.
            ae_state = jax.tree.map(np.asarray, nnx.state(ae))
            nnx.update(ae, jax.device_put(ae_state, NamedSharding(mesh, PartitionSpec())))

    @classmethod
    def from_pretrained(cls, path: str | None = None, mesh: jax.sharding.Mesh | None = None) -> "Pipeline":
        """The shipped default model, or a training workdir / checkpoint directory; on `mesh` if given."""
        directory = checkpoint.directory(path or DEFAULT_MODEL)
        cfg, _ = checkpoint.read_config(directory, "dit")
        dit = nnx.eval_shape(lambda: build_dit(cfg))
        ae = nnx.eval_shape(lambda: autoencoder.build_autoencoder(cfg))
        _, model, _ = checkpoint.restore(directory, {"dit": checkpoint.abstract_state(dit),
                                                     "ae": checkpoint.abstract_state(ae)})
        nnx.update(dit, model["dit"])
        nnx.update(ae, model["ae"])
        return cls(dit, ae, cfg, mesh=mesh)

    def latent_grid(self, num_frames: int, height: int, width: int):
        return latent_grid(self.cfg, num_frames, height, width)

    @property
    def default_shape(self) -> tuple[int, int, int]:
        """(frames, height, width) the model samples by default: its training mixture's first entry."""
        return shapes.mixture(self.cfg.data)[0].shape

    def generate(self, prompts, num_frames: int | None = None, height: int | None = None,
                 width: int | None = None, seed: int = 0, steps: int | None = None,
                 guidance: float | None = None) -> np.ndarray:
        """uint8 [B, T, H, W, 3], one video per prompt (T = 1: images); the same seed gives the same
        video. Sizes default to `default_shape`, steps and guidance to the model's config."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts or any(not isinstance(p, str) or not p.strip() for p in prompts):
            raise ValueError("prompts must be non-empty strings; got an empty prompt")
        defaults = self.default_shape
        num_frames, height, width = (d if v is None else v for v, d in zip((num_frames, height, width), defaults))
        steps = self.cfg.sample.steps if steps is None else int(steps)
        guidance = self.cfg.sample.guidance if guidance is None else float(guidance)
        if steps < 1:
            raise ValueError(f"steps must be >= 1; got {steps}")
        if not np.isfinite(guidance):
            raise ValueError(f"guidance must be a finite number; got {guidance}")
        shape = latent_grid(self.cfg, num_frames, height, width)
        shift = diffusion.timestep_shift(num_tokens(self.cfg, num_frames, height, width), self.cfg.diffusion.base_tokens)
        count = len(prompts)
        if self.mesh is not None:  # pad the batch to a multiple of the devices it splits over
            prompts += prompts[-1:] * (-count % sharding.batch_shards(self.mesh))
        text, mask = self.text_encoder(prompts)
        key = jax.random.key(seed)
        noise = np.stack([jax.random.normal(jax.random.fold_in(key, i), shape) for i in range(len(prompts))])
        null_text, null_mask = self._null[0][0], self._null[1][0]
        if self.mesh is None:
            video = _generate(self.dit, self.ae, noise, text, mask, null_text, null_mask, steps, guidance, shift)
        else:  # the prompts split over the batch axes; the empty caption whole on every device
            on_batch = lambda a: jax.device_put(a, sharding.batch_sharding(self.mesh, a.ndim))  # noqa: E731
            everywhere = lambda a: jax.device_put(a, NamedSharding(self.mesh, PartitionSpec()))  # noqa: E731
            with jax.set_mesh(self.mesh):  # the DiT's activation constraints read it
                video = _generate(self.dit, self.ae, on_batch(noise), on_batch(text), on_batch(mask),
                                  everywhere(null_text), everywhere(null_mask), steps, guidance, shift)
        video = np.asarray(video)[:count]
        if not np.isfinite(video).all():
            raise FloatingPointError("the generated video has NaN/Inf values: the checkpoint's weights are "
                                     "not finite; use an earlier checkpoint")
        return to_uint8(video)
