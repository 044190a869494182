"""Training the video autoencoder on the shape mixture (`train_autoencoder`).

Two phases on one step count: `ae_train.steps` of the whole VAE (L1 + L2 + KL), after which
the latent statistics are set; then `ae_train.decoder_steps` of the decoder alone on the
frozen encoder's latents (`autoencoder.decoder_loss_fn`), which sharpens reconstructions
without moving the latents a DiT trains on. Each step is one batch of one mixture entry
(images and videos alike: one causal model for both), its batch sized to carry the first
entry's pixels. With `ae_train.base`, a trained autoencoder is frozen inside the new one as
its first latent channels (`ae.base`); only the rest trains. Rerunning the same command
resumes from the newest checkpoint.
"""

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict
from tqdm import tqdm

from sora_lite import autoencoder, captions, checkpoint, data, metrics, sharding, training
from sora_lite import video as video_io
from sora_lite.autoencoder import build_autoencoder
from sora_lite.captions import SUBJECTS
from sora_lite.flax_setup import nnx


@nnx.jit(donate_argnums=(0, 1))
def _vae_step(model, opt, video, key, kl_weight):
    (loss, aux), grads = nnx.value_and_grad(autoencoder.loss_fn, argnums=nnx.DiffState(0, autoencoder.TRAINED),
                                            has_aux=True)(model, video, key, kl_weight)
    opt.update(model, grads)
    return loss, aux


@nnx.jit(donate_argnums=(0, 1))
def _decoder_step(model, opt, video):
    mean, _ = model.encode(video)  # [B, t, h, w, C], outside the gradient: the encoder is frozen
    loss, grads = nnx.value_and_grad(autoencoder.decoder_loss_fn, argnums=nnx.DiffState(0, autoencoder.DECODER))(
        model, mean, video)
    opt.update(model, grads)
    return loss, {"l2": loss}


@nnx.jit
def _reconstruct(model, video):
    return model.decode(model.encode(video)[0])


@nnx.jit
def _moments(model, video):
    mean, _ = model.encode(video)
    axes = tuple(range(mean.ndim - 1))
    return mean.mean(axes), jnp.square(mean).mean(axes), mean[..., 0].size


def evaluate_autoencoder(model, cfg: ConfigDict, entries, num_examples: int = 256) -> dict:
    """Per entry: validation PSNR and, on a generated data set, the share of reconstructions
    its scoring judges correct (Moving Shapes: colour, shape and, for videos, direction; Camera
    Moves: subject and move). A folder's entries without validation clips are left out."""
    model = training.local_copy(model)
    name = captions.dataset(cfg.data)
    results = {}
    for entry in entries:
        if not data.has_clips(cfg.data, "validation", entry):
            continue
        videos, recons, subjects, prompts = [], [], [], []
        for batch in data.batches(data.clips(cfg.data, "validation", entry), 32, seed=0, repeat=False):
            videos.append(video_io.to_uint8(batch["video"]))
            recons.append(video_io.to_uint8(_reconstruct(model, jnp.asarray(batch["video"]))))
            subjects += list(batch["subject"])
            prompts += list(batch["caption"])
            if len(subjects) >= num_examples:
                break
        videos, recons = np.concatenate(videos), np.concatenate(recons)
        results[str(entry)] = {"psnr": metrics.psnr(videos, recons)}
        if name == "moving_shapes":
            acc = metrics.accuracy(recons, [SUBJECTS[i] for i in subjects])
            results[str(entry)] |= {"recon_accuracy": acc["accuracy"], **{
                f"recon_{k}": acc[k] for k in ("color", "shape", "direction") if acc[k] is not None}}
        elif name == "camera_moves":
            from sora_lite import camera_metrics  # here: its scipy is a second of every run's start-up

            acc = camera_metrics.accuracy(recons, prompts)
            results[str(entry)] |= {"recon_accuracy": acc["accuracy"], "recon_subject": acc["subject"],
                                    "recon_move": acc["move"]}
    return results


def set_latent_stats(model, cfg: ConfigDict, entries, num_batches: int = 16):
    """Per-channel shift/scale of the encoder's mean latent over training data (every mixture
    entry, by its weight)."""
    local = training.local_copy(model)
    moments = []  # (mean, mean of squares, latent positions) per batch
    for entry in entries:
        it = data.batches(data.clips(cfg.data, "train", entry), 32, seed=cfg.seed + 1)
        share = max(1, round(num_batches * entry.weight / sum(e.weight for e in entries)))
        moments += [_moments(local, jnp.asarray(next(it)["video"])) for _ in range(share)]
    m1, m2, n = (np.stack(x) for x in zip(*moments))
    mean, sq = (np.average(m, axis=0, weights=n) for m in (m1, m2))
    scale = np.sqrt(np.maximum(sq - mean**2, 1e-8))
    if model.base is not None:  # the base's channels keep its statistics: a DiT of its latent sees the same inputs
        n = autoencoder.base_channels(cfg.ae)
        mean[:n], scale[:n] = np.asarray(local.base.latent_shift[...]), np.asarray(local.base.latent_scale[...])
    for var, value in ((model.latent_shift, mean), (model.latent_scale, scale)):
        var[...] = jax.device_put(value.astype(np.float32), var[...].sharding)  # stays where it was


def train_autoencoder(cfg: ConfigDict, workdir: str, devices=None) -> dict:
    """Train the autoencoder data parallel on a mesh of `devices` (default: all) shaped by
    `cfg.mesh`: its weights whole on every device, each batch split over `data` x `fsdp`."""
    ac = cfg.ae_train
    training.check_settings(cfg, "ae_train")
    entries = training.check_mixture(cfg)
    if ac.init_from and ac.base:
        raise ValueError("ae_train.init_from and ae_train.base are both set: an autoencoder to continue already "
                         "carries its base; give one of them")
    cfg = ConfigDict(cfg.to_dict())  # a copy: the architecture may come from a checkpoint
    if ac.init_from:  # its architecture, whatever this config's `ae` says
        cfg.ae, init_arrays = autoencoder.read_autoencoder(ac.init_from)
    if ac.base:  # its architecture inside this one's
        cfg.ae.base, base_arrays = autoencoder.read_autoencoder(ac.base)
    training.check_same_run(cfg, "autoencoder", workdir)  # a DiT's workdir, or another run's
    total = ac.steps + ac.decoder_steps
    mesh = sharding.make_mesh(cfg.mesh, devices)
    model = sharding.init_sharded(lambda: build_autoencoder(cfg, cfg.seed), mesh)
    phases = {"vae": (ac.lr, ac.steps, autoencoder.TRAINED), "decoder": (ac.decoder_lr, ac.decoder_steps, autoencoder.DECODER)}
    opts = {  # both in every checkpoint, so either phase resumes from one
        k: sharding.init_sharded(lambda: nnx.Optimizer(build_autoencoder(cfg), training.make_optimizer(
            lr, ac.warmup, n), wrt=wrt), mesh)
        for k, (lr, n, wrt) in phases.items()}
    ckpt_dir = checkpoint.directory(workdir)
    mngr = checkpoint.manager(ckpt_dir, cfg.keep_checkpoints)
    start = 0
    if mngr.latest_step() is not None:
        start, model_state, opt_state = checkpoint.restore(
            ckpt_dir, checkpoint.abstract_state(model), {k: checkpoint.abstract_state(o) for k, o in opts.items()})
        checkpoint.discard_newer(mngr, start)
        nnx.update(model, model_state)
        for k, o in opts.items():
            nnx.update(o, opt_state[k])
        training.say(f"resumed {workdir} at step {start} of {total}")
    elif ac.init_from:
        autoencoder.fill_autoencoder(model, init_arrays, ac.init_from)
        training.say(f"initialised from {ac.init_from}")
    elif ac.base:
        autoencoder.fill_autoencoder(model.base, base_arrays, ac.base)
        training.say(f"the first {autoencoder.base_channels(cfg.ae)} latent channels are {ac.base}'s, frozen")
    logger = training.Logger(workdir, start)
    sources = [data.clips(cfg.data, "train", e) for e in entries]
    # The autoencoder's work grows with latent frames x pixels per frame (it folds 4 frames, or
    # the first frame alone, into channels): batches carry the first entry's amount of it.
    work = [autoencoder.latent_shape(cfg.ae, *e.shape)[0] * e.height * e.width for e in entries]
    multiple = training.batch_multiple(mesh)

    def stream(step):
        """This process's batches from `step` on, in the phase `step` belongs to (each phase its own schedule)."""
        vae = step < ac.steps
        steps, batch_size = (ac.steps, ac.batch_size) if vae else (ac.decoder_steps, ac.decoder_batch_size)
        choices = data.schedule([e.weight for e in entries], cfg.seed + (0 if vae else 1), steps)
        return data.MixtureBatches(sources, data.bucket_sizes(work, batch_size, multiple), choices, cfg.seed,
                                   step if vae else step - ac.steps, jax.process_index(), jax.process_count())

    batches = stream(start)
    bar = tqdm(range(start, total), initial=start, total=total, desc="autoencoder",
               disable=jax.process_index() != 0)
    tic = time.time()
    with training.StopSignal() as stop:
        for step in bar:
            if step == ac.steps:
                batches = stream(step)
            vae = step < ac.steps
            _, batch = next(batches)
            video = sharding.global_batch(mesh, batch["video"])  # [B, T, H, W, 3] over the batch axes
            with jax.set_mesh(mesh):
                if vae:
                    key = jax.random.fold_in(jax.random.key(cfg.seed), step)
                    loss, aux = _vae_step(model, opts["vae"], video, key, ac.kl_weight)
                else:
                    loss, aux = _decoder_step(model, opts["decoder"], video)
            done = step + 1
            stop_now = stop.requested()  # Ctrl-C or SIGTERM: save this step, then stop
            log_now = done % ac.log_every == 0 or done == total
            save_now = done % ac.checkpoint_every == 0 or done in (ac.steps, total) or stop_now
            if log_now or save_now:  # a non-finite state must never reach a checkpoint
                loss = training.finite_loss(done, loss, "ae_train.lr" if vae else "ae_train.decoder_lr")
            if log_now:
                rate = min(ac.log_every, done - start) / (time.time() - tic)
                tic = time.time()
                bar.set_postfix(loss=f"{loss:.4f}", steps_per_s=f"{rate:.2f}")
                lr, n = (ac.lr, ac.steps) if vae else (ac.decoder_lr, ac.decoder_steps)
                lr_now = training.learning_rate(lr, ac.warmup, n)(step if vae else step - ac.steps)
                logger.log(done, loss=loss, learning_rate=lr_now, steps_per_s=rate, **aux)
            if save_now:
                if done == ac.steps:
                    set_latent_stats(model, cfg, entries)
                checkpoint.save(mngr, done, "autoencoder", cfg, nnx.state(model),
                                {k: nnx.state(o) for k, o in opts.items()})
            if stop_now:
                checkpoint.wait(mngr)
                raise training.interrupted(done, total, ckpt_dir)
    checkpoint.wait(mngr)
    result = evaluate_autoencoder(model, cfg, entries)
    logger.log(total, **{f"{k}/{shape}": v for shape, r in result.items() for k, v in r.items()})
    logger.close()
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "eval.json"), "w") as f:
            json.dump(result, f, indent=2)
    return result
