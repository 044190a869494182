"""Tests for sora_lite.benchmark on the tiny DiT and 8 fake CPU devices."""

import math
import os
import subprocess
import sys

import jax
import pytest
from ml_collections import ConfigDict

from sora_lite import benchmark, dit, sharding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _step(mesh_sizes, frames=5, height=32, width=32, remat="none"):
    from configs import tiny

    cfg = tiny.get_config()
    cfg.dit.remat = remat
    sizes = dict(zip(sharding.AXES, mesh_sizes))
    mesh = sharding.make_mesh(ConfigDict(sizes), jax.devices()[:math.prod(mesh_sizes)])
    return benchmark.Step(cfg, mesh, frames, height, width, batch=sharding.batch_shards(mesh))


def test_model_flops_count_each_layer_at_the_rows_it_multiplies():
    step = _step((1, 1, 1, 1))
    s, L = dit.SIZES["tiny"], step.cfg.text.max_len
    n = step.tokens
    assert n == 2 * 4 * 4  # 5 frames -> 2 latent frames; 32 / 4 / 2 = 4
    d, m, patch_dim = s.width, int(s.width * s.mlp_ratio), 4 * 1 * 2 * 2
    block = n * (d * d + d * 2 * d + d * d) + 2 * n * n * d  # self-attention: q, kv, out; QK^T and PV
    block += n * (d * d + d * d) + L * d * 2 * d + 2 * n * L * d  # cross-attention: kv on the text tokens
    block += n * (d * m + m * d) + d * 6 * d  # MLP; adaLN, one row a video
    outside = n * patch_dim * d + n * d * patch_dim  # patch embedding and output
    outside += 256 * d + d * d + dit.TEXT_DIM * d + d * 2 * d  # timestep MLP, pooled text, final adaLN: a row a video
    outside += L * dit.TEXT_DIM * d  # the text projection, on the text tokens
    canvas = n * 6 * dit.CANVAS_OCTAVES * d  # the canvas position embedding: the same for every video, once a step
    expected = 3 * 2 * ((s.depth * block + outside) * step.batch + canvas)  # forward 2 FLOPs a multiply-add; backward 2x
    assert step.flops == pytest.approx(expected)


def test_fsdp_shards_parameters_and_optimizer_state():
    one, fsdp = benchmark.memory(_step((1, 1, 1, 1))), benchmark.memory(_step((1, 8, 1, 1)))
    assert one["params_bytes"] > 0 and one["optimizer_bytes"] > one["params_bytes"] / 2 * 1.9  # Adam: mu and nu
    for key in ("params_bytes", "optimizer_bytes"):
        assert one[key] / 8 <= fsdp[key] <= 1.1 * one[key] / 8  # a few small vectors stay whole
    assert one["activation_bytes"] > 0


def test_speed_reports_positive_rates_and_no_mfu_on_cpu():
    result = benchmark.speed(_step((2, 1, 1, 1)), steps=1, warmup=1)
    assert result["step_time_s"] > 0 and result["tokens_per_s"] > 0 and result["flops_per_step"] > 0
    assert result["mfu"] is None and benchmark.peak_flops(jax.devices()[0]) is None


@pytest.mark.parametrize("case", ["cpu:0x32x32:4", "cpu:17x32:4", "cpu:17x32x32"])
def test_bench_peer_names_a_bad_case_in_one_line(case):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_peer.py"), "--cases", case],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (f"bench_peer.py: error: --cases entry {case!r} is not "
                                                   "SIZE:FRAMESxHEIGHTxWIDTH:BATCH")
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("flag", ["--fresh", "--repeats", "--batch"])
def test_bench_sample_refuses_a_count_below_one_in_one_line(flag):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_sample.py"), flag, "0"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == f"bench_sample.py: error: {flag} must be at least 1; got 0"
    assert "Traceback" not in run.stderr
