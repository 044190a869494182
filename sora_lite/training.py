"""What both trainers share: arrays cached by what made them, the optimizer, the metrics log,
the non-finite policy, the shape mixture's checks and batch sizes, and one compiled step per shape.

The trainers themselves: `train_autoencoder.py` (the VAE) and `train_dit.py` (the DiT).
"""

import hashlib
import json
import math
import os
import re
import signal
import tempfile
import threading
import time

import jax
import numpy as np
import optax
from jax.experimental import multihost_utils
from ml_collections import ConfigDict
from tensorboardX import SummaryWriter
from tensorboardX.proto.summary_pb2 import Summary
from tqdm import tqdm

from sora_lite import captions, checkpoint, data, sharding, validate
from sora_lite import video as video_io
from sora_lite.flax_setup import nnx
from sora_lite.sizing import INTEGER_SETTINGS, SAMPLE_BOUNDS, latent_grid


def fingerprint(*parts) -> str:
    """A short hash of bytes, modules (their weights) and JSON-able values: the key of arrays
    computed from them."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, nnx.Module):
            part = b"".join(np.asarray(x).tobytes() for x in jax.tree.leaves(nnx.state(part)))
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()[:16]


def cached(path: str, compute) -> dict:
    """The arrays saved at `path`, or `compute()` saved there first. Every process computes the
    same arrays; each writes its own temporary file and renames it, so a reader never sees half."""
    if os.path.exists(path):
        return dict(np.load(path))
    arrays = compute()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{jax.process_index()}.npz"
    try:
        np.savez(tmp, **arrays)
    except OSError as e:  # a full disk: say which file, and leave no half of it
        if os.path.exists(tmp):
            os.remove(tmp)
        raise OSError(f"writing {path} failed ({e.strerror or e}); free space or fix the directory, "
                      "then rerun the same command") from e
    os.replace(tmp, path)
    return arrays


def learning_rate(lr: float, warmup: int, steps: int):
    """The schedule: linear warmup to `lr`, then cosine decay to lr / 10 at `steps`."""
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1), lr * 0.1)


def make_optimizer(lr: float, warmup: int, steps: int, weight_decay: float = 0.0, grad_clip: float = 1.0):
    return optax.chain(optax.clip_by_global_norm(grad_clip),
                       optax.adamw(learning_rate(lr, warmup, steps), weight_decay=weight_decay))


# The counts and rates of each trainer's config section, as (key, kind, low, high): checked
# before anything is built, so a bad value is one line naming its key, not an error deep inside.
SETTINGS = {
    "train": [("steps", "int", 1, None), ("batch_size", "int", 1, None), ("lr", "float", 1e-12, None),
              ("warmup", "int", 0, None), ("weight_decay", "float", 0, None), ("grad_clip", "float", 1e-12, None),
              ("ema_decay", "float", 0, 1), ("nonfinite_skips", "int", 0, None), ("log_every", "int", 1, None),
              ("checkpoint_every", "int", 1, None), ("sample_every", "int", 0, None),
              ("distill_pairs", "int", 0, None)],
    "ae_train": [("steps", "int", 1, None), ("batch_size", "int", 1, None), ("lr", "float", 1e-12, None),
                 ("kl_weight", "float", 0, None), ("decoder_steps", "int", 0, None),
                 ("decoder_batch_size", "int", 1, None), ("decoder_lr", "float", 1e-12, None),
                 ("warmup", "int", 0, None), ("log_every", "int", 1, None), ("checkpoint_every", "int", 1, None)],
    # How the DiT's loss draws times and captions, and weighs the motion (diffusion.py).
    "diffusion": [("logit_mean", "float", None, None), ("logit_std", "float", 1e-12, None),
                  ("base_tokens", "int", 1, None), ("caption_dropout", "float", 0, 1),
                  ("motion_weight", "float", 0, None), ("detail_weight", "float", 0, None)],
    # How the trained DiT samples (its periodic samples, its final evaluation, and its users by
    # default): Pipeline's bounds.
    "sample": [(key, "int" if key in INTEGER_SETTINGS else "float", *bounds) for key, bounds in SAMPLE_BOUNDS.items()],
}


def check_settings(cfg: ConfigDict, section: str):
    """A one-line ValueError or TypeError naming the first of `cfg.<section>`'s settings that is
    out of range ("train.batch_size must be an integer >= 1; got 0"), and `keep_checkpoints`."""
    for key, kind, low, high in SETTINGS[section]:
        check = validate.integer if kind == "int" else validate.number
        check(f"{section}.{key}", cfg[section][key], low, high)
    validate.integer("keep_checkpoints", cfg.keep_checkpoints, 1)


# What a run trains on and how: a rerun that differs in one of these is another run, not this one
# resumed. Its length, learning rate, logging, checkpointing, and how it computes (mesh,
# precision, remat) and samples may change.
RUN_KEYS = {
    "dit": ("seed", "data.name", "data.folder", "data.mixture", "data.train_size", "data.fps", "data.partial_captions",
            "text", "dit.size", "dit.patch", "dit.canvas_position", "diffusion", "train.batch_size", "train.conditions",
            "train.init_from", "train.autoencoder", "train.trainable", "train.student_from", "train.distill_pairs"),
    "autoencoder": ("seed", "data.name", "data.folder", "data.mixture", "data.train_size", "data.fps", "ae",
                    "ae_train.batch_size", "ae_train.decoder_batch_size", "ae_train.kl_weight", "ae_train.init_from",
                    "ae_train.base"),
}


def check_same_run(cfg: ConfigDict, kind: str, workdir: str):
    """Before a run resumes from `workdir`'s newest checkpoint: a one-line error if that holds no
    `kind` model, or another run (one of RUN_KEYS[kind] differs; keys a checkpoint predates are
    not compared), which resuming would silently continue under the new command."""
    directory = checkpoint.directory(workdir)
    if not checkpoint.complete_steps(directory):
        return
    saved, step = checkpoint.read_config(directory, kind)
    there, here = (_settings_of(c, RUN_KEYS[kind]) for c in (saved, cfg))
    differ = [f"{k} {v!r} there, {here.get(k)!r} here" for k, v in there.items() if v != here.get(k)]
    if differ:
        raise ValueError(f"{workdir} holds another run, at step {step} ({'; '.join(differ[:3])}): rerun its "
                         f"command to resume it, or give this one a new --workdir")


def _settings_of(cfg: ConfigDict, keys, prefix: str = "") -> dict:
    """{"section.key": value} of the settings under `keys` (a section gives each of its own)."""
    out = {}
    for key in keys:
        node = cfg
        for k in key.split("."):
            node = node[k] if isinstance(node, ConfigDict) and k in node else None
        if isinstance(node, ConfigDict):
            out.update(_settings_of(node, list(node.keys()), f"{prefix}{key}."))
        elif node is not None:
            out[prefix + key] = json.loads(json.dumps(node))  # tuples as lists, as a saved config holds them
    return out


def trainable(pattern: str):
    """The parameters a run trains (an nnx filter): every Param, or with `pattern` those whose
    path, written "blocks/attn/q/kernel", it matches (re.search)."""
    if not pattern:
        return nnx.Param
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"train.trainable {pattern!r} is not a regular expression: {e}") from None
    return nnx.All(nnx.Param, lambda path, _: regex.search("/".join(map(str, path))) is not None)


def check_trainable(model, pattern: str):
    """A one-line ValueError when `pattern` matches none of `model`'s parameters."""
    if pattern and not jax.tree.leaves(nnx.state(model, trainable(pattern))):
        raise ValueError(f"train.trainable {pattern!r} matches no parameter; paths look like "
                         "blocks/attn/q/kernel, frames_embed/kernel, final/bias")


class Logger:
    """Appends one JSON object per logged step to `workdir/metrics.jsonl`, and writes the same
    scalars, and sample videos, as TensorBoard event files in `workdir/tensorboard`
    (tensorboardX: no TensorFlow; `tensorboard --logdir runs` shows every run).

    A run that starts at step `start` (a resume) first drops the rows logged after it, and any
    line cut short by a kill (TensorBoard purges those steps too): those steps are run again, so
    each step appears once."""

    def __init__(self, workdir: str, start: int):
        os.makedirs(workdir, exist_ok=True)
        self.path = os.path.join(workdir, "metrics.jsonl")
        if jax.process_index() != 0:  # one log per run, however many hosts
            return
        self.board = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=start + 1 if start else None)
        if not os.path.exists(self.path):
            return
        with open(self.path) as f:
            lines = f.read().split("\n")[:-1]  # a killed run may leave a last line without its newline
        kept = [line for line in lines if json.loads(line)["step"] <= start]
        with open(self.path + ".tmp", "w") as f:
            f.writelines(line + "\n" for line in kept)
        os.replace(self.path + ".tmp", self.path)  # the old log stays whole until the new one is

    def log(self, step: int, **values):
        if jax.process_index() != 0:
            return
        # A skipped non-finite step (see `nonfinite_skips`) logs null: the file stays valid JSON.
        row = {"step": step, **{k: float(v) if np.isfinite(float(v)) else None for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        for k, v in row.items():
            if k != "step" and v is not None:
                self.board.add_scalar(k, v, step)
        self.board.flush()

    def video(self, step: int, tag: str, frames: np.ndarray):
        """A uint8 [T, H, W, 3] video (T = 1: an image) in TensorBoard's images tab, as an animated GIF."""
        if jax.process_index() != 0:
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "v.png" if len(frames) == 1 else "v.gif")
            video_io.write(path, frames)
            with open(path, "rb") as f:
                encoded = f.read()
        image = Summary.Image(height=frames.shape[1], width=frames.shape[2], colorspace=3,
                              encoded_image_string=encoded)
        self.board.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
        self.board.flush()

    def close(self):
        if jax.process_index() == 0:
            self.board.close()


def say(message: str):
    """A line for the user, on process 0, above the progress bar."""
    if jax.process_index() == 0:
        tqdm.write(message)


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM, its current step saved: the message says which."""


class StopSignal:
    """Ctrl-C (SIGINT) or SIGTERM asks a training loop to stop after its current step and save
    it, rather than die between checkpoints; a second Ctrl-C stops at once. With several
    processes, any one's signal stops all of them at the same step (`requested` agrees)."""

    def __enter__(self):
        self.flag, self.previous = False, {}
        if threading.current_thread() is threading.main_thread():  # where Python delivers signals
            self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        if self.flag and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.flag = True

    def requested(self) -> bool:
        if jax.process_count() == 1:
            return self.flag
        return bool(multihost_utils.process_allgather(np.int32(self.flag)).any())

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def interrupted(step: int, total: int, directory: str) -> Interrupted:
    return Interrupted(f"stopped at step {step} of {total}: saved checkpoint step {step} in {directory}; "
                       "rerun the same command to resume")


def finite_loss(step: int, loss, lr_key: str) -> float:
    """A loss as a float, or a one-line FloatingPointError naming the step and the learning
    rate (`lr_key`) to lower."""
    loss = float(loss)
    if not np.isfinite(loss):
        raise FloatingPointError(f"non-finite loss at step {step}: training stopped, the newest checkpoint on "
                                 f"disk is finite; lower --config.{lr_key} and rerun to resume")
    return loss


def check_nonfinite(progress: dict, allowed: int):
    """A one-line FloatingPointError once more than `allowed` steps had a NaN/Inf loss or gradient."""
    count = int(progress["nonfinite"])
    if count > allowed:
        raise FloatingPointError(
            f"non-finite loss or grad_norm at step {int(progress['last_nonfinite'])} ({count} such steps, "
            f"nonfinite_skips={allowed}): training stopped, the newest checkpoint on disk is finite; "
            "lower --config.train.lr (or raise --config.train.nonfinite_skips) and rerun to resume")


def check_mixture(cfg: ConfigDict) -> list[data.Entry]:
    """The entries of `cfg.data.mixture` a run trains on, each checked against the autoencoder's
    and the patch's divisors: a one-line ValueError naming the first entry that does not fit.
    With `data.folder`, entries that no file of the folder gives clips are left out, each said."""
    entries, name = data.mixture(cfg.data), captions.dataset(cfg.data)
    for e in entries:
        try:
            latent_grid(cfg, *e.shape)
        except ValueError as err:
            raise ValueError(f"data.mixture entry {e}: {err}") from None
        if e.frames < 2 and name == "camera_moves":
            raise ValueError(f"data.mixture entry {e}: Camera Moves clips need at least 2 frames (a move)")
    if not cfg.data.folder:
        return entries
    kept = [e for e in entries if data.has_clips(cfg.data, "train", e)]
    for e in entries:
        if e not in kept:
            say(f"data.mixture entry {e}: no clips in {cfg.data.folder} (no file nearest its aspect ratio is "
                "long enough); training without it")
    if not kept:
        raise ValueError(f"no file of {cfg.data.folder} gives clips of any data.mixture entry "
                         "(scripts/prepare_videos.py says why, file by file)")
    return kept


def batch_multiple(mesh) -> int:
    """What every batch size must be a multiple of: the mesh's batch shards and the processes."""
    return math.lcm(sharding.batch_shards(mesh), jax.process_count())


def local_copy(module):
    """`module` with every variable whole on this process's first device (from a mesh, where
    its values are replicated): for small evaluations every process runs alike."""
    state = jax.device_put(jax.tree.map(np.asarray, nnx.state(module)), jax.local_devices()[0])
    return nnx.merge(nnx.graphdef(module), state)


class PerShape:
    """A jitted step compiled ahead of time once per named input shape (a mixture entry), timed
    and reported: `step(name, *args)` runs the program compiled for `name`."""

    def __init__(self, jitted, mesh):
        self.jitted, self.mesh, self.compiled, self.seconds = jitted, mesh, {}, {}

    def __call__(self, name: str, *args):
        if name not in self.compiled:
            tic = time.time()
            with jax.set_mesh(self.mesh):  # the model's activation constraints read it while tracing
                self.compiled[name] = self.jitted.lower(*args).compile()
            self.seconds[name] = time.time() - tic
            say(f"compiled the step for {name} in {self.seconds[name]:.1f}s")
        return self.compiled[name](*args)

    def summary(self) -> str:
        return (f"{len(self.compiled)} compiled steps, one per shape, "
                f"{sum(self.seconds.values()):.1f}s: " + ", ".join(f"{k} {s:.1f}s" for k, s in self.seconds.items()))
