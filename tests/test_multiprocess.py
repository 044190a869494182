"""Two processes on localhost (jax.distributed, 2 fake CPU devices each, gloo collectives)
train the tiny DiT on a data=2 x fsdp=2 mesh: killing either mid-run stops the other in one line,
and the rerun ends where the tiny run (one process, one device) ended, with the same losses."""

import json
import os
import socket
import subprocess
import time

import jax
import numpy as np
import pytest
from flax import nnx

from sora_lite import autoencoder, checkpoint, coordination
from sora_lite.checkpoint import abstract_state, complete_steps
from sora_lite.dit import build_dit

STEPS = 6  # the tiny run's: the same learning-rate schedule
PEER_TIMEOUT = 5  # seconds


def _rows(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_killed_process_stops_the_other_in_one_line_and_the_rerun_ends_as_one_process_does(
        tiny_run, data_dir, tmp_path, train_script):
    command, env = train_script
    workdir = tmp_path / "two_processes"
    mesh_flags = ["--config.mesh.data=2", "--config.mesh.fsdp=2"]
    argv = command(workdir, f"--config.train.autoencoder={tiny_run['ae_dir']}", f"--config.data.dir={data_dir}",
                   f"--config.train.steps={STEPS}", "--config.train.checkpoint_every=1", *mesh_flags,
                   f"--peer_timeout={PEER_TIMEOUT}", "--num_processes=2")

    def launch(name, port):
        logs = [tmp_path / f"{name}_{i}.log" for i in range(2)]
        procs = []
        for i, log in enumerate(logs):
            with open(log, "w") as out:  # no latents cache: each process encodes the data itself
                procs.append(subprocess.Popen(argv + ["--coordinator", f"127.0.0.1:{port}", f"--process_id={i}"],
                                              env=env(2), stdout=out, stderr=subprocess.STDOUT))
        return procs, logs

    # Kill process 1 once a step is saved (mid-run, most likely at a save's barrier), rerun both,
    # then kill process 0 (the one that started the coordination service) once a later step is.
    saved = 0
    for name, killed in (("kill_1", 1), ("kill_0", 0)):
        survivor = 1 - killed
        procs, logs = launch(name, _free_port())
        try:
            while not [s for s in complete_steps(str(workdir / "checkpoints")) if s > saved]:
                assert procs[0].poll() is None and procs[1].poll() is None, logs[survivor].read_text()[-3000:]
                time.sleep(0.05)
            procs[killed].kill()
            t0 = time.time()
            procs[survivor].wait(timeout=PEER_TIMEOUT + 60)
            seconds = time.time() - t0
        finally:
            for p in procs:
                p.kill()
                p.wait()
        out = logs[survivor].read_text()
        assert procs[survivor].returncode == 2, out[-3000:]
        line = f"train.py: error: process {survivor} of 2 lost process {killed}"
        assert out.strip().splitlines()[-1].startswith(line), out[-3000:]
        assert seconds < PEER_TIMEOUT + 20, seconds
        print(f"process {survivor} stopped {seconds:.1f} s after process {killed} was killed")
        saved = max(complete_steps(str(workdir / "checkpoints")))
        assert saved < STEPS

    procs, logs = launch("rerun", _free_port())
    try:
        for p in procs:
            p.wait(timeout=300)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, f"{log.name}:\n{log.read_text()[-3000:]}"
    assert f"resumed {workdir} at step {saved} of {STEPS}" in logs[0].read_text()

    rows = _rows(workdir)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))  # process 0 alone writes the log
    assert not [n for n in os.listdir(workdir / "latents") if ".tmp" in n]  # both cache writes renamed in place
    caches = sorted(os.listdir(workdir / "latents"))
    assert caches == sorted(os.listdir(os.path.join(tiny_run["dit_dir"], "latents")))  # the same keys
    for name in caches:
        for key, value in np.load(workdir / "latents" / name).items():
            np.testing.assert_allclose(value, np.load(os.path.join(tiny_run["dit_dir"], "latents", name))[key],
                                       atol=1e-5, err_msg=f"{name} {key}")

    # The losses and weights of one process on one device (meshes change no loss: test_sharding).
    reference = _rows(tiny_run["dit_dir"])
    for key in ("loss", "grad_norm"):
        np.testing.assert_allclose([r[key] for r in rows], [r[key] for r in reference], rtol=1e-4, err_msg=key)

    # Both processes wrote their shards of the final checkpoint: it reads back whole, onto one device.
    cfg = tiny_run["cfg"]
    one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=one), {
        "dit": abstract_state(nnx.eval_shape(lambda: build_dit(cfg))),
        "ae": abstract_state(nnx.eval_shape(lambda: autoencoder.build_autoencoder(cfg)))})
    (step, two, _), (_, single, _) = (checkpoint.restore(os.path.join(d, "checkpoints"), target)
                                      for d in (str(workdir), tiny_run["dit_dir"]))
    assert step == STEPS
    for a, b in zip(jax.tree.leaves(two), jax.tree.leaves(single), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_the_service_stops_when_process_0_is_done_and_serves_on_when_it_died(capsys):
    port = _free_port()
    coordination.start(port, 2, 1)
    helper = coordination._HELPER
    helper.stdin.write("done\n")  # the end of a run: the service stops at once
    helper.stdin.close()
    assert helper.wait(timeout=10) == 0 and not coordination._served(port)

    coordination.start(port, 2, 1)
    died = coordination._HELPER
    died.stdin.close()  # process 0 died: the others' watchers need the service a while longer
    time.sleep(3)
    assert died.poll() is None and coordination._served(port)
    t0 = time.time()
    coordination.start(port, 2, 1)  # a rerun on the same port waits for the old service to stop
    assert died.poll() == 0 and time.time() - t0 > 3
    assert f"port {port} is in use" in capsys.readouterr().err
    coordination._HELPER.stdin.write("done\n")
    coordination._HELPER.stdin.close()
    assert coordination._HELPER.wait(timeout=10) == 0


def test_a_port_another_program_holds_is_one_line_naming_the_fix(monkeypatch):
    monkeypatch.setattr(coordination, "_grace", lambda peer_timeout: 0)  # wait 5 s, not peer_timeout + 15
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"^port {port} is in use by another program: pick another "
                                               "--coordinator port$"):
            coordination.start(port, 2, 1)
