"""The `sora-lite` command (`sora-lite generate "a red circle moving left" --out red.mp4`), and
what the scripts share with it: one-line errors, quiet libraries, the evaluation table."""

import argparse
import os
import sys
import time
import warnings

# What a user can cause (a bad argument, a missing or wrong checkpoint, a diverging run):
# reported in one line, exit code 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, FloatingPointError, OSError, RuntimeError)


def _generate(args):
    from sora_lite import Pipeline, enable_compilation_cache, video

    enable_compilation_cache()  # a second `generate` skips XLA compilation
    video.check_extension(args.out, args.frames)
    tic = time.time()
    pipe = Pipeline.from_pretrained(args.checkpoint)
    frames = pipe.generate([args.prompt], num_frames=args.frames, height=args.height, width=args.width,
                           seed=args.seed, steps=args.steps, guidance=args.guidance)[0]
    video.write(args.out, frames)
    print(f"wrote {args.out} ({frames.shape[0]} frames, {frames.shape[1]}x{frames.shape[2]}) "
          f"in {time.time() - tic:.1f}s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sora-lite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate a video (or, with --frames 1, an image) from a text prompt")
    g.add_argument("prompt")
    g.add_argument("--out", default="video.mp4", help="output .mp4 or .gif (.png for --frames 1)")
    g.add_argument("--frames", type=int, default=None, help="1 + 4k frames (default: the model's)")
    g.add_argument("--height", type=int, default=None, help="default: the model's")
    g.add_argument("--width", type=int, default=None, help="default: the model's")
    g.add_argument("--steps", type=int, default=None, help="Euler steps (default: the model's)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--checkpoint", default=None, help="training workdir or checkpoint dir (default: shipped model)")
    sub.add_parser("words", help="the words the shipped model's captions trained on")
    args = parser.parse_args(argv)
    if args.command == "words":
        print(_words())
        return 0
    quiet_libraries()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _generate(args)
        except USER_ERRORS as e:
            _show(caught)
            print(f"sora-lite: error: {e}", file=sys.stderr)
            return 2
    _show(caught)
    return 0


def _words() -> str:
    """The training vocabulary (captions.TRAIN), a line per attribute value."""
    from sora_lite.captions import TRAIN

    lines = []
    for attribute in ("color", "shape", "motion"):
        for value, words in TRAIN[attribute].items():
            words = [w[0] if isinstance(w, tuple) else w for w in words]  # motions: the "-ing" form
            lines.append(f"{attribute:<6} {value:<9} {', '.join(words)}")
    forms = (t.replace("{ing}", "{motion}").replace("{s}", "{motion}") for t in TRAIN["video"])
    lines.append("videos: " + " | ".join(dict.fromkeys(forms)))
    lines.append("images: " + " | ".join(TRAIN["image"]))
    return "\n".join(lines)


def quiet_libraries():
    """Orbax reports every checkpoint step at INFO and warns about read-only directories through absl."""
    from absl import logging

    logging.set_verbosity(logging.ERROR)


def _show(caught):
    """Our own warnings, one line each (library deprecation chatter is dropped)."""
    for w in caught:
        if "sora_lite" in w.filename or issubclass(w.category, UserWarning) and "sora_lite" in str(w.message):
            print(f"sora-lite: warning: {w.message}", file=sys.stderr)


def run_script(main):
    """Run a script's `main(argv)` after parsing its absl flags, with libraries quiet and a user
    error (a bad flag or config key included) as one line on stderr (`script.py: error: ...`)
    and exit code 2. (Not app.run: it would parse the flags again and trip over config_flags'
    override flags, and it lets a misspelt config key out as a traceback.)"""
    from absl import flags

    prog = os.path.basename(sys.argv[0])
    try:
        argv = flags.FLAGS(sys.argv)
    except (flags.Error, AttributeError, KeyError, TypeError, *USER_ERRORS) as e:
        text = " ".join(str(e).replace("\\n", " ").split())
        while len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":  # KeyError's repr quotes
            text = text[1:-1]
        kind = "no such config key" if isinstance(e, (AttributeError, KeyError)) else "bad flag"
        hint = " (every config key is in configs/base.py)" if "config" in text or kind != "bad flag" else ""
        print(f"{prog}: error: {kind}: {text.replace(chr(92) + chr(39), chr(39))}{hint}", file=sys.stderr)
        sys.exit(2)
    quiet_libraries()
    try:
        main(argv)
    except USER_ERRORS as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)


COLUMNS = ("accuracy", "color", "shape", "direction", "consistency")


def eval_table(results: dict) -> str:
    """{shape: {prompt set: accuracy dict}} as a table, a row per shape and set."""
    lines = [f"{'shape':<10} {'set':<10} {'n':>4} " + " ".join(f"{c:>11}" for c in COLUMNS)]
    for shape, sets in results.items():
        for name, r in sets.items():
            cells = " ".join(f"{'-':>11}" if r[c] is None else f"{r[c]:>10.1f}%" for c in COLUMNS)
            lines.append(f"{shape:<10} {name:<10} {r['n']:>4} {cells}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
