"""Text in, video out: `Pipeline.from_pretrained(model).generate(prompts, ...)`, and frames as
prompts: `image_to_video`, `extend`, `connect`, `interpolate`, `edit`, `story`.

noise -> sampler (DiT with classifier-free guidance) -> autoencoder.decode -> uint8 video.
Given frames enter as a pixel-frame mask and their latent (conditioning.py); edit is SDEdit.
Given a mesh (sharding.make_mesh), the prompts split over its batch axes (`data`, `fsdp`),
the DiT weights sit where their logical names say, and a long video's tokens split over
`sequence` (Ulysses attention): the same code samples on one device or a pod.
"""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from ml_collections import ConfigDict

from sora_lite import autoencoder, checkpoint, conditioning, diffusion, sampler, shapes, sharding, validate
from sora_lite import captions, wording
from sora_lite import model_path
from sora_lite.conditioning import Condition
from sora_lite.dit import DiT, build_dit
from sora_lite.flax_setup import nnx
from sora_lite.sizing import SAMPLE_BOUNDS, admit, latent_grid, refine_strength, sampling_shift, sampling_sizes
from sora_lite.text import TextEncoder
from sora_lite.video import from_sampler, to_model


def sample_video(dit, ae, x, cond, null_text, null_mask, steps, guidance, shift, start, refine=(), scale=1):
    """Noise (or a noised latent) [B, t, h, w, C] -> video [B, T, H, W, 3] in [-1, 1]. Then each of
    `refine`'s (noise, shift, strength), at a larger size: the video so far, resized and encoded,
    noised to time `strength` and sampled back. The layout and motion come from the smaller
    size, where a few tokens a frame decide them well; the detail from the larger (LTX-Video's
    multiscale sampling). Last, each `scale` x `scale` block of pixels is averaged into one
    (a supersampled image: sizing.sampling_sizes)."""
    z = sampler.sample(dit, x, cond, null_text, null_mask, steps, guidance, shift, start)
    video = ae.decode(ae.denormalize(z))  # [B, T, H, W, 3]
    for x, shift, strength in refine:  # x: [B, t, h', w', C]
        factor = video.shape[2] // z.shape[2]  # the autoencoder's, pixels per latent cell
        size = (*video.shape[:2], x.shape[2] * factor, x.shape[3] * factor, 3)
        video = jax.image.resize(jnp.clip(video, -1, 1), size, "linear")  # [B, T, H', W', 3]
        z = diffusion.add_noise(autoencoder.encode_latent(ae, video), x, jnp.full((x.shape[0],), strength))
        z = sampler.sample(dit, z, cond, null_text, null_mask, steps, guidance, shift, strength)
        video = ae.decode(ae.denormalize(z))
    if scale > 1:
        B, T, H, W, _ = video.shape
        video = jnp.clip(video, -1, 1).reshape(B, T, H // scale, scale, W // scale, scale, 3).mean((3, 5))
    return sharding.constrain(video, (None,) * video.ndim)  # whole on every device: every host can read it


_sample = nnx.jit(sample_video, static_argnames=("steps", "scale"))


@nnx.jit
def _given(ae, video, frame_mask):
    return conditioning.given(ae, video, frame_mask)


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
    def from_pretrained(cls, model: str | None = None, mesh: jax.sharding.Mesh | None = None) -> "Pipeline":
        """A shipped model by name ("default", "distilled", "camera"; None: the default), or a training workdir
        or checkpoint directory; on `mesh` if given."""
        directory = checkpoint.directory(model_path(model))
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

    @functools.cached_property
    def vocabulary(self) -> wording.Vocabulary | None:
        """The words of the model's training captions, onto which `read` maps a prompt's others;
        None when they cannot be known (a model of a folder of videos that is gone)."""
        try:
            return captions.vocabulary(self.cfg.data)
        except (OSError, ValueError) as e:
            warnings.warn(f"the model's training captions are unreadable ({e}); prompts are read as written",
                          stacklevel=3)
            return None

    def read(self, prompts: list[str]) -> list[str]:
        """The prompts as the model reads them: each word no training caption uses becomes the
        nearest word one does, by WordNet ("a crimson orb rising" -> "a red ball rising")."""
        return prompts if self.vocabulary is None else [self.vocabulary.rewrite(p) for p in prompts]

    def generate(self, prompts, num_frames: int | None = None, height: int | None = None,
                 width: int | None = None, seed: int = 0, steps: int | None = None,
                 guidance: float | None = None) -> np.ndarray:
        """uint8 [B, T, H, W, 3], one video per prompt (T = 1: images); the same seed gives the same
        video. Sizes default to `default_shape`, steps and guidance to the model's config."""
        prompts = validate.prompts(prompts)
        return self._sample(prompts, self._size(num_frames, height, width), seed, steps, guidance)

    def text_to_video(self, num_frames: int | None = None, height: int | None = None, width: int | None = None,
                      steps: int | None = None, guidance: float | None = None):
        """`generate` of one prompt at one size as a pure function of arrays, for jax.export
        (programs.py): (function, names, weights). function(weights, seed, text, mask, null_text,
        null_mask) -> video [1, T, H, W, 3] in [-1, 1], `weights` (the DiT's and the autoencoder's
        variables, named by `names`) as its first argument, not constants, and the noise made
        inside from `seed` (uint32)."""
        shape = self._size(num_frames, height, width)
        steps, guidance, ((latent_shape, shift), *larger), scale = self._settings(1, shape, steps, guidance)
        strength = refine_strength(self.cfg)
        (dit_def, dit_state), (ae_def, ae_state) = nnx.split(self.dit), nnx.split(self.ae)
        leaves, treedef = jax.tree_util.tree_flatten_with_path((dit_state, ae_state))

        def function(weights, seed, text, mask, null_text, null_mask):
            dit_state, ae_state = jax.tree.unflatten(treedef, weights)
            x = diffusion.noise(seed, 1, latent_shape)  # [1, t, h, w, C]
            refine = tuple((diffusion.noise(seed, 1, s), sh, strength) for s, sh in larger)
            return sample_video(nnx.merge(dit_def, dit_state), nnx.merge(ae_def, ae_state), x,
                                Condition(text, mask, None), null_text, null_mask, steps, guidance, shift, 1.0, refine,
                                scale)

        names = [jax.tree_util.keystr(path) for path, _ in leaves]
        return function, names, [np.asarray(v) for _, v in leaves]

    def _size(self, num_frames, height, width) -> tuple[int, int, int]:
        """(frames, height, width) asked for, each checked; `default_shape`'s where not given."""
        given = validate.sizes(num_frames, height, width)
        return tuple(d if v is None else v for v, d in zip(given, self.default_shape))

    def image_to_video(self, prompts, image, num_frames: int = 17, height=None, width=None, seed: int = 0,
                       steps=None, guidance=None) -> np.ndarray:
        """Animate `image` (uint8 [B, H, W, 3]): it is frame 0 of each video."""
        prompts = validate.prompts(prompts)
        num_frames, height, width = validate.sizes(num_frames, height, width)
        image = validate.frames("image", image, 4, len(prompts))[:, None]  # [B, 1, H, W, 3]
        return self._with_frames(prompts, [(image, 0)], num_frames, height, width, seed, steps, guidance)

    def extend(self, prompts, video, num_frames: int = 33, backward: bool = False, height=None, width=None,
               seed: int = 0, steps=None, guidance=None) -> np.ndarray:
        """Continue `video` (uint8 [B, T0, H, W, 3], 1 <= T0 < num_frames): its frames open the
        result, or with `backward` close it."""
        prompts = validate.prompts(prompts)
        num_frames, height, width = validate.sizes(num_frames, height, width)
        video = validate.frames("video", video, 5, len(prompts))
        if not 1 <= video.shape[1] < num_frames:
            raise ValueError(f"extend needs fewer given frames than num_frames={num_frames}; got {video.shape[1]}: "
                             f"raise num_frames (1 + 4k) or give fewer frames")
        at = num_frames - video.shape[1] if backward else 0
        return self._with_frames(prompts, [(video, at)], num_frames, height, width, seed, steps, guidance)

    def connect(self, prompts, first, last, num_frames: int = 33, height=None, width=None, seed: int = 0,
                steps=None, guidance=None) -> np.ndarray:
        """A video that opens with `first` and closes with `last`: images [B, H, W, 3] or clips
        [B, k, H, W, 3]; what lies between is generated."""
        prompts = validate.prompts(prompts)
        num_frames, height, width = validate.sizes(num_frames, height, width)
        first, last = (validate.frames(name, x, None, len(prompts)) for name, x in (("first", first), ("last", last)))
        first, last = (x[:, None] if x.ndim == 4 else x for x in (first, last))
        if first.shape[1] + last.shape[1] >= num_frames:
            raise ValueError(f"connect needs first and last to leave frames between them; got {first.shape[1]} + "
                             f"{last.shape[1]} given frames of num_frames={num_frames}: raise num_frames")
        return self._with_frames(prompts, [(first, 0), (last, num_frames - last.shape[1])], num_frames,
                                 height, width, seed, steps, guidance)

    def interpolate(self, prompts, keyframes, num_frames: int = 17, height=None, width=None, seed: int = 0,
                    steps=None, guidance=None) -> np.ndarray:
        """Fill in the frames between `keyframes` (uint8 [B, K, H, W, 3], K >= 2), placed at frames
        round(i (T - 1) / (K - 1))."""
        prompts = validate.prompts(prompts)
        num_frames, height, width = validate.sizes(num_frames, height, width)
        keyframes = validate.frames("keyframes", keyframes, 5, len(prompts))
        count = keyframes.shape[1]
        if not 2 <= count <= num_frames:
            raise ValueError(f"interpolate needs 2 to num_frames={num_frames} keyframes; got {count}")
        at = conditioning.keyframe_positions(count, num_frames)
        return self._with_frames(prompts, [(keyframes[:, i : i + 1], p) for i, p in enumerate(at)], num_frames,
                                 height, width, seed, steps, guidance)

    def edit(self, prompts, video, strength: float | None = None, height=None, width=None, seed: int = 0,
             steps=None, guidance=None) -> np.ndarray:
        """SDEdit: noise `video` (uint8 [B, T, H, W, 3]) to time `strength` (default: the config's
        sample.edit_strength; 1 ignores the video) and sample back to a video of the prompts."""
        prompts = validate.prompts(prompts)
        _, height, width = validate.sizes(None, height, width)
        video = validate.frames("video", video, 5, len(prompts))
        strength = self.cfg.sample.edit_strength if strength is None else validate.number("strength", strength)
        if not 0 < strength <= 1:
            raise ValueError(f"strength must be in (0, 1]; got {strength}")
        video = _resize(video, height, width)
        shape = (video.shape[1], *video.shape[2:4])
        latent = np.asarray(autoencoder.encode_latent(self.ae, to_model(video)))  # [B, t, h, w, C]
        return self._sample(prompts, shape, seed, steps, guidance, start=strength, init=latent)

    def story(self, prompts, frames_per_scene: int = 17, height=None, width=None, seed: int = 0, steps=None,
              guidance=None) -> np.ndarray:
        """One video [1, S F, H, W, 3] of S scenes, F frames each: scene i follows prompts[i] and
        starts where scene i-1 ended (its last frame is the frame before)."""
        prompts = validate.prompts(prompts)
        frames_per_scene = validate.integer("frames_per_scene", frames_per_scene, 1)
        _, height, width = validate.sizes(None, height, width)
        (_, h, w), n = self.default_shape, frames_per_scene
        height, width = height or h, width or w
        latent_grid(self.cfg, n, height, width)  # a one-line error unless F is 1 + 4k and the size fits
        scenes = [self.generate(prompts[:1], n, height, width, seed, steps, guidance)]  # [1, F, H, W, 3]
        # A next scene opens with the last frame so far: n + 1 frames, rounded up to 1 + 4k.
        longer = (n + 3) // 4 * 4 + 1
        for i, prompt in enumerate(prompts[1:], 1):
            scene = self.image_to_video([prompt], scenes[-1][:, -1], longer, height, width, seed + i, steps, guidance)
            scenes.append(scene[:, 1 : n + 1])
        return np.concatenate(scenes, axis=1)

    def _with_frames(self, prompts, given, num_frames, height, width, seed, steps, guidance) -> np.ndarray:
        """Sample with frames given: `given` lists (uint8 [B, k, H, W, 3], first position) pairs."""
        sizes = {x.shape[2:4] for x, _ in given}
        if len(sizes) > 1:
            raise ValueError(f"given frames must share one size; got {sorted(sizes)}")
        given = [(_resize(x, height, width), at) for x, at in given]
        b, (h, w) = len(prompts), given[0][0].shape[2:4]
        latent_grid(self.cfg, num_frames, h, w)  # a one-line error for a size that does not fit
        video = np.zeros((b, num_frames, h, w, 3), np.float32)
        mask = np.zeros((b, num_frames), bool)
        for x, at in given:
            video[:, at : at + x.shape[1]] = to_model(x)
            mask[:, at : at + x.shape[1]] = True
        frames = np.asarray(_given(self.ae, video, mask))  # [B, t, h, w, C + 4]
        return self._sample(prompts, (num_frames, h, w), seed, steps, guidance, frames=frames)

    def _sample(self, prompts, shape, seed, steps, guidance, frames=None, start=1.0, init=None) -> np.ndarray:
        """The shared sampling path: noise (or `init` noised to `start`), guidance over the text, the
        given `frames`, decode; prompts padded to the mesh's batch shards and trimmed after."""
        steps, guidance, ((latent_shape, shift), *larger), scale = self._settings(
            len(prompts), shape, steps, guidance, refine=frames is None and init is None)
        seed = validate.integer("seed", seed, 0, 2**32 - 1)
        count = len(prompts)
        x = np.asarray(diffusion.noise(seed, count, latent_shape))  # [B, t, h, w, C]
        if init is not None:  # SDEdit: the video's latent, noised to time `start`
            x = np.asarray(diffusion.add_noise(init, x, np.full((count,), start, np.float32)))
        noises = [np.asarray(diffusion.noise(seed, count, s)) for s, _ in larger]  # of each refined size
        text, mask = self.text_encoder(self.read(prompts))
        cond = Condition(text, mask, frames)
        if self.mesh is not None:  # pad the batch to a multiple of the devices it splits over
            pad = -count % sharding.batch_shards(self.mesh)
            x, cond, noises = jax.tree.map(lambda a: np.concatenate([a, np.repeat(a[-1:], pad, 0)]), (x, cond, noises))
        extra = text.shape[1] - self._null[1].shape[1]  # a long prompt's text: the empty caption padded alike
        null_text, null_mask = np.pad(self._null[0][0], ((0, extra), (0, 0))), np.pad(self._null[1][0], (0, extra))
        strength = refine_strength(self.cfg)
        if self.mesh is None:
            refine = tuple((n, sh, strength) for n, (_, sh) in zip(noises, larger))
            video = _sample(self.dit, self.ae, x, cond, null_text, null_mask, steps, guidance, shift, start, refine,
                            scale)
        else:  # the prompts split over the batch axes; the empty caption whole on every device
            on_batch = lambda a: jax.device_put(a, sharding.batch_sharding(self.mesh, a.ndim))  # noqa: E731
            everywhere = lambda a: jax.device_put(a, NamedSharding(self.mesh, PartitionSpec()))  # noqa: E731
            refine = tuple((on_batch(n), sh, strength) for n, (_, sh) in zip(noises, larger))
            with jax.set_mesh(self.mesh):  # the DiT's activation constraints read it
                video = _sample(self.dit, self.ae, on_batch(x), jax.tree.map(on_batch, cond), everywhere(null_text),
                                everywhere(null_mask), steps, guidance, shift, start, refine, scale)
        return from_sampler(np.asarray(video)[:count])

    def _settings(self, count, shape, steps, guidance, refine=True):
        """(steps, guidance, stages, scale) of sampling `count` videos of `shape`, each checked,
        defaults from the config; guidance 1 is None. `stages`: the (latent shape, time shift) of
        each size sampled, smallest first (sizing.sampling_sizes; without `refine`, `shape`'s
        alone); the last is `scale` times `shape`'s height and width."""
        steps = validate.integer("steps", self.cfg.sample.steps if steps is None else steps, *SAMPLE_BOUNDS["steps"])
        guidance = validate.number("guidance", self.cfg.sample.guidance if guidance is None else guidance,
                                   *SAMPLE_BOUNDS["guidance"])
        latent_grid(self.cfg, *shape)
        sizes = sampling_sizes(self.cfg, *shape) if refine else [shape]
        admit(self.cfg, count, sizes[-1], self.mesh)
        guidance = None if guidance == 1 else guidance  # the same velocity, half the forward passes
        stages = [(latent_grid(self.cfg, *s), sampling_shift(self.cfg, *s)) for s in sizes]
        return steps, guidance, stages, sizes[-1][1] // shape[1]


def _resize(frames: np.ndarray, height, width) -> np.ndarray:
    """uint8 [B, K, H, W, 3] resized to (height, width) where given (None: as they are)."""
    height, width = height or frames.shape[2], width or frames.shape[3]
    if (height, width) == frames.shape[2:4]:
        return frames
    out = jax.image.resize(frames.astype(np.float32), (*frames.shape[:2], height, width, 3), "linear")
    return np.clip(np.round(np.asarray(out)), 0, 255).astype(np.uint8)
