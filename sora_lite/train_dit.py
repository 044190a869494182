"""Training the DiT (`train`) on latents of a trained autoencoder, over the shape mixture.

Each step is one batch of one mixture entry (a bucket: Open-Sora's choice; see the README
for why not NaViT-style packing), its size set so every step carries the same tokens. The
step compiles once per entry, and its timestep shift follows that entry's token count.
Captions are drawn per example from a table of its subject's wordings (data.caption_rows),
an argument of the step rather than a constant folded into it. Latents and the caption
table are computed once and cached in the workdir under a key of what made them.
With `train.conditions`, each example is also given frames of its own clip (none, the first,
a head or tail clip, both ends, keyframes; conditioning.py), encoded inside the step by the
frozen autoencoder. `train.init_from` starts from a trained DiT: new inputs zero-initialised,
and a shallower model's blocks spread over a deeper `dit.size` (dit.grow).
Rerunning the same command resumes exactly: batches are a pure function of (seed, step).
The DiT trains on a device mesh shaped by `cfg.mesh` (sharding.py), its state born sharded.
"""

import functools
import json
import math
import os
import re
import time

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from ml_collections import ConfigDict
from tqdm import tqdm

from sora_lite import autoencoder, captions, checkpoint, conditioning, data, diffusion, metrics, patchify, sharding
from sora_lite import distill, training
from sora_lite import video as video_io
from sora_lite.conditioning import Condition
from sora_lite.dit import build_dit, grow, widen
from sora_lite.flax_setup import nnx
from sora_lite.pipeline import Pipeline
from sora_lite.sizing import num_tokens
from sora_lite.text import TextEncoder


def encode_latents(ae, cfg: ConfigDict, entry: data.Entry, workdir: str) -> dict:
    """{"latent": [n, t, h, w, C], "subject": [n]} of every training clip of `entry`: the frozen
    encoder's normalised mean, cached under a key of the autoencoder's weights and the data."""
    key = training.fingerprint(ae, cfg.ae.to_dict(), *data.identity(cfg.data, entry))

    def compute():
        latents, subjects = [], []
        ds = data.clips(cfg.data, "train", entry)
        for batch in tqdm(data.batches(ds, 64, seed=0, repeat=False), desc=f"encoding {entry}",
                          disable=jax.process_index() != 0):
            latents.append(np.asarray(autoencoder.encode_latent(ae, jnp.asarray(batch["video"]))))
            subjects.append(batch["subject"])
        return {"latent": np.concatenate(latents), "subject": np.concatenate(subjects)}

    return training.cached(os.path.join(workdir, "latents", f"{entry}-{key}.npz"), compute)


def caption_table(text_encoder: TextEncoder, rows: list[list[str]], data_dir: str) -> dict:
    """The text encoder's states of every training caption, {"text": [S, K, L, E], "mask":
    [S, K, L]} for S subjects of K captions each (`rows`, captions.caption_rows), plus the empty
    caption's ("null_text" [L, E], "null_mask" [L]) that guidance trains with; cached with the
    data under a key of the captions, for every run on them."""
    table = [c for row in rows for c in row]
    length = text_encoder.length(table)  # one length for every batch, and for the empty caption
    key = training.fingerprint(table, length)

    def compute():
        text, mask = zip(*(text_encoder(table[i : i + 256], length) for i in range(0, len(table), 256)))
        null_text, null_mask = text_encoder([""], length)
        return {"text": np.concatenate(text), "mask": np.concatenate(mask),
                "null_text": null_text[0], "null_mask": null_mask[0]}

    arrays = training.cached(os.path.join(data_dir, "captions", f"captions-{key}.npz"), compute)
    s, k = len(rows), len(rows[0])
    return {**arrays, "text": arrays["text"].reshape(s, k, *arrays["text"].shape[1:]),
            "mask": arrays["mask"].reshape(s, k, -1)}


class ArraySource:
    """Random access to rows of equally long arrays, as dicts, for grain; with `clips` (the
    dataset the arrays were computed from, in order) each row also carries its clip's "video"."""

    def __init__(self, arrays: dict, clips=None):
        self.arrays, self.clips = arrays, clips

    def __len__(self):
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, i):
        row = {k: v[i] for k, v in self.arrays.items()}
        return row if self.clips is None else {**row, "video": self.clips[i]["video"]}


def _ema_update(ema, model, decay):
    params = nnx.state(model, nnx.Param)
    # e + (1 - d)(p - e), not d e + (1 - d) p: a weight that does not train stays exactly as it was.
    nnx.update(ema, jax.tree.map(lambda e, p: e + (1 - decay) * (p - e), nnx.state(ema, nnx.Param), params))


def init_train_state(cfg: ConfigDict, mesh):
    """(raw DiT weights, optimizer, EMA weights), each variable born on `mesh` where its logical
    axis names say; the EMA starts as a copy of the raw weights."""
    tc = cfg.train
    model = sharding.init_sharded(lambda: build_dit(cfg, cfg.seed), mesh)
    ema = jax.tree.map(jnp.copy, model)  # same init, its own buffers (the step donates both)
    tx = training.make_optimizer(tc.lr, tc.warmup, tc.steps, tc.weight_decay, tc.grad_clip)
    opt = sharding.init_sharded(lambda: nnx.Optimizer(build_dit(cfg), tx, wrt=training.trainable(tc.trainable)), mesh)
    return model, opt, ema


def condition_weights(cfg: ConfigDict) -> list[float] | None:
    """`train.conditions` as weights in conditioning.KINDS order, or None when only "none" has
    weight (plain text-to-video: no frames, no encoding); a one-line ValueError if invalid."""
    weights = [float(cfg.train.conditions[k]) for k in conditioning.KINDS]
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"train.conditions weights must be >= 0 with a positive sum; got {cfg.train.conditions.to_dict()}")
    return weights if sum(weights[1:]) > 0 else None


def make_train_step(graphdef, ae_graphdef, cfg: ConfigDict):
    """The DiT step as a pure function, to be jitted with donation and out_shardings:
    (state, progress, batch, table, ae_state, rng, step) -> (state, progress, (loss, grad_norm)),
    with batch = {"latent": [B, t, h, w, C], "subject": [B]} (and, when frames are given,
    "video" [B, T, H, W, 3]; when distilling, the "noise" [B, t, h, w, C] and "caption" [B] that
    each latent was sampled from), `table` a `caption_table` and `ae_state` the frozen autoencoder's.

    `state` is nnx.state((raw weights, optimizer, EMA)) of `graphdef`. A step whose loss or
    gradient norm is not finite leaves the state as it was and is counted in `progress`; the
    host stops the run when the count exceeds `train.nonfinite_skips`.
    """

    kinds = condition_weights(cfg)
    # The channels an autoencoder adds to its base's (ae.base) weigh diffusion.detail_weight.
    base = autoencoder.base_channels(cfg.ae)
    channel_weights = jnp.where(jnp.arange(cfg.ae.latent_channels) < base, 1.0,
                                cfg.diffusion.detail_weight) if base else None  # [C]

    def train_step(state, progress, batch, table, ae_state, rng, step):
        latent, subject = batch["latent"], batch["subject"]  # [B, t, h, w, C], [B]
        k_loss, k_caption, k_frames = jax.random.split(jax.random.fold_in(jax.random.wrap_key_data(rng), step), 3)
        pick = batch["caption"] if "caption" in batch else (  # [B] the caption of each: the one it was sampled
            jax.random.randint(k_caption, subject.shape, 0, table["text"].shape[1]))  # with, or any of its subject's
        cond = Condition(table["text"][subject, pick], table["mask"][subject, pick])  # [B, L, E], [B, L]
        weights = None
        if kinds is not None:
            video = batch["video"]  # [B, T, H, W, 3]
            frame_mask = conditioning.sample_frame_masks(k_frames, video.shape[0], video.shape[1], kinds)  # [B, T]
            cond = cond._replace(frames=conditioning.given(nnx.merge(ae_graphdef, ae_state), video, frame_mask))
            weights = 1.0 - conditioning.held(cond.frames)[1][:, :, 0, 0, 0].astype(jnp.float32)  # [B, t] generated
        tokens = math.prod(patchify.grid_shape(latent.shape[1:4], tuple(cfg.dit.patch)))
        shift = diffusion.timestep_shift(tokens, cfg.diffusion.base_tokens)  # this shape's own
        times = distill.student_times(cfg, shift) if "noise" in batch else None
        # The blocks unrolled: the backward pass runs faster through them (dit.py).
        loss_fn = lambda m: diffusion.loss(functools.partial(m, unroll=True), latent, cond,  # noqa: E731
                                           table["null_text"], table["null_mask"], k_loss, cfg.diffusion, shift,
                                           weights, batch.get("noise"), times, channel_weights)
        grad_fn = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, training.trainable(cfg.train.trainable)))
        loss, grads = grad_fn(nnx.merge(graphdef, state)[0])
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

        def update(state):
            model, opt, ema = nnx.merge(graphdef, state)
            opt.update(model, grads)
            _ema_update(ema, model, cfg.train.ema_decay)
            return nnx.state((model, opt, ema))

        state = jax.lax.cond(finite, update, lambda state: state, state)
        progress = {"data_step": step + 1, "nonfinite": progress["nonfinite"] + jnp.where(finite, 0, 1),
                    "last_nonfinite": jnp.where(finite, progress["last_nonfinite"], step + 1)}
        return state, progress, (loss, grad_norm)

    return train_step


# XLA:CPU's YNNPACK fusions suit a forward pass (sampling keeps them) but slow the training step,
# whose backward pass is mostly transposed dots and reductions: without them the step of the
# shipped size runs about 17% faster on this project's CPU (BENCHMARKS.md).
CPU_STEP_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def jit_train_step(graphdef, ae_graphdef, cfg: ConfigDict, mesh, state_sharding):
    """make_train_step jitted: state and progress donated, outputs sharded like the inputs, and
    CPU_STEP_OPTIONS on a CPU mesh."""
    replicated = NamedSharding(mesh, P())
    options = CPU_STEP_OPTIONS if mesh.devices.flat[0].platform == "cpu" else {}
    return jax.jit(make_train_step(graphdef, ae_graphdef, cfg), donate_argnums=(0, 1),
                   out_shardings=(state_sharding, replicated, None), compiler_options=options)


def train(cfg: ConfigDict, workdir: str, devices=None) -> dict:
    """Train the DiT on latents of the autoencoder in `cfg.train.autoencoder`; resume if possible.

    Runs on a mesh of `devices` (default: all) shaped by `cfg.mesh` (sharding.py)."""
    tc = cfg.train
    if not (tc.autoencoder or tc.init_from):
        raise ValueError("set --config.train.autoencoder to a trained autoencoder workdir "
                         "(scripts/train_autoencoder.py writes one), or --config.train.init_from to a DiT model")
    training.check_settings(cfg, "train")
    training.check_settings(cfg, "diffusion")  # a negative motion_weight would reward errors
    training.check_settings(cfg, "sample")  # a bad one would fail only at the first samples, hours in
    kinds = condition_weights(cfg)
    distill.check(cfg, kinds is not None)
    ae = autoencoder.load_autoencoder(tc.autoencoder or tc.init_from)  # a DiT model carries its own
    cfg = ConfigDict(cfg.to_dict())
    cfg.ae = ae.cfg  # the autoencoder's own architecture section: the DiT checkpoint rebuilds it
    entries = training.check_mixture(cfg)
    training.check_same_run(cfg, "dit", workdir)  # an autoencoder's workdir, or another run's
    # A bad architecture key or trainable pattern fails now, not after encoding the data.
    training.check_trainable(nnx.eval_shape(lambda: build_dit(cfg)), tc.trainable)
    text_encoder = TextEncoder(cfg.text.max_len)
    latents = [encode_latents(ae, cfg, e, workdir) for e in entries]

    mesh = sharding.make_mesh(cfg.mesh, devices)
    replicated = NamedSharding(mesh, P())
    tokens = [num_tokens(cfg, *e.shape) for e in entries]
    sizes = data.bucket_sizes(tokens, tc.batch_size, training.batch_multiple(mesh))
    table = caption_table(text_encoder, captions.caption_rows(cfg.data), cfg.data.dir)
    if tc.distill_pairs:  # the teacher's samples, with their noise, in place of the data's latents
        latents = distill.mixture_pairs(cfg, entries, latents, sizes, table, workdir)
    table = jax.device_put(table, replicated)
    model, opt, ema = init_train_state(cfg, mesh)
    # Besides weights and optimizer, a checkpoint holds where the run's randomness and data
    # stand: the base RNG key (step keys fold the step into it), the index of the next batch,
    # and the count of skipped non-finite steps.
    # (From host values, which device_put spreads over every process's devices.)
    rng = jax.device_put(np.asarray(jax.random.key_data(jax.random.key(cfg.seed))), replicated)
    progress = {"data_step": np.int32(0), "nonfinite": np.int32(0), "last_nonfinite": np.int32(-1)}
    progress = jax.device_put(progress, replicated)
    ckpt_dir = checkpoint.directory(workdir)
    mngr = checkpoint.manager(ckpt_dir, cfg.keep_checkpoints)
    start = 0
    if mngr.latest_step() is not None:
        start, saved_model, saved_train = checkpoint.restore(
            ckpt_dir, {"dit": checkpoint.abstract_state(ema), "ae": checkpoint.abstract_state(ae)},
            {"dit": checkpoint.abstract_state(model), "opt": checkpoint.abstract_state(opt),
             "rng": checkpoint.abstract(rng), "progress": checkpoint.abstract(progress)})
        checkpoint.discard_newer(mngr, start)  # steps past it were unreadable: they would block new saves
        nnx.update(ema, saved_model["dit"])
        nnx.update(model, saved_train["dit"])
        nnx.update(opt, saved_train["opt"])
        rng, progress = saved_train["rng"], saved_train["progress"]
        training.say(f"resumed {workdir} at step {start} of {tc.steps}")
    elif tc.init_from:
        first = tc.student_from or tc.init_from  # a distillation's student may start from an earlier student
        _, _, arrays = checkpoint.load_arrays(checkpoint.directory(first), ("dit",))
        depth = jax.tree.leaves(arrays["dit"]["blocks"])[0].shape[0]
        channels = arrays["dit"]["final"]["bias"]["value"].shape[0] // math.prod(model.patch)
        arrays = grow(arrays["dit"], model)  # a shallower model's blocks spread over this depth
        arrays = widen(arrays, model)  # a narrower latent's layers, onto an autoencoder built on its own
        new = [checkpoint.fill(m, arrays, first) for m in (model, ema)][0]
        training.say(f"initialised from {first}" + (f"; new (zero-initialised): {', '.join(new)}" if new else "")
                     + (f"; its {depth} blocks grown to {model.size.depth}" if depth < model.size.depth else "")
                     + (f"; its {channels} latent channels widened to {model.channels}"
                        if channels < model.channels else ""))

    graphdef, state = nnx.split((model, opt, ema))
    ae_graphdef, ae_state = nnx.split(ae)
    ae_state = jax.device_put(jax.tree.map(np.asarray, ae_state), replicated)
    jitted = jit_train_step(graphdef, ae_graphdef, cfg, mesh, sharding.param_shardings(state, mesh))
    train_step = training.PerShape(jitted, mesh)

    def save(step):
        checkpoint.save(mngr, step, "dit", cfg, {"dit": nnx.state(ema), "ae": nnx.state(ae)},
                        {"dit": nnx.state(model), "opt": nnx.state(opt), "rng": rng, "progress": progress})

    logger = training.Logger(workdir, start)
    lr = training.learning_rate(tc.lr, tc.warmup, tc.steps)
    pipe = Pipeline(ema, ae, cfg, text_encoder, mesh)  # samples on the training mesh
    choices = data.schedule([e.weight for e in entries], cfg.seed, tc.steps)
    sources = [ArraySource(a, data.clips(cfg.data, "train", e) if kinds else None) for a, e in zip(latents, entries)]
    batches = data.MixtureBatches([grain.MapDataset.source(s) for s in sources], sizes, choices,
                                  cfg.seed, int(progress["data_step"]), jax.process_index(), jax.process_count())
    bar = tqdm(range(start, tc.steps), initial=start, total=tc.steps, desc="dit", disable=jax.process_index() != 0)
    tic, seen_tokens = time.time(), 0
    with training.StopSignal() as stop:
        for step in bar:
            i, batch = next(batches)  # this process's rows of the global batch
            batch = {k: sharding.global_batch(mesh, v) for k, v in batch.items()}
            state, progress, (loss, grad_norm) = train_step(f"{entries[i]} (batch {sizes[i]})", state, progress, batch,
                                                            table, ae_state, rng, jnp.int32(step))
            nnx.update((model, opt, ema), state)  # the objects that save() and sampling read
            seen_tokens += sizes[i] * tokens[i]
            done = step + 1
            stop_now = stop.requested()  # Ctrl-C or SIGTERM: save this step, then stop
            log_now = done % tc.log_every == 0 or done == tc.steps
            save_now = done % tc.checkpoint_every == 0 or done == tc.steps or stop_now
            if log_now or save_now:  # a run past its non-finite budget stops before it saves
                training.check_nonfinite(progress, tc.nonfinite_skips)
            if log_now:
                elapsed = time.time() - tic
                rate = min(tc.log_every, done - start) / elapsed
                bar.set_postfix(loss=f"{float(loss):.4f}", steps_per_s=f"{rate:.2f}")
                logger.log(done, loss=loss, grad_norm=grad_norm, learning_rate=lr(step), steps_per_s=rate,
                           tokens_per_s=seen_tokens / elapsed,
                           nonfinite_steps=progress["nonfinite"])
                tic, seen_tokens = time.time(), 0
            if save_now:
                save(done)
            if tc.sample_every and (done % tc.sample_every == 0 or done == tc.steps):
                write_samples(pipe, entries, cfg.data, os.path.join(workdir, "samples", f"step_{done}"), logger, done)
            if stop_now:
                checkpoint.wait(mngr)
                raise training.interrupted(done, tc.steps, ckpt_dir)
    checkpoint.wait(mngr)
    if train_step.compiled:
        training.say(train_step.summary())
    if not tc.eval_at_end or cfg.data.folder:
        if tc.eval_at_end:
            training.say("no evaluation: prompt accuracy is scored on the generated data sets, and this run "
                         f"trained on {cfg.data.folder}; see samples/ and scripts/evaluate.py")
        logger.close()
        return {}
    result = evaluate(pipe, entries, cfg.data)
    logger.log(tc.steps, **{f"{shape}/{split}/{k}": v for shape, r in result.items() for split, s in r.items()
                            for k, v in s.items() if v is not None})
    logger.close()
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "eval.json"), "w") as f:
            json.dump(result, f, indent=2)
    return result


def evaluate(pipe, entries, data_cfg: ConfigDict, seeds=(0, 1)) -> dict:
    """Prompt accuracy at every mixture shape. Moving Shapes: seen and held-out combinations
    (videos) or the colour-shape pairs (images); at the first video shape also prompts in the
    held-out vocabulary. Camera Moves: seen and held-out combinations."""
    if captions.dataset(data_cfg) == "camera_moves":
        from sora_lite import camera_metrics  # here: its scipy is a second of every run's start-up

        return {str(e): camera_metrics.evaluate_pipeline(pipe, *e.shape, seeds) for e in entries}
    first_video = next((e for e in entries if e.frames > 1), None)
    sets = lambda e: ("seen", "heldout", "new_words") if e is first_video else ("seen", "heldout")  # noqa: E731
    return {str(e): metrics.evaluate_pipeline(pipe, e.frames, e.height, e.width, seeds, sets(e)) for e in entries}


def write_samples(pipe, entries, data_cfg: ConfigDict, prefix: str, logger: training.Logger, step: int):
    """A few sample prompts (data.sample_prompts) at every mixture shape: GIFs, or PNGs for
    images, also in TensorBoard."""
    for e in entries:
        prompts = data.sample_prompts(data_cfg, image=e.frames == 1)
        videos = pipe.generate(prompts, e.frames, e.height, e.width, seed=0)
        if jax.process_index() != 0:  # every host computes, one writes
            continue
        for prompt, v in zip(prompts, videos):
            name = re.sub(r"\W+", "_", prompt)[:80]  # a caption of one's own may hold any character
            video_io.write(f"{prefix}_{e}_{name}.{'png' if e.frames == 1 else 'gif'}", v)
            logger.video(step, f"samples/{e}/{prompt}", v)
