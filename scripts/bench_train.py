"""Training speed of the DiT step: step time, tokens/s and MFU, written as JSON.

    python scripts/bench_train.py --config configs/base.py --config.dit.size=B \
        --config.dit.precision=bfloat16 --frames 17 --height 256 --width 256 --batch 8 \
        --out benchmarks/bench_train_B_5k.json

The step is train_dit.py's own on the mesh of `cfg.mesh` (default: data parallel over all
devices), fed random latents of the video size; self-attention runs cuDNN's flash kernel in
bf16 on NVIDIA GPUs, XLA's elsewhere (the JSON's "attention"). MFU = model FLOPs per step (3x the forward's
matrix products, benchmark.model_flops_per_step) / step time / (devices x the device's bf16 peak);
on devices without a known peak (CPUs) pass --peak_tflops, or MFU is left out.
"""

import datetime
import json

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", "configs/base.py", "Config file.")
flags.DEFINE_integer("frames", 17, "Video frames.")
flags.DEFINE_integer("height", 256, "Video height.")
flags.DEFINE_integer("width", 256, "Video width.")
flags.DEFINE_integer("batch", 8, "Global batch (videos per step).")
flags.DEFINE_integer("steps", 10, "Timed steps (after 2 untimed warm-up steps).")
flags.DEFINE_float("peak_tflops", None, "Peak TFLOP/s per device for MFU, if the device is not in the table.")
flags.DEFINE_string("out", None, "Write the result as JSON here.")


def main(_):
    f = flags.FLAGS
    import jax

    from sora_lite import benchmark, sharding, sizing

    cfg = f.config
    kernel = sizing.attention_kernel(cfg)
    mesh = sharding.make_mesh(cfg.mesh)
    step = benchmark.Step(cfg, mesh, f.frames, f.height, f.width, f.batch)
    result = benchmark.speed(step, f.steps)
    if f.peak_tflops:
        result["peak_tflops_per_device"] = f.peak_tflops
        result["mfu"] = result["achieved_tflops_per_device"] / f.peak_tflops
    row = {"date": datetime.date.today().isoformat(), "device": jax.devices()[0].device_kind,
           "devices": mesh.size, "jax": jax.__version__, "dit_size": cfg.dit.size, "precision": cfg.dit.precision,
           "remat": cfg.dit.remat, "attention": kernel, "mesh": dict(mesh.shape), "batch": f.batch,
           "frames": f.frames, "height": f.height, "width": f.width, "tokens_per_video": step.tokens, **result}
    mfu = "n/a (no peak for this device: --peak_tflops)" if row["mfu"] is None else f"{100 * row['mfu']:.1f}%"
    print(f"{row['device']} x{mesh.size} DiT-{cfg.dit.size} {cfg.dit.precision} remat={cfg.dit.remat} {kernel} attention, "
          f"batch {f.batch} x {step.tokens} tokens: step {row['step_time_s'] * 1e3:.1f} ms, {row['tokens_per_s']:.0f} tokens/s, "
          f"{row['achieved_tflops_per_device']:.2f} TFLOP/s per device, MFU {mfu}")
    if f.out:
        with open(f.out, "w") as out:
            json.dump(row, out, indent=2)


if __name__ == "__main__":
    app.run(main)
