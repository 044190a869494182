"""Faults mid-run: Ctrl-C, a save that fails, sampling while training saves. Each runs the
training script on a copy of the tiny run (so it resumes at step 6) and checks that nothing
complete is lost. (A SIGKILL and its exact resume: test_resume.py; a damaged data file:
test_data.py; a lost process of a two-process run: test_multiprocess.py.)"""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings

import jax
import numpy as np
from flax import nnx

from sora_lite import Pipeline, autoencoder, captions, checkpoint, train_dit
from sora_lite.dit import build_dit
from sora_lite.text import TextEncoder

START = 6  # the tiny run's last step


def _copy_run(tiny_run, tmp_path, train_script, *flags):
    """(argv, workdir): the training script continuing a copy of the tiny run with `flags`."""
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run["dit_dir"], workdir)
    command, _ = train_script
    cfg = tiny_run["cfg"]
    return command(workdir, f"--config.train.autoencoder={tiny_run['ae_dir']}", f"--config.data.dir={cfg.data.dir}",
                   *flags), workdir


def _steps(workdir) -> list[int]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line)["step"] for line in f.read().split("\n")[:-1]]


def _target(cfg):
    return {"dit": checkpoint.abstract_state(nnx.eval_shape(lambda: build_dit(cfg))),
            "ae": checkpoint.abstract_state(nnx.eval_shape(lambda: autoencoder.build_autoencoder(cfg)))}


def test_ctrl_c_saves_the_current_step_says_which_and_the_rerun_resumes_there(tiny_run, tmp_path, train_script):
    argv, workdir = _copy_run(tiny_run, tmp_path, train_script, "--config.train.steps=400",
                              "--config.train.checkpoint_every=1000", "--config.train.log_every=1")
    proc = subprocess.Popen(argv, env=train_script[1](1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while max(_steps(workdir)) < START + 3:  # the loop is running, between two checkpoints
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    stopped = int(last.split("stopped at step ")[1].split()[0])
    assert last == (f"train.py: stopped at step {stopped} of 400: saved checkpoint step {stopped} in "
                    f"{workdir / 'checkpoints'}; rerun the same command to resume"), err[-3000:]
    assert START + 3 <= stopped < 400 and checkpoint.complete_steps(str(workdir / "checkpoints"))[-1] == stopped

    rerun = subprocess.run([*argv[:-3], f"--config.train.steps={stopped + 2}", *argv[-2:]], env=train_script[1](1),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resumed {workdir} at step {stopped} of {stopped + 2}" in rerun.stdout + rerun.stderr
    assert _steps(workdir) == list(range(1, stopped + 3))  # every step once: nothing lost, nothing redone twice


def _small_files():
    """In the child: writing a file past 64 KiB fails (EFBIG), as a full disk fails a write."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))


def test_a_failed_save_stops_with_one_line_and_leaves_the_previous_checkpoint(tiny_run, tmp_path, train_script):
    argv, workdir = _copy_run(tiny_run, tmp_path, train_script, f"--config.train.steps={START + 3}")
    cfg = tiny_run["cfg"]  # the caption cache is written, so that the save is the first write to fail
    train_dit.caption_table(TextEncoder(cfg.text.max_len), captions.caption_rows(cfg.data), cfg.data.dir)
    ckpt = str(workdir / "checkpoints")
    before = {n: sorted(os.listdir(os.path.join(ckpt, n))) for n in os.listdir(ckpt) if n.isdigit()}
    run = subprocess.run(argv, env=train_script[1](1), capture_output=True, text=True, timeout=300,
                         preexec_fn=_small_files)
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "Error writing" not in run.stderr, run.stderr[-3000:]
    assert run.stderr.strip().splitlines()[-1] == (
        f"train.py: error: saving a checkpoint in {ckpt} failed (File too large): training stopped and the newest "
        f"complete checkpoint, step {START}, is intact; free space or fix the directory, then rerun the same "
        "command to resume"), run.stderr[-3000:]
    assert checkpoint.complete_steps(ckpt) == sorted(map(int, before)) and {
        n: sorted(os.listdir(os.path.join(ckpt, n))) for n in before} == before
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback past an unreadable step
        step, _, _ = checkpoint.restore(ckpt, _target(tiny_run["cfg"]))
    assert step == START

    rerun = subprocess.run(argv, env=train_script[1](1), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert checkpoint.complete_steps(ckpt)[-1] == START + 3


def test_sampling_while_training_saves_reads_the_newest_complete_step(tiny_run, tmp_path, train_script):
    end = START + 16
    argv, workdir = _copy_run(tiny_run, tmp_path, train_script, f"--config.train.steps={end}",
                              "--config.train.checkpoint_every=1", "--config.keep_checkpoints=100")
    ckpt = str(workdir / "checkpoints")
    target = _target(tiny_run["cfg"])
    proc = subprocess.Popen(argv, env=train_script[1](1), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    read = []
    try:
        while proc.poll() is None:
            newest = checkpoint.complete_steps(ckpt)[-1]
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a half-written step would be skipped with a warning
                step, model, _ = checkpoint.restore(ckpt, target)
            assert step >= newest and all(np.isfinite(x).all() for x in jax.tree.leaves(model))
            read.append(step)
    finally:
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert len(set(read)) >= 3 and max(read) > START, read  # the reads overlapped the saves
    video = Pipeline.from_pretrained(str(workdir)).generate(["a red circle moving left"], 5, 16, 16, steps=2)
    assert video.shape == (1, 5, 16, 16, 3)


def test_a_cache_that_cannot_be_written_is_one_line_naming_it_and_leaves_no_part(tmp_path):
    path = str(tmp_path / "latents" / "x.npz")
    code = ("import numpy as np, sys; from sora_lite import training\n"
            "try: training.cached(sys.argv[1], lambda: {'x': np.zeros(1 << 16, np.float32)})\n"
            "except OSError as e: print(e)")
    run = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120,
                         preexec_fn=_small_files)
    assert run.stdout.startswith(f"writing {path} failed (File too large); free space"), run.stdout + run.stderr
    assert os.listdir(tmp_path / "latents") == []
