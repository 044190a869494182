"""Side by side with the PyTorch peer: sora_lite's DiT training step and forward pass against
diffusers' WanTransformer3DModel (3D RoPE, cross-attention to text, flow matching) of the same
width, depth, heads, MLP, latent channels, tokens and batch, in one run, with the ratios.

    python scripts/bench_peer.py --peer_python peer/bin/python --out benchmarks/bench_peer.json

The peer runs in its own environment, from scripts/peer_wan.py (sora_lite never imports torch):
    python -m venv peer && peer/bin/pip install torch==2.13.0 diffusers
Without --peer_python only sora_lite's side is timed. Both sides get the same threads (the
CPU's cores, one device); sora_lite's step is train_dit.py's own (benchmark.Step), which
also updates the EMA weights the peer's step does not keep.
"""

import argparse
import datetime
import json
import os
import subprocess

from sora_lite.shapes import parse_shape

# (DiT size, video frames x height x width, batch): the shipped size, 80 tokens x 32; DiT-S, 320 x 8.
CASES = "cpu:17x32x32:32,S:17x64x64:8"


def ours(size: str, frames: int, height: int, width: int, batch: int, steps: int) -> dict:
    import jax

    from configs import base
    from sora_lite import autoencoder, benchmark, sharding
    from sora_lite.dit import SIZES

    cfg = base.get_config()
    cfg.dit.size = size
    step = benchmark.Step(cfg, sharding.make_mesh(cfg.mesh, jax.devices()[:1]), frames, height, width, batch)
    s = SIZES[size]
    spec = {"depth": s.depth, "width": s.width, "heads": s.heads, "mlp_ratio": s.mlp_ratio,
            "channels": cfg.ae.latent_channels, "latent": list(autoencoder.latent_shape(cfg.ae, frames, height, width)[:3]),
            "batch": batch, "text_len": cfg.text.max_len, "text_dim": 384, "steps": steps, "threads": os.cpu_count()}
    return spec, {"train_step_s": benchmark.speed(step, steps)["step_time_s"],
                  **benchmark.forward_speed(step, steps), "tokens": step.tokens}


def peer(python: str, spec: dict) -> dict:
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_wan.py")
    run = subprocess.run([python, script, json.dumps(spec)], capture_output=True, text=True)
    if run.returncode:
        lines = run.stderr.strip().splitlines()
        raise RuntimeError(f"the peer failed ({lines[-1] if lines else 'no output'}); is {python} an environment "
                           "with torch and diffusers? (see this script's docstring)")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=CASES, help="SIZE:FRAMESxHEIGHTxWIDTH:BATCH, comma-separated")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after 2 untimed warm-up steps)")
    parser.add_argument("--peer_python", default=None, help="Python of an environment with torch and diffusers")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    rows = []
    for case in args.cases.split(","):
        try:
            size, shape, batch = case.split(":")
            frames, height, width = parse_shape(shape)
            batch = int(batch)
        except ValueError:
            parser.exit(2, f"bench_peer.py: error: --cases entry {case!r} is not SIZE:FRAMESxHEIGHTxWIDTH:BATCH\n")
        spec, mine = ours(size, frames, height, width, batch, args.steps)
        row = {"size": size, "shape": shape, "batch": batch, "tokens": mine.pop("tokens"), "sora_lite": mine}
        line = (f"DiT-{size} {row['tokens']} tokens x {batch}: train step {mine['train_step_s'] * 1e3:.0f} ms, "
                f"forward {mine['forward_s'] * 1e3:.0f} ms")
        if args.peer_python:
            theirs = row["peer"] = peer(args.peer_python, spec)
            row["speedup"] = {k: theirs[k] / mine[k] for k in ("train_step_s", "forward_s")}
            line += (f" | peer (diffusers Wan, torch {theirs['torch']}, {theirs['threads']} threads): train step "
                     f"{theirs['train_step_s'] * 1e3:.0f} ms, forward {theirs['forward_s'] * 1e3:.0f} ms | "
                     f"sora_lite {row['speedup']['train_step_s']:.2f}x, {row['speedup']['forward_s']:.2f}x")
        print(line, flush=True)
        rows.append(row)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"date": datetime.date.today().isoformat(), "cpus": os.cpu_count(), "rows": rows}, f, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
