"""Training loops: the autoencoder (`train_autoencoder`) and the DiT (`train`).

Both: optax AdamW with warmup + cosine decay, orbax checkpoints every N steps and at
the end, a tqdm bar with loss and steps/s, one JSON line per logged step in
`workdir/metrics.jsonl`. Rerunning the same command resumes from the newest checkpoint;
batches are a pure function of (seed, step), so a resumed run sees the same data.
"""

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from ml_collections import ConfigDict
from tqdm import tqdm

from sora_lite import autoencoder, checkpoint, data, metrics


def make_optimizer(lr: float, warmup: int, steps: int, weight_decay: float = 0.0, grad_clip: float = 1.0):
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1), lr * 0.1)
    return optax.chain(optax.clip_by_global_norm(grad_clip), optax.adamw(schedule, weight_decay=weight_decay))


class Logger:
    """Appends one JSON object per logged step to `workdir/metrics.jsonl`."""

    def __init__(self, workdir: str):
        os.makedirs(workdir, exist_ok=True)
        self.path = os.path.join(workdir, "metrics.jsonl")

    def log(self, step: int, **values):
        row = {"step": step, **{k: float(v) for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


# ----------------------------------------------------------------------------- autoencoder


def build_autoencoder(cfg: ConfigDict, seed: int = 0) -> autoencoder.Autoencoder:
    return autoencoder.Autoencoder(cfg.ae, nnx.Rngs(seed))


def load_autoencoder(directory: str) -> autoencoder.Autoencoder:
    """The trained autoencoder (with its latent statistics) from an autoencoder workdir."""
    cfg, _ = checkpoint.read_config(_ckpt_dir(directory))
    ae = nnx.eval_shape(lambda: build_autoencoder(ConfigDict(cfg)))
    _, state, _ = checkpoint.restore(_ckpt_dir(directory), _abstract(nnx.state(ae)))
    nnx.update(ae, state)
    return ae


def _ckpt_dir(workdir: str) -> str:
    return os.path.join(workdir, "checkpoints")


@nnx.jit(donate_argnums=(0, 1))
def _ae_train_step(model, opt, video, key, kl_weight):
    (loss, aux), grads = nnx.value_and_grad(autoencoder.loss_fn, has_aux=True)(model, video, key, kl_weight)
    opt.update(model, grads)
    return loss, aux


@nnx.jit
def _ae_reconstruct(model, video):
    return model.decode(model.encode(video)[0])


@nnx.jit
def _ae_moments(model, video):
    mean, _ = model.encode(video)
    axes = tuple(range(mean.ndim - 1))
    return mean.mean(axes), jnp.square(mean).mean(axes)


def evaluate_autoencoder(model, cfg: ConfigDict, num_examples: int = 256) -> dict:
    """Validation PSNR and the share of reconstructions the spec's scoring judges correct."""
    videos, recons, captions = [], [], []
    for batch in data.batches(cfg.data, "validation", 32, seed=0, repeat=False):
        videos.append(data.to_uint8(batch["video"]))
        recons.append(data.to_uint8(_ae_reconstruct(model, jnp.asarray(batch["video"]))))
        captions += list(batch["caption"])
        if len(captions) >= num_examples:
            break
    videos, recons = np.concatenate(videos), np.concatenate(recons)
    acc = metrics.prompt_accuracy(recons, captions)
    return {"psnr": metrics.psnr(videos, recons), "recon_accuracy": acc["accuracy"],
            **{f"recon_{k}": acc[k] for k in ("color", "shape", "direction")}}


def set_latent_stats(model, cfg: ConfigDict, num_batches: int = 16):
    """Per-channel shift/scale of the encoder's mean latent over training data."""
    it = data.batches(cfg.data, "train", 32, seed=cfg.seed + 1)
    m1, m2 = zip(*(_ae_moments(model, jnp.asarray(next(it)["video"])) for _ in range(num_batches)))
    mean, sq = jnp.mean(jnp.stack(m1), 0), jnp.mean(jnp.stack(m2), 0)
    model.latent_shift[...] = mean
    model.latent_scale[...] = jnp.sqrt(jnp.maximum(sq - mean**2, 1e-8))


def train_autoencoder(cfg: ConfigDict, workdir: str) -> dict:
    ac = cfg.ae
    model = build_autoencoder(cfg, cfg.seed)
    opt = nnx.Optimizer(model, make_optimizer(ac.lr, ac.warmup, ac.steps), wrt=nnx.Param)
    mngr = checkpoint.manager(_ckpt_dir(workdir), cfg.keep_checkpoints)
    start = 0
    if mngr.latest_step() is not None:
        start, model_state, opt_state = checkpoint.restore(
            _ckpt_dir(workdir), _abstract(nnx.state(model)), _abstract(nnx.state(opt)))
        nnx.update(model, model_state)
        nnx.update(opt, opt_state)
    logger = Logger(workdir)
    batches = data.batches(cfg.data, "train", ac.batch_size, cfg.seed, start_step=start)
    bar = tqdm(range(start, ac.steps), initial=start, total=ac.steps, desc="autoencoder")
    tic = time.time()
    for step in bar:
        video = jnp.asarray(next(batches)["video"])
        key = jax.random.fold_in(jax.random.key(cfg.seed), step)
        loss, aux = _ae_train_step(model, opt, video, key, ac.kl_weight)
        done = step + 1
        if done % ac.log_every == 0 or done == ac.steps:
            loss = float(loss)
            if not np.isfinite(loss):
                raise FloatingPointError(f"non-finite autoencoder loss at step {done}; lower ae.lr")
            rate = ac.log_every / (time.time() - tic)
            tic = time.time()
            bar.set_postfix(loss=f"{loss:.4f}", steps_per_s=f"{rate:.2f}")
            logger.log(done, loss=loss, steps_per_s=rate, **aux)
        if done % ac.checkpoint_every == 0 or done == ac.steps:
            if done == ac.steps:
                set_latent_stats(model, cfg)
            checkpoint.save(mngr, done, cfg, nnx.state(model), nnx.state(opt))
    mngr.wait_until_finished()
    result = evaluate_autoencoder(model, cfg)
    logger.log(ac.steps, **result)
    with open(os.path.join(workdir, "eval.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result
