"""Two processes on localhost (jax.distributed, 2 fake CPU devices each, gloo collectives)
train the tiny DiT on a data=2 x fsdp=2 mesh and log what one process with 4 devices logs;
when one of them is killed, the other stops at once in one line, and both rerun resume exactly."""

import json
import os
import shutil
import socket
import subprocess
import time

import jax
import numpy as np
from flax import nnx

from sora_lite import autoencoder, checkpoint, train_dit
from sora_lite.checkpoint import abstract_state
from sora_lite.dit import build_dit

STEPS, EVERY = 8, 2


def _rows(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv, env, prefix):
    """The two processes of `argv`, each logging to its own file (no latents cache: each encodes the data)."""
    procs, logs = [], [prefix.with_name(f"{prefix.name}_process_{i}.log") for i in range(2)]
    for i, log in enumerate(logs):
        with open(log, "w") as out:
            procs.append(subprocess.Popen(argv + [f"--process_id={i}"], env=env, stdout=out, stderr=subprocess.STDOUT))
    return procs, logs


def _stop(procs):
    for p in procs:
        p.kill()
        p.wait()


def test_two_processes_log_the_losses_of_one_process_on_the_same_mesh(tiny_run, data_dir, tmp_path, train_script):
    command, env = train_script
    workdir = tmp_path / "two_processes"
    mesh_flags = ["--config.mesh.data=2", "--config.mesh.fsdp=2"]
    argv = lambda workdir: command(  # noqa: E731 - each launch its own coordinator port
        workdir, f"--config.train.autoencoder={tiny_run['ae_dir']}", f"--config.data.dir={data_dir}",
        f"--config.train.steps={STEPS}", f"--config.train.checkpoint_every={EVERY}", "--config.train.log_every=1",
        *mesh_flags, f"--coordinator=127.0.0.1:{_free_port()}", "--num_processes=2")
    procs, logs = _start(argv(workdir), env(2), tmp_path / "run")
    try:
        for p in procs:
            p.wait(timeout=300)
    finally:
        _stop(procs)
    for p, log in zip(procs, logs):
        assert p.returncode == 0, f"{log.name}:\n{log.read_text()[-3000:]}"

    rows = _rows(workdir)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))  # process 0 alone writes the log
    assert not [n for n in os.listdir(workdir / "latents") if ".tmp" in n]  # both cache writes renamed in place
    caches = sorted(os.listdir(workdir / "latents"))
    assert caches == sorted(os.listdir(os.path.join(tiny_run["dit_dir"], "latents")))  # the same keys
    for name in caches:
        for key, value in np.load(workdir / "latents" / name).items():
            np.testing.assert_allclose(value, np.load(os.path.join(tiny_run["dit_dir"], "latents", name))[key],
                                       atol=1e-5, err_msg=f"{name} {key}")

    # One process, 4 of this session's 8 devices, the same mesh.
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.train.steps, cfg.train.checkpoint_every, cfg.train.log_every = STEPS, EVERY, 1
    cfg.mesh.update(data=2, fsdp=2)
    reference_dir = tmp_path / "one_process"
    os.makedirs(reference_dir)
    shutil.copytree(os.path.join(tiny_run["dit_dir"], "latents"), os.path.join(reference_dir, "latents"))
    train_dit.train(cfg, str(reference_dir), devices=jax.devices()[:4])
    reference = _rows(reference_dir)
    for key in ("loss", "grad_norm"):
        np.testing.assert_allclose([r[key] for r in rows], [r[key] for r in reference], rtol=1e-4, err_msg=key)

    # Both processes wrote their shards of the final checkpoint: it reads back whole, onto one device.
    one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=one), {
        "dit": abstract_state(nnx.eval_shape(lambda: build_dit(cfg))),
        "ae": abstract_state(nnx.eval_shape(lambda: autoencoder.build_autoencoder(cfg)))})
    (step, two, _), (_, single, _) = (checkpoint.restore(str(d / "checkpoints"), target)
                                      for d in (workdir, reference_dir))
    assert step == STEPS
    for a, b in zip(jax.tree.leaves(two), jax.tree.leaves(single), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)

    # Kill process 1 mid-run: process 0 stops at once, in one line that names it; both rerun resume exactly.
    killed = tmp_path / "killed"
    procs, logs = _start(argv(killed), env(2), tmp_path / "killed")
    try:
        deadline = time.time() + 300
        while not (os.path.exists(killed / "metrics.jsonl") and len(_rows(killed)) >= STEPS // 2 + 1):
            assert procs[0].poll() is None and time.time() < deadline, logs[0].read_text()[-3000:]
            time.sleep(0.005)
        procs[1].kill()
        tic = time.time()
        procs[0].wait(timeout=60)
        seconds = time.time() - tic
    finally:
        _stop(procs)
    last = logs[0].read_text().strip().splitlines()[-1]
    assert procs[0].returncode == 2 and seconds < 30, logs[0].read_text()[-3000:]
    assert last.startswith("train.py: error: process 0 of 2 lost process 1 (") and last.endswith(
        "rerun every process with the same command to resume from the newest checkpoint"), last
    resumed_from = max(int(n) for n in os.listdir(killed / "checkpoints") if n.isdigit())
    assert resumed_from < STEPS

    procs, logs = _start(argv(killed), env(2), tmp_path / "rerun")
    try:
        for p in procs:
            p.wait(timeout=300)
    finally:
        _stop(procs)
    assert [p.returncode for p in procs] == [0, 0], logs[0].read_text()[-3000:]
    assert f"resumed {killed} at step {resumed_from}" in logs[0].read_text()
    again = _rows(killed)
    assert [r["step"] for r in again] == list(range(1, STEPS + 1))
    for key in ("loss", "grad_norm"):
        np.testing.assert_allclose([r[key] for r in again], [r[key] for r in rows], rtol=1e-6, err_msg=key)
