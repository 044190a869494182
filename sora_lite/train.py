"""Training loops: the autoencoder (`train_autoencoder`) and the DiT (`train`).

Both: optax AdamW with warmup + cosine decay, orbax checkpoints every N steps and at
the end, a tqdm bar with loss and steps/s, one JSON line per logged step in
`workdir/metrics.jsonl`. Rerunning the same command resumes from the newest checkpoint;
batches are a pure function of (seed, step), so a resumed run sees the same data.
The DiT trains on a device mesh shaped by `cfg.mesh` (sharding.py), its state born sharded.
"""

import json
import os
import time

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from ml_collections import ConfigDict
from tqdm import tqdm

from sora_lite import autoencoder, checkpoint, data, diffusion, metrics, patchify, sharding
from sora_lite.pipeline import Pipeline, abstract, abstract_state, build_dit
from sora_lite.text import TextEncoder
from sora_lite import video as video_io


def make_optimizer(lr: float, warmup: int, steps: int, weight_decay: float = 0.0, grad_clip: float = 1.0):
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1), lr * 0.1)
    return optax.chain(optax.clip_by_global_norm(grad_clip), optax.adamw(schedule, weight_decay=weight_decay))


class Logger:
    """Appends one JSON object per logged step to `workdir/metrics.jsonl`.

    A run that starts at step `start` (a resume) first drops the rows logged after it, and any
    line cut short by a kill: those steps are run again, so each step appears once."""

    def __init__(self, workdir: str, start: int):
        os.makedirs(workdir, exist_ok=True)
        self.path = os.path.join(workdir, "metrics.jsonl")
        if jax.process_index() != 0 or not os.path.exists(self.path):
            return
        with open(self.path) as f:
            lines = f.read().split("\n")[:-1]  # a killed run may leave a last line without its newline
        kept = [line for line in lines if json.loads(line)["step"] <= start]
        with open(self.path + ".tmp", "w") as f:
            f.writelines(line + "\n" for line in kept)
        os.replace(self.path + ".tmp", self.path)  # the old log stays whole until the new one is

    def log(self, step: int, **values):
        if jax.process_index() != 0:  # one log per run, however many hosts
            return
        # A skipped non-finite step (see `nonfinite_skips`) logs null: the file stays valid JSON.
        row = {"step": step, **{k: float(v) if np.isfinite(float(v)) else None for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def _finite_ae_loss(step: int, loss, lr_key: str) -> float:
    """The autoencoder's loss as a float, or a one-line FloatingPointError naming the step and
    the learning rate (`lr_key`) of its phase."""
    loss = float(loss)
    if not np.isfinite(loss):
        raise FloatingPointError(f"non-finite loss at step {step}: training stopped, the newest checkpoint on "
                                 f"disk is finite; lower --config.{lr_key} and rerun to resume")
    return loss


# ----------------------------------------------------------------------------- autoencoder


def build_autoencoder(cfg: ConfigDict, seed: int = 0) -> autoencoder.Autoencoder:
    return autoencoder.Autoencoder(cfg.ae, nnx.Rngs(seed))


def load_autoencoder(directory: str) -> autoencoder.Autoencoder:
    """The trained autoencoder (with its latent statistics) from an autoencoder workdir, on this
    process's first device (not wherever the saving run kept it: with several processes that
    device may belong to another one)."""
    cfg, _ = checkpoint.read_config(_ckpt_dir(directory))
    ae = nnx.eval_shape(lambda: build_autoencoder(cfg))
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=here), abstract_state(ae))
    _, state, _ = checkpoint.restore(_ckpt_dir(directory), target)
    nnx.update(ae, state)
    return ae


def _ckpt_dir(workdir: str) -> str:
    return os.path.join(workdir, "checkpoints")


@nnx.jit(donate_argnums=(0, 1))
def _ae_train_step(model, opt, video, key, kl_weight):
    (loss, aux), grads = nnx.value_and_grad(autoencoder.loss_fn, has_aux=True)(model, video, key, kl_weight)
    opt.update(model, grads)
    return loss, aux


@nnx.jit(donate_argnums=(0, 1))
def _decoder_train_step(model, opt, video):
    mean, _ = model.encode(video)  # [B, t, h, w, C], outside the gradient: the encoder is frozen
    loss, grads = nnx.value_and_grad(autoencoder.decoder_loss_fn, argnums=nnx.DiffState(0, autoencoder.DECODER))(
        model, mean, video)
    opt.update(model, grads)
    return loss, {"l2": loss}


@nnx.jit
def _ae_reconstruct(model, video):
    return model.decode(model.encode(video)[0])


@nnx.jit
def _ae_moments(model, video):
    mean, _ = model.encode(video)
    axes = tuple(range(mean.ndim - 1))
    return mean.mean(axes), jnp.square(mean).mean(axes)


def local_copy(module):
    """`module` with every variable whole on this process's first device (from a mesh, where
    its values are replicated): for small evaluations every process runs alike."""
    state = jax.device_put(jax.tree.map(np.asarray, nnx.state(module)), jax.local_devices()[0])
    return nnx.merge(nnx.graphdef(module), state)


def evaluate_autoencoder(model, cfg: ConfigDict, num_examples: int = 256) -> dict:
    """Validation PSNR and the share of reconstructions the spec's scoring judges correct."""
    model = local_copy(model)
    videos, recons, captions = [], [], []
    for batch in data.batches(data.clips(cfg.data, "validation"), 32, seed=0, repeat=False):
        videos.append(video_io.to_uint8(batch["video"]))
        recons.append(video_io.to_uint8(_ae_reconstruct(model, jnp.asarray(batch["video"]))))
        captions += list(batch["caption"])
        if len(captions) >= num_examples:
            break
    videos, recons = np.concatenate(videos), np.concatenate(recons)
    acc = metrics.prompt_accuracy(recons, captions)
    return {"psnr": metrics.psnr(videos, recons), "recon_accuracy": acc["accuracy"],
            **{f"recon_{k}": acc[k] for k in ("color", "shape", "direction")}}


def set_latent_stats(model, cfg: ConfigDict, num_batches: int = 16):
    """Per-channel shift/scale of the encoder's mean latent over training data."""
    it = data.batches(data.clips(cfg.data, "train"), 32, seed=cfg.seed + 1)
    local = local_copy(model)
    m1, m2 = zip(*(_ae_moments(local, jnp.asarray(next(it)["video"])) for _ in range(num_batches)))
    mean, sq = np.mean(np.stack(m1), 0), np.mean(np.stack(m2), 0)
    for var, value in ((model.latent_shift, mean), (model.latent_scale, np.sqrt(np.maximum(sq - mean**2, 1e-8)))):
        var[...] = jax.device_put(value.astype(np.float32), var[...].sharding)  # stays where it was


def train_autoencoder(cfg: ConfigDict, workdir: str, devices=None) -> dict:
    """Train the autoencoder data parallel on a mesh of `devices` (default: all) shaped by
    `cfg.mesh`: its weights whole on every device, each batch split over `data` x `fsdp`.

    Two phases on one step count: `ae.steps` of the whole VAE (L1 + L2 + KL), after which the
    latent statistics are set; then `ae.decoder_steps` of the decoder alone on the frozen
    encoder's latents (`autoencoder.decoder_loss_fn`), which sharpens reconstructions without
    moving the latents a DiT trains on."""
    ac = cfg.ae
    if ac.steps < 1 or ac.decoder_steps < 0:
        raise ValueError(f"ae.steps must be >= 1 and ae.decoder_steps >= 0; got {ac.steps} and {ac.decoder_steps}")
    total = ac.steps + ac.decoder_steps
    mesh = sharding.make_mesh(cfg.mesh, devices)
    model = sharding.init_sharded(lambda: build_autoencoder(cfg, cfg.seed), mesh)
    phases = {"vae": (ac.lr, ac.steps, nnx.Param), "decoder": (ac.decoder_lr, ac.decoder_steps, autoencoder.DECODER)}
    opts = {  # both in every checkpoint, so either phase resumes from one
        k: sharding.init_sharded(lambda: nnx.Optimizer(build_autoencoder(cfg), make_optimizer(lr, ac.warmup, n),
                                                       wrt=wrt), mesh)
        for k, (lr, n, wrt) in phases.items()}
    mngr = checkpoint.manager(_ckpt_dir(workdir), cfg.keep_checkpoints)
    start = 0
    if mngr.latest_step() is not None:
        start, model_state, opt_state = checkpoint.restore(
            _ckpt_dir(workdir), abstract_state(model), {k: abstract_state(o) for k, o in opts.items()})
        checkpoint.discard_newer(mngr, start)
        nnx.update(model, model_state)
        for k, o in opts.items():
            nnx.update(o, opt_state[k])
    logger = Logger(workdir, start)
    clips = data.clips(cfg.data, "train")

    def stream(step):
        """This process's batches from `step` on, in the phase `step` belongs to."""
        vae = step < ac.steps
        return data.batches(clips, ac.batch_size if vae else ac.decoder_batch_size, cfg.seed,
                            step if vae else step - ac.steps, jax.process_index(), jax.process_count())

    batches = stream(start)
    bar = tqdm(range(start, total), initial=start, total=total, desc="autoencoder")
    tic = time.time()
    for step in bar:
        if step == ac.steps:
            batches = stream(step)
        vae = step < ac.steps
        video = sharding.global_batch(mesh, next(batches)["video"])  # [B, T, H, W, 3] over the batch axes
        with jax.set_mesh(mesh):
            if vae:
                key = jax.random.fold_in(jax.random.key(cfg.seed), step)
                loss, aux = _ae_train_step(model, opts["vae"], video, key, ac.kl_weight)
            else:
                loss, aux = _decoder_train_step(model, opts["decoder"], video)
        done = step + 1
        log_now = done % ac.log_every == 0 or done == total
        save_now = done % ac.checkpoint_every == 0 or done in (ac.steps, total)
        if log_now or save_now:  # a non-finite state must never reach a checkpoint
            loss = _finite_ae_loss(done, loss, "ae.lr" if vae else "ae.decoder_lr")
        if log_now:
            rate = min(ac.log_every, done - start) / (time.time() - tic)
            tic = time.time()
            bar.set_postfix(loss=f"{loss:.4f}", steps_per_s=f"{rate:.2f}")
            logger.log(done, loss=loss, steps_per_s=rate, **aux)
        if save_now:
            if done == ac.steps:
                set_latent_stats(model, cfg)
            checkpoint.save(mngr, done, cfg, nnx.state(model), {k: nnx.state(o) for k, o in opts.items()})
    mngr.wait_until_finished()
    result = evaluate_autoencoder(model, cfg)
    logger.log(total, **result)
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


# ----------------------------------------------------------------------------- DiT


@nnx.jit
def _ae_encode(ae, video):
    return ae.normalize(ae.encode(video)[0])


def encode_dataset(ae, text_encoder, cfg: ConfigDict, split: str = "train") -> dict:
    """Latents of every clip (the frozen encoder's normalised mean) and the text states of
    every distinct caption, computed once: the DiT then trains without re-running either."""
    latents, captions = [], []
    for batch in tqdm(data.batches(data.clips(cfg.data, split), 64, seed=0, repeat=False), desc="encoding"):
        latents.append(np.asarray(_ae_encode(ae, jnp.asarray(batch["video"]))))
        captions += list(batch["caption"])
    vocab = sorted(set(captions))
    text, mask = text_encoder(vocab)
    ids = {c: i for i, c in enumerate(vocab)}
    return {"latent": np.concatenate(latents), "caption_id": np.array([ids[c] for c in captions], np.int32),
            "text": text, "text_mask": mask}


def latent_batches(encoded: dict, batch_size: int, seed: int, start_step: int):
    ds = grain.MapDataset.source(LatentSource(encoded["latent"], encoded["caption_id"]))
    return data.batches(ds, batch_size, seed, start_step, jax.process_index(), jax.process_count())


class LatentSource:
    """Random access to (latent, caption id) pairs, for grain."""

    def __init__(self, latent, caption_id):
        self.latent, self.caption_id = latent, caption_id

    def __len__(self):
        return len(self.latent)

    def __getitem__(self, i):
        return {"latent": self.latent[i], "caption_id": self.caption_id[i]}


def _check_nonfinite(progress: dict, allowed: int):
    """A one-line FloatingPointError once more than `allowed` steps had a NaN/Inf loss or gradient."""
    count = int(progress["nonfinite"])
    if count > allowed:
        raise FloatingPointError(
            f"non-finite loss or grad_norm at step {int(progress['last_nonfinite'])} ({count} such steps, "
            f"nonfinite_skips={allowed}): training stopped, the newest checkpoint on disk is finite; "
            "lower --config.lr (or raise --config.nonfinite_skips) and rerun to resume")


def _ema_update(ema, model, decay):
    params = nnx.state(model, nnx.Param)
    nnx.update(ema, jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, nnx.state(ema, nnx.Param), params))


def init_train_state(cfg: ConfigDict, mesh):
    """(raw DiT weights, optimizer, EMA weights), each variable born on `mesh` where its logical
    axis names say; the EMA starts as a copy of the raw weights."""
    model = sharding.init_sharded(lambda: build_dit(cfg, cfg.seed), mesh)
    ema = jax.tree.map(jnp.copy, model)  # same init, its own buffers (the step donates both)
    tx = make_optimizer(cfg.lr, cfg.warmup, cfg.steps, cfg.weight_decay, cfg.grad_clip)
    opt = sharding.init_sharded(lambda: nnx.Optimizer(build_dit(cfg), tx, wrt=nnx.Param), mesh)
    return model, opt, ema


def make_train_step(graphdef, cfg: ConfigDict, text_table, mask_table, null_text, null_mask, shift: float):
    """The DiT step as a pure function, to be jitted with donation and out_shardings:
    (state, progress, latent [B, t, h, w, C], caption_id [B], rng, step) -> (state, progress, (loss, grad_norm)).

    `state` is nnx.state((raw weights, optimizer, EMA)) of `graphdef`. A step whose loss or
    gradient norm is not finite leaves the state as it was and is counted in `progress`; the
    host stops the run when the count exceeds `nonfinite_skips`.
    """

    def train_step(state, progress, latent, caption_id, rng, step):
        key = jax.random.fold_in(jax.random.wrap_key_data(rng), step)
        text, mask = text_table[caption_id], mask_table[caption_id]  # [B, L, E], [B, L]
        loss_fn = lambda m: diffusion.loss(m, latent, text, mask, null_text, null_mask, key, cfg.diffusion, shift)
        loss, grads = nnx.value_and_grad(loss_fn)(nnx.merge(graphdef, state)[0])
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

        def update(state):
            model, opt, ema = nnx.merge(graphdef, state)
            opt.update(model, grads)
            _ema_update(ema, model, cfg.ema_decay)
            return nnx.state((model, opt, ema))

        state = jax.lax.cond(finite, update, lambda state: state, state)
        progress = {"data_step": step + 1, "nonfinite": progress["nonfinite"] + jnp.where(finite, 0, 1),
                    "last_nonfinite": jnp.where(finite, progress["last_nonfinite"], step + 1)}
        return state, progress, (loss, grad_norm)

    return train_step


def train(cfg: ConfigDict, workdir: str, devices=None) -> dict:
    """Train the DiT on latents of the autoencoder in `cfg.ae.checkpoint`; resume if possible.

    Runs on a mesh of `devices` (default: all) shaped by `cfg.mesh` (sharding.py)."""
    if not cfg.ae.checkpoint:
        raise ValueError("set --config.ae.checkpoint to a trained autoencoder workdir "
                         "(scripts/train_autoencoder.py writes one)")
    if cfg.nonfinite_skips < 0:
        raise ValueError(f"nonfinite_skips must be >= 0 (0 stops at the first NaN/Inf step); got {cfg.nonfinite_skips}")
    ae = load_autoencoder(cfg.ae.checkpoint)
    cfg = ConfigDict(cfg.to_dict())
    # The autoencoder's own architecture (it carries its config), so the DiT checkpoint rebuilds it.
    cfg.ae.update({k: ae.cfg[k] for k in ("space_factor", "widths", "blocks", "latent_channels")})
    text_encoder = TextEncoder(cfg.text.max_len)
    cache = os.path.join(workdir, "latents.npz")
    if os.path.exists(cache):
        encoded = dict(np.load(cache))
    else:  # every process computes the same cache (it needs all captions); own tmp name, atomic rename
        encoded = encode_dataset(ae, text_encoder, cfg)
        os.makedirs(workdir, exist_ok=True)
        tmp = f"{cache}.tmp{jax.process_index()}.npz"
        np.savez(tmp, **encoded)
        os.replace(tmp, cache)
    text_table, mask_table = jnp.asarray(encoded["text"]), jnp.asarray(encoded["text_mask"])
    null_text, null_mask = (jnp.asarray(a[0]) for a in text_encoder([""]))
    grid = patchify.grid_shape(encoded["latent"].shape[1:4], tuple(cfg.dit.patch))
    shift = diffusion.timestep_shift(int(np.prod(grid)), cfg.diffusion.base_tokens)

    mesh = sharding.make_mesh(cfg.mesh, devices)
    model, opt, ema = init_train_state(cfg, mesh)
    # Besides weights and optimizer, a checkpoint holds where the run's randomness and data
    # stand: the base RNG key (step keys fold the step into it), the index of the next batch,
    # and the count of skipped non-finite steps.
    replicated = NamedSharding(mesh, P())
    # (From host values, which device_put spreads over every process's devices.)
    rng = jax.device_put(np.asarray(jax.random.key_data(jax.random.key(cfg.seed))), replicated)
    progress = {"data_step": np.int32(0), "nonfinite": np.int32(0), "last_nonfinite": np.int32(-1)}
    progress = jax.device_put(progress, replicated)
    mngr = checkpoint.manager(_ckpt_dir(workdir), cfg.keep_checkpoints)
    start = 0
    if mngr.latest_step() is not None:
        start, saved_model, saved_train = checkpoint.restore(
            _ckpt_dir(workdir), {"dit": abstract_state(ema), "ae": abstract_state(ae)},
            {"dit": abstract_state(model), "opt": abstract_state(opt), "rng": abstract(rng),
             "progress": abstract(progress)})
        checkpoint.discard_newer(mngr, start)  # steps past it were unreadable: they would block new saves
        nnx.update(ema, saved_model["dit"])
        nnx.update(model, saved_train["dit"])
        nnx.update(opt, saved_train["opt"])
        rng, progress = saved_train["rng"], saved_train["progress"]

    graphdef, state = nnx.split((model, opt, ema))
    train_step = jax.jit(make_train_step(graphdef, cfg, text_table, mask_table, null_text, null_mask, shift),
                         donate_argnums=(0, 1), out_shardings=(sharding.param_shardings(state, mesh), replicated, None))

    def save(step):
        checkpoint.save(mngr, step, cfg, {"dit": nnx.state(ema), "ae": nnx.state(ae)},
                        {"dit": nnx.state(model), "opt": nnx.state(opt), "rng": rng, "progress": progress})

    logger = Logger(workdir, start)
    pipe = Pipeline(ema, ae, cfg, text_encoder, mesh)  # samples on the training mesh
    batches = latent_batches(encoded, cfg.batch_size, cfg.seed, int(progress["data_step"]))
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="dit")
    tic = time.time()
    for step in bar:
        batch = next(batches)  # this process's rows of the global batch
        latent, caption_id = (sharding.global_batch(mesh, batch[k]) for k in ("latent", "caption_id"))
        with jax.set_mesh(mesh):  # the model's activation constraints read it while tracing
            state, progress, (loss, grad_norm) = train_step(state, progress, latent, caption_id, rng, jnp.int32(step))
        nnx.update((model, opt, ema), state)  # the objects that save() and sampling read
        done = step + 1
        log_now = done % cfg.log_every == 0 or done == cfg.steps
        save_now = done % cfg.checkpoint_every == 0 or done == cfg.steps
        if log_now or save_now:  # a run past its non-finite budget stops before it saves
            _check_nonfinite(progress, cfg.nonfinite_skips)
        if log_now:
            rate = min(cfg.log_every, done - start) / (time.time() - tic)
            tic = time.time()
            bar.set_postfix(loss=f"{float(loss):.4f}", steps_per_s=f"{rate:.2f}")
            logger.log(done, loss=loss, grad_norm=grad_norm, steps_per_s=rate, nonfinite_steps=progress["nonfinite"])
        if save_now:
            save(done)
        if cfg.sample_every and (done % cfg.sample_every == 0 or done == cfg.steps):
            write_samples(pipe, cfg, os.path.join(workdir, "samples", f"step_{done}"))
    mngr.wait_until_finished()
    if not cfg.eval_at_end:
        return {}
    result = metrics.evaluate_pipeline(pipe, frames=cfg.data.frames, height=cfg.data.height, width=cfg.data.width)
    logger.log(cfg.steps, **{f"{split}_{k}": v for split, r in result.items() for k, v in r.items()})
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


SAMPLE_PROMPTS = ("a red circle moving left", "a blue square moving up", "a yellow triangle moving right",
                  "a green circle moving left")  # the last two are held-out combinations


def write_samples(pipe, cfg, prefix: str):
    videos = pipe.generate(list(SAMPLE_PROMPTS), cfg.data.frames, cfg.data.height, cfg.data.width, seed=0)
    if jax.process_index() != 0:  # every host computes, one writes
        return
    for prompt, v in zip(SAMPLE_PROMPTS, videos):
        video_io.write(f"{prefix}_{prompt.replace(' ', '_')}.gif", v)
