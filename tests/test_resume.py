"""A DiT run killed with SIGKILL mid-training and rerun with the same command resumes from
its newest complete checkpoint and logs what an uninterrupted run logs, each step once."""

import json
import os
import shutil
import signal
import subprocess
import time

import jax
import numpy as np

from sora_lite import train_dit

STEPS, EVERY, KILL_AT = 16, 4, 10


def _rows(workdir):
    """The complete JSON lines of workdir/metrics.jsonl (none if it does not exist yet)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f.read().split("\n")[:-1]]  # a line is written whole


def _tmp_leftovers(ckpt_dir):
    return sorted(n for n in os.listdir(ckpt_dir) if ".orbax-checkpoint-tmp" in n)


def _tail(path, n=3000):
    with open(path) as f:
        return f.read()[-n:]


def test_killed_run_resumes_and_matches_an_uninterrupted_run(tiny_run, data_dir, tmp_path, train_script):
    command, env = train_script
    latents = os.path.join(tiny_run["dit_dir"], "latents")  # the same autoencoder and data: reuse
    workdir = tmp_path / "killed"
    os.makedirs(workdir)
    shutil.copytree(latents, os.path.join(workdir, "latents"))
    argv = command(workdir, f"--config.train.autoencoder={tiny_run['ae_dir']}", f"--config.data.dir={data_dir}",
                   f"--config.train.steps={STEPS}", f"--config.train.checkpoint_every={EVERY}", "--config.train.log_every=1")
    log = tmp_path / "killed.log"

    with open(log, "w") as out:
        proc = subprocess.Popen(argv, env=env(1), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while not any(r["step"] >= KILL_AT for r in _rows(workdir)):
            assert proc.poll() is None, f"the run ended before step {KILL_AT}:\n{_tail(log)}"
            assert time.time() < deadline, f"no step {KILL_AT} after 300 s:\n{_tail(log)}"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _rows(workdir)[-1]["step"]
    assert KILL_AT <= killed_at < STEPS

    # A save cut short leaves `N.orbax-checkpoint-tmp-*`; if this kill left none, leave one as it would.
    ckpt = workdir / "checkpoints"
    if not _tmp_leftovers(ckpt):
        half = ckpt / f"{(killed_at // EVERY + 1) * EVERY}.orbax-checkpoint-tmp-1234567890"
        os.makedirs(half / "model")
        (half / "model" / "manifest.ocdbt").write_text("half written")
    assert _tmp_leftovers(ckpt)

    before = _rows(workdir)
    resumed_from = max(int(n) for n in os.listdir(ckpt) if n.isdigit())  # the newest complete checkpoint
    assert resumed_from % EVERY == 0 and 0 < resumed_from <= killed_at
    rerun = subprocess.run(argv, env=env(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    rows = _rows(workdir)
    # Each step once: the rows the killed run logged past its checkpoint were dropped and redone.
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert rows[:resumed_from] == before[:resumed_from]
    assert not _tmp_leftovers(ckpt)
    assert sorted(int(n) for n in os.listdir(ckpt) if n.isdigit()) == [8, 12, 16]  # keep_checkpoints = 3

    # The same run, uninterrupted, in this process on one device (the subprocesses had one).
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.train.steps, cfg.train.checkpoint_every, cfg.train.log_every = STEPS, EVERY, 1
    reference_dir = tmp_path / "uninterrupted"
    os.makedirs(reference_dir)
    shutil.copytree(latents, os.path.join(reference_dir, "latents"))
    train_dit.train(cfg, str(reference_dir), devices=jax.devices()[:1])
    reference = _rows(reference_dir)
    assert [r["step"] for r in reference] == list(range(1, STEPS + 1))

    for key in ("loss", "grad_norm"):  # and the resumed run logs what the uninterrupted one does
        np.testing.assert_allclose([r[key] for r in rows], [r[key] for r in reference], rtol=1e-6, err_msg=key)
