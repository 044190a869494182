"""Sampling speed: compile time, warm time per video, and a fresh `sora-lite generate` process.

    python scripts/bench_sample.py                      # the shipped default model
    python scripts/bench_sample.py --checkpoint runs/x --frames 5 --height 16 --width 16

In-process: the first `generate` call (tracing + XLA compilation + one run) minus a warm
call is the compile time; the warm time is the median over `--repeats` calls divided by
`--batch`. Fresh process: `sora-lite generate` run twice with the same new persistent
compilation cache (JAX_COMPILATION_CACHE_DIR in a temporary folder), so the first run starts
with it empty and the second finds what the first one stored: compiled executables, and the
request's saved program (programs.py), which spares it building the model. That pair runs
`--fresh` times, each with a new cache; the medians are reported.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PROMPTS = ["a red circle moving right", "a blue square moving up",
           "a yellow triangle moving right", "a green circle moving left"]


def in_process(args) -> dict:
    from sora_lite import Pipeline

    pipe = Pipeline.from_pretrained(args.checkpoint)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.batch)]
    size = dict(num_frames=args.frames, height=args.height, width=args.width)

    def timed(seed):
        tic = time.perf_counter()
        pipe.generate(prompts, seed=seed, **size)  # returns numpy: the work is done
        return time.perf_counter() - tic

    first = timed(0)
    warm = [timed(1 + i) for i in range(args.repeats)]
    median = statistics.median(warm)
    return {"first_call_s": first, "warm_calls_s": warm, "compile_s": first - median,
            "warm_per_video_s": median / args.batch}


def fresh_process(args) -> dict:
    """Median wall times of `--fresh` pairs of `sora-lite generate` runs, each pair sharing one
    compilation cache, empty at first."""
    exe = shutil.which("sora-lite")
    cmd = [exe] if exe else [sys.executable, "-m", "sora_lite.cli"]
    cold, warm = [], []
    for _ in range(args.fresh):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.path.join(home, "jax_cache"))
            out = os.path.join(home, "bench.gif")
            argv = cmd + ["generate", PROMPTS[0], "--out", out, "--frames", str(args.frames),
                          "--height", str(args.height), "--width", str(args.width)]
            if args.checkpoint:
                argv += ["--checkpoint", args.checkpoint]
            for runs in (cold, warm):
                tic = time.perf_counter()
                proc = subprocess.run(argv, env=env, capture_output=True, text=True)
                runs.append(time.perf_counter() - tic)
                if proc.returncode:
                    raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return {"cli_cold_cache_s": statistics.median(cold), "cli_warm_cache_s": statistics.median(warm),
            "cli_cold_cache_runs_s": cold, "cli_warm_cache_runs_s": warm}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="training workdir or checkpoint dir (default: shipped model)")
    p.add_argument("--frames", type=int, default=17)
    p.add_argument("--height", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--fresh", type=int, default=3, help="pairs of fresh processes (empty cache, then filled)")
    p.add_argument("--out", default="bench_sample.json")
    args = p.parse_args(argv)
    for name in ("batch", "repeats", "fresh"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1; got {getattr(args, name)}")

    # The fresh processes go first, before this one starts a JAX backend: on a GPU this
    # process would otherwise hold most of the memory they need.
    result = {"checkpoint": args.checkpoint or "default", "frames": args.frames, "height": args.height,
              "width": args.width, "batch": args.batch, "repeats": args.repeats, "fresh": args.fresh}
    result.update(fresh_process(args))

    from absl import logging

    logging.set_verbosity(logging.ERROR)  # orbax logs every restore step
    import jax

    result.update(backend=jax.default_backend(), device=str(jax.devices()[0]))
    result.update(in_process(args))

    print(f"sampling {args.frames}x{args.height}x{args.width}, batch {args.batch}, on {result['device']}")
    for label, key in [("compile (first call - warm call)", "compile_s"),
                       ("warm, per video (median)", "warm_per_video_s"),
                       (f"sora-lite generate, cold cache ({args.fresh})", "cli_cold_cache_s"),
                       (f"sora-lite generate, warm cache ({args.fresh})", "cli_warm_cache_s")]:
        print(f"  {label:34s} {result[key]:8.2f} s")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
