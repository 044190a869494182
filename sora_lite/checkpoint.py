"""Checkpoints with orbax: async saves, `max_to_keep`, restore onto any abstract target
(and so any mesh), and fallback past an unreadable newest step.

A step directory holds up to three items, so sampling can read only what it needs:
  `config` (JSON), `model` (what sampling uses: EMA DiT and/or autoencoder weights),
  `train` (what resuming also needs: raw weights, optimizer state, data position).
Orbax writes a step into a temporary directory and renames it when complete, so a save
killed midway never replaces a good checkpoint; those leftovers are cleaned on open.
"""

import contextlib
import json
import logging
import os
import re
import shutil
import warnings

import jax
import numpy as np
import orbax.checkpoint as ocp
from ml_collections import ConfigDict

from sora_lite.flax_setup import nnx

# Orbax warns on every read-only open, which is how sampling opens a checkpoint: not news to a user.
logging.getLogger("absl").addFilter(lambda record: not record.getMessage().startswith("Given directory is read only"))


class CheckpointError(RuntimeError):
    """A checkpoint directory that is missing, empty or unreadable."""


def directory(path: str) -> str:
    """The checkpoint folder of a workdir (`path/checkpoints`), or `path` itself when it already
    is one (it holds step folders, as an exported model does)."""
    if os.path.isdir(path) and not os.path.isdir(os.path.join(path, "checkpoints")) and any(
            name.isdigit() for name in os.listdir(path)):
        return path
    return os.path.join(path, "checkpoints")


def abstract(tree):
    """ShapeDtypeStructs (with shardings, where set) of a pytree of arrays: a restore target."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), tree)


def abstract_state(module):
    """`abstract` of every variable of an nnx module."""
    return abstract(nnx.state(module))


def manager(directory: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, cleanup_tmp_directories=True,
                                           enable_async_checkpointing=True)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options)


# What a checkpoint holds, as its config's "model" key says: training writes it, loading checks it.
KINDS = {"autoencoder": "an autoencoder (scripts/train_autoencoder.py writes one)",
         "dit": "a DiT model (scripts/train.py writes one; scripts/export.py exports one)"}


def save(mngr: ocp.CheckpointManager, step: int, kind: str, config: ConfigDict, model, train=None):
    items = {"config": ocp.args.JsonSave({"model": kind, **config.to_dict()}),
             "model": ocp.args.StandardSave(model)}
    if train is not None:
        items["train"] = ocp.args.StandardSave(train)
    try:
        mngr.save(step, args=ocp.args.Composite(**items))
    except Exception as e:  # noqa: BLE001 - this save, or the previous one still in flight, failed
        raise _save_failed(mngr, e) from None


def wait(mngr: ocp.CheckpointManager):
    """Wait for the saves in flight; a failed one is a one-line CheckpointError."""
    try:
        mngr.wait_until_finished()
    except Exception as e:  # noqa: BLE001
        raise _save_failed(mngr, e) from None


def _save_failed(mngr: ocp.CheckpointManager, error: Exception) -> CheckpointError:
    """What failed (the OS's reason, where the storage layer gives one) and what is left."""
    code = re.search(r"os_error_code='?(\d+)", str(error))
    cause = os.strerror(int(code.group(1))) if code else _first_line(error)[:200]
    complete = complete_steps(str(mngr.directory))
    left = (f"the newest complete checkpoint, step {complete[-1]}, is intact" if complete
            else "no checkpoint was complete yet")
    return CheckpointError(f"saving a checkpoint in {mngr.directory} failed ({cause}): training stopped and {left}; "
                           "free space or fix the directory, then rerun the same command to resume")


def complete_steps(directory: str) -> list[int]:
    """The steps whose saves completed (a save in flight or cut short lives in a temporary folder)."""
    return sorted(int(n) for n in os.listdir(directory) if n.isdigit()) if os.path.isdir(directory) else []


def read_config(directory: str, kind: str) -> tuple[ConfigDict, int]:
    """The config and step of the newest readable checkpoint in `directory`, which must hold
    a `kind` model (a key of KINDS), or a one-line CheckpointError saying what it holds."""
    step, out = _restore_newest(directory, {"config": ocp.args.JsonRestore()})
    return _config_of_kind(directory, out["config"], kind), step


def _config_of_kind(directory: str, saved: dict, kind: str) -> ConfigDict:
    """A saved config as a ConfigDict, or a one-line CheckpointError unless it holds a `kind` model."""
    config = _tuples(saved)
    found = config.pop("model", None)
    if found != kind:
        holds = f"holds {KINDS[found].split(' (')[0]}" if found in KINDS else "holds no sora_lite model"
        raise CheckpointError(f"{directory} {holds}; expected {KINDS[kind]}")
    return ConfigDict(config)


def restore(directory: str, model_target, train_target=None, step: int | None = None):
    """Restore `model` (and `train`, if a target is given) from the newest readable step.

    Targets are abstract pytrees (`jax.ShapeDtypeStruct`s, optionally with shardings), so
    a checkpoint saved on one mesh restores onto any other. Returns (step, model, train).
    """
    items = {"model": ocp.args.StandardRestore(model_target)}
    if train_target is not None:
        items["train"] = ocp.args.StandardRestore(train_target)
    step, out = _restore_newest(directory, items, step)
    return step, out["model"], out.get("train") if train_target is not None else None


def _restore_newest(directory: str, items: dict, step: int | None = None):
    """(step, restored items) of the newest step (or only `step`) whose `items` all read back,
    warning for each step skipped as unreadable."""
    mngr = _open_existing(directory)
    for s in [step] if step is not None else _steps_newest_first(mngr):
        try:
            return s, mngr.restore(s, args=ocp.args.Composite(**items))
        except Exception as e:  # noqa: BLE001 - any failure means this step is unreadable
            _warn_fallback(directory, s, e)
    raise CheckpointError(f"no readable checkpoint in {directory}: the files are missing or corrupt; "
                          "retrain or point to another directory")


def load_arrays(directory: str, kinds: tuple[str, ...]) -> tuple[str, ConfigDict, dict]:
    """(kind, config, model item as saved) of the newest readable step, which must hold one of
    `kinds`, on this process's first device. The target comes from the step's own metadata, so
    this reads a checkpoint whose architecture differs from today's (`fill` copies it into a
    model that has new, zero-initialised inputs), saved on any topology."""
    mngr = _open_existing(directory)
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    for step in _steps_newest_first(mngr):
        try:
            with ocp.StandardCheckpointer() as reader:
                saved = reader.metadata(os.path.join(os.path.abspath(directory), str(step), "model")).item_metadata
            target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=here),
                                  getattr(saved, "tree", saved))
            out = mngr.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore(),
                                                             model=ocp.args.StandardRestore(target)))
        except Exception as e:  # noqa: BLE001 - any failure means this step is unreadable
            _warn_fallback(directory, step, e)
            continue
        kind = out["config"].get("model")
        return kind, _config_of_kind(directory, out["config"], kind if kind in kinds else kinds[0]), out["model"]
    raise CheckpointError(f"no readable checkpoint in {directory}: the files are missing or corrupt; "
                          "retrain or point to another directory")


def fill(module, arrays: dict, source: str) -> list[str]:
    """Copy saved `arrays` (a module's state as a checkpoint holds it) into `module`, each onto
    the sharding its variable has. Returns the names of the module's variables the checkpoint
    lacks (they keep their initial values); a shape mismatch or a saved array the module has no
    place for is a one-line CheckpointError."""
    saved = {tuple(str(getattr(k, "key", k)) for k in path[:-1]): value  # drop the trailing "value" key
             for path, value in jax.tree_util.tree_flatten_with_path(arrays)[0]}
    state = nnx.state(module)
    flat = dict(nnx.to_flat_state(state))
    unknown = sorted(".".join(p) for p in set(saved) - {tuple(map(str, p)) for p in flat})
    if unknown:
        raise CheckpointError(f"{source} holds weights this model has no place for ({', '.join(unknown[:3])}); "
                              "is it the same architecture (dit.size, dit.patch, ae)?")
    missing = []
    for path, var in flat.items():
        value = saved.get(tuple(map(str, path)))
        if value is None:
            missing.append(".".join(map(str, path)))
        elif value.shape != var.get_value().shape:
            raise CheckpointError(f"{source}: {'.'.join(map(str, path))} has shape {tuple(value.shape)}, this model "
                                  f"{tuple(var.get_value().shape)}; is it the same architecture (dit.size, dit.patch, ae)?")
        else:
            var.set_value(jax.device_put(np.asarray(value), getattr(var.get_value(), "sharding", None)))  # its own buffer
    nnx.update(module, nnx.from_flat_state(flat))
    return missing


def discard_newer(mngr: ocp.CheckpointManager, step: int):
    """Delete the steps after `step` (those `restore` fell back past as unreadable), so that
    training can save those step numbers again."""
    for s in mngr.all_steps():
        if s > step:
            warnings.warn(f"deleting unreadable checkpoint step {s} in {mngr.directory}", stacklevel=2)
            mngr.delete(s)


def _open_existing(directory: str) -> ocp.CheckpointManager:
    if not os.path.isdir(directory):
        raise CheckpointError(f"checkpoint directory {directory} does not exist: give a training workdir, an "
                              "exported model's folder or a shipped model's name (default, distilled, camera)")
    mngr = ocp.CheckpointManager(os.path.abspath(directory),
                                 options=ocp.CheckpointManagerOptions(read_only=True, create=False,
                                                                         save_interval_steps=0))
    if mngr.latest_step() is None:
        raise CheckpointError(f"no checkpoint in {directory}: expected step subdirectories written by training")
    return mngr


def _steps_newest_first(mngr) -> list[int]:
    return sorted(mngr.all_steps(), reverse=True)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _warn_fallback(directory, step, error):
    warnings.warn(f"checkpoint step {step} in {directory} is unreadable ({_first_line(error)[:200]}); "
                  "trying the previous one", stacklevel=3)


def _tuples(d):
    """JSON turned config tuples into lists; turn them back so configs compare equal."""
    if isinstance(d, dict):
        return {k: _tuples(v) for k, v in d.items()}
    return tuple(_tuples(v) for v in d) if isinstance(d, list) else d


def export(directory: str, out: str, sample: ConfigDict | None = None) -> int:
    """Copy the newest step whose `config` and `model` items both read back (all that sampling
    needs) from a training checkpoint directory to `out`, dropping optimizer state; with `sample`,
    the copy's config samples by it (a config's `sample` section) in place of the run's. The copy
    is made beside `out` and swapped in whole, so a failed export leaves the old one. Returns
    the step."""
    # Restoring the model item reads every byte that will be copied: a corrupt one is never exported.
    step, restored = _restore_newest(directory, {"config": ocp.args.JsonRestore(),
                                                 "model": ocp.args.StandardRestore()})
    _config_of_kind(directory, restored["config"], "dit")  # an autoencoder run is not a model to sample from
    src = os.path.join(os.path.abspath(directory), str(step))
    with replacing(out) as tmp:
        shutil.copytree(src, os.path.join(tmp, str(step)), ignore=lambda d, names: ["train"] if d == src else [])
        if sample is not None:  # the config item is JSON (JsonSave): the one read above, rewritten in the copy
            with open(os.path.join(tmp, str(step), "config", "metadata"), "w") as f:
                json.dump({**restored["config"], "sample": sample.to_dict()}, f)
    return step


@contextlib.contextmanager
def replacing(out: str):
    """A fresh directory beside `out` to write into, swapped in whole for `out` once the block
    ends without an error: a failed write leaves the old `out`."""
    tmp = os.path.abspath(out) + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    yield tmp
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
