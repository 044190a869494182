"""The `sora-lite` command: `sora-lite generate "a red circle moving left" --out red.mp4`."""

import argparse
import os
import sys
import time


def _generate(args):
    import jax

    # Compiled programs persist across processes: a second `generate` skips XLA compilation.
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/sora_lite/jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    from sora_lite import video
    from sora_lite.pipeline import Pipeline

    ext = os.path.splitext(args.out)[1].lower()
    if ext not in (".mp4", ".gif"):
        raise ValueError(f"--out must end in .mp4 or .gif; got {args.out}")
    tic = time.time()
    pipe = Pipeline.from_pretrained(args.checkpoint)
    frames = pipe.generate([args.prompt], num_frames=args.frames, height=args.height, width=args.width,
                           seed=args.seed, steps=args.steps, guidance=args.guidance)[0]
    video.write(args.out, frames)
    print(f"wrote {args.out} ({frames.shape[0]} frames, {frames.shape[1]}x{frames.shape[2]}) "
          f"in {time.time() - tic:.1f}s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sora-lite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate a video from a text prompt")
    g.add_argument("prompt")
    g.add_argument("--out", default="video.mp4", help="output .mp4 or .gif")
    g.add_argument("--frames", type=int, default=17, help="1 + 4k frames")
    g.add_argument("--height", type=int, default=32)
    g.add_argument("--width", type=int, default=32)
    g.add_argument("--steps", type=int, default=None, help="Euler steps (default: the model's)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--checkpoint", default=None, help="training workdir or checkpoint dir (default: shipped model)")
    args = parser.parse_args(argv)

    import warnings

    from absl import logging

    logging.set_verbosity(logging.ERROR)  # orbax reports every restore step at INFO
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _generate(args)
        except (ValueError, FloatingPointError, OSError, RuntimeError) as e:
            _show(caught)
            print(f"sora-lite: error: {e}", file=sys.stderr)
            return 2
    _show(caught)
    return 0


def _show(caught):
    """Our own warnings, one line each (library deprecation chatter is dropped)."""
    for w in caught:
        if "sora_lite" in w.filename or issubclass(w.category, UserWarning) and "sora_lite" in str(w.message):
            print(f"sora-lite: warning: {w.message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
