"""The `sora-lite` command (`sora-lite generate "a red circle moving left" --out red.mp4`; frames
as prompts: `animate`, `extend`, `connect`, `interpolate`, `edit`, `story`), and what the
scripts share with it: one-line errors, quiet libraries, the evaluation table."""

import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np

from sora_lite import validate

# What a user can cause (a bad argument, a missing or wrong checkpoint, a diverging run):
# reported in one line, exit code 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, validate.ArgumentTypeError, FloatingPointError, OSError, RuntimeError)


def _run(args):
    """Run the command on its inputs and write the result (`words`: print the vocabulary)."""
    if args.command == "words":
        print(_words(args.checkpoint))
        return
    from sora_lite import enable_compilation_cache, programs, video

    enable_compilation_cache()  # a second run skips XLA compilation
    video.check_extension(args.out, args.frames if args.command == "generate" else None)
    tic = time.time()
    common = dict(height=args.height, width=args.width, seed=args.seed, steps=args.steps, guidance=args.guidance)
    if args.command == "generate":  # a saved program: a second run builds no model
        out, read = programs.generate(args.checkpoint, args.prompt, num_frames=args.frames, **common)
        if read != args.prompt:
            print(f"read as: {read}")
    else:
        out = _frames_as_prompts(args, common)
    video.write(args.out, out[0])
    print(f"wrote {args.out} ({out.shape[1]} frames, {out.shape[2]}x{out.shape[3]}) in {time.time() - tic:.1f}s")


def _frames_as_prompts(args, common) -> np.ndarray:
    """The commands that take frames: the Pipeline's method of each on the files given."""
    from sora_lite import Pipeline, video

    read = lambda path: video.read(path)[None]  # noqa: E731 - [1, T, H, W, 3]
    inputs = {name: read(getattr(args, name)) for name in ("image", "video", "first", "last") if name in args}
    pipe = Pipeline.from_pretrained(args.checkpoint)
    frames = {} if args.frames is None else {"num_frames": args.frames}
    if args.command == "animate":
        return pipe.image_to_video([args.prompt], inputs["image"][:, 0], **frames, **common)
    if args.command == "extend":
        return pipe.extend([args.prompt], inputs["video"], backward=args.backward, **frames, **common)
    if args.command == "connect":
        first, last = (x[:, 0] if x.shape[1] == 1 else x for x in (inputs["first"], inputs["last"]))
        return pipe.connect([args.prompt], first, last, **frames, **common)
    if args.command == "interpolate":
        return pipe.interpolate([args.prompt], np.concatenate([read(f)[:, :1] for f in args.keyframes], 1),
                                **frames, **common)
    if args.command == "edit":
        return pipe.edit([args.prompt], inputs["video"], strength=args.strength, **common)
    # story: the one command left
    return pipe.story(args.prompts, **({} if args.frames is None else {"frames_per_scene": args.frames}), **common)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sora-lite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    media = "PNG, JPEG, GIF or MP4"
    commands = {
        "generate": ("generate a video (or, with --frames 1, an image) from a text prompt",
                     "1 + 4k frames (default: the model's)", [("prompt", {})]),
        "animate": ("animate an image: it is the video's first frame", "1 + 4k frames (default 17)",
                    [("image", {"help": f"{media} (its first frame)"}), ("prompt", {})]),
        "extend": ("continue a video forward (or, with --backward, backward) in time",
                   "1 + 4k frames of the result, the given included (default 33)",
                   [("video", {"help": media}), ("prompt", {})]),
        "connect": ("a video from A to B: A's frames open it, B's close it", "1 + 4k frames (default 33)",
                    [("first", {"metavar": "A", "help": f"{media}: an image or a clip"}),
                     ("last", {"metavar": "B", "help": f"{media}: an image or a clip"}), ("prompt", {})]),
        "interpolate": ("fill in the frames between keyframes, spread evenly over the video",
                        "1 + 4k frames (default 17)",
                        [("keyframes", {"nargs": "+", "metavar": "FRAME", "help": f"two or more {media} files"}),
                         ("prompt", {})]),
        "edit": ("redo a video after a new prompt, keeping its layout and motion (SDEdit)", None,
                 [("video", {"help": media}), ("prompt", {})]),
        "story": ("one video of several scenes, a prompt each, each continuing the last",
                  "1 + 4k frames per scene (default 17)", [("prompts", {"nargs": "+", "metavar": "PROMPT"})]),
    }
    for name, (help_text, frames_help, positionals) in commands.items():
        c = sub.add_parser(name, help=help_text, description=help_text)
        for arg, kwargs in positionals:
            c.add_argument(arg, **kwargs)
        c.add_argument("--out", default="video.mp4", help="output .mp4 or .gif (.png for one frame)")
        if frames_help:
            c.add_argument("--frames", type=int, default=None, help=frames_help)
        if name == "extend":
            c.add_argument("--backward", action="store_true", help="the given video closes the result")
        if name == "edit":
            c.add_argument("--strength", type=float, default=None,
                           help="how much of the video is redone, in (0, 1] (default: the model's)")
        c.add_argument("--height", type=int, default=None, help="default: the model's (or the inputs')")
        c.add_argument("--width", type=int, default=None, help="default: the model's (or the inputs')")
        c.add_argument("--steps", type=int, default=None, help="Euler steps (default: the model's)")
        c.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
        c.add_argument("--seed", type=int, default=0)
        c.add_argument("--model", "--checkpoint", dest="checkpoint", default=None,
                       help="a shipped model (default, distilled, camera) or a training workdir / checkpoint dir")
    words = sub.add_parser("words", help="the words a model's captions trained on (others are read onto them)")
    words.add_argument("--model", "--checkpoint", dest="checkpoint", default=None,
                       help="a shipped model (default, distilled, camera) or a training workdir / checkpoint dir")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if "frames" not in args:
        args.frames = None
    quiet_libraries()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _run(args)
        except USER_ERRORS as e:
            _show(caught)
            print(f"sora-lite: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("sora-lite: interrupted", file=sys.stderr)
            return 130
    _show(caught)
    return 0


def console():
    """The `sora-lite` executable: `main`, then out at once. The result is written and closed; what
    interpreter shutdown would add is XLA's teardown, a fifth of a cached `generate`'s time,
    freeing memory that the operating system frees anyway."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


READ_ONTO = "other words are read as the nearest of these by WordNet; generate prints the reading"


def _words(model: str | None) -> str:
    """The words `model`'s training captions use: Moving Shapes' vocabulary (captions.TRAIN) a line
    per attribute value; another data set's or a folder's, as one sorted list."""
    from sora_lite import captions, checkpoint, model_path
    from sora_lite.captions import TRAIN

    cfg, _ = checkpoint.read_config(checkpoint.directory(model_path(model)), "dit")
    if captions.dataset(cfg.data) != "moving_shapes":
        return f"words: {', '.join(sorted(captions.vocabulary(cfg.data).words))}\n{READ_ONTO}"
    lines = []
    for attribute in ("color", "shape", "motion"):
        for value, words in TRAIN[attribute].items():
            words = [w[0] if isinstance(w, tuple) else w for w in words]  # motions: the "-ing" form
            lines.append(f"{attribute:<6} {value:<9} {', '.join(words)}")
    forms = (t.replace("{ing}", "{motion}").replace("{s}", "{motion}") for t in TRAIN["video"])
    lines.append("videos: " + " | ".join(dict.fromkeys(forms)))
    lines.append("images: " + " | ".join(TRAIN["image"]))
    return "\n".join([*lines, READ_ONTO])


def quiet_libraries():
    """Orbax reports every checkpoint step at INFO and warns about read-only directories through
    absl; a failed save's every writer thread logs its error (ours is the one line that says it)."""
    import logging as std_logging

    from absl import logging

    logging.set_verbosity(logging.FATAL)
    std_logging.getLogger("asyncio").setLevel(std_logging.CRITICAL)
    # A full disk fails these too; a cache entry not written costs a compile next time, nothing more.
    warnings.filterwarnings("ignore", "Error writing persistent compilation cache entry")


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
    # After a failed save, tensorstore's threads finish their writes into the event loop orbax
    # has closed, and each refusal is reported as an unraisable error: a bare traceback.
    hook = sys.unraisablehook

    def unraisablehook(u):
        tb = u.exc_traceback
        if tb is None or tb.tb_frame.f_code.co_name != "call_soon_threadsafe" or str(u.exc_value) != "Event loop is closed":
            hook(u)

    sys.unraisablehook = unraisablehook
    try:
        main(argv)
    except USER_ERRORS as e:
        from sora_lite import coordination  # a failed collective of a multi-process run: a lost process

        exit_with(2, f"{prog}: error: {coordination.lost_process(e) or e}")
    except KeyboardInterrupt as e:  # Ctrl-C: training says what it saved
        exit_with(130, f"{prog}: {e or 'interrupted'}")


def exit_with(code: int, line: str):
    """Say `line` on stderr as the last thing there, and exit with `code`. Library threads still
    running (a failed save's tensorstore writers) may print while Python shuts down: stderr is
    sent to /dev/null first and the line written to the real one after. In a multi-process run
    the exit is at once: jax.distributed's exit barrier would wait for a process that is gone."""
    sys.stdout.flush()
    sys.stderr.flush()
    real = os.dup(sys.stderr.fileno())
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
    os.write(real, f"{line}\n".encode())
    jax = sys.modules.get("jax")
    if jax is not None and jax.distributed.is_initialized():
        os._exit(code)
    sys.exit(code)


def write_results(args, results: dict, name: str):
    """An evaluation script's figures as JSON, with its settings: to --out, by default `name` in
    the checkpoint's workdir (the shipped model's figures are printed only)."""
    from sora_lite import MODELS

    shipped = args.checkpoint is None or args.checkpoint in MODELS
    out = args.out or (None if shipped else os.path.join(args.checkpoint, name))
    if out is None:
        return
    with open(out, "w") as f:
        json.dump({"settings": vars(args), **results}, f, indent=2)
    print(f"wrote {out}")


def interval(percent: float, n: int) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion `percent` of n, in percent: how far the same
    model's accuracy can move with other seeds (36 images at 100%: 90.4-100)."""
    p, z = percent / 100, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


def eval_table(results: dict) -> str:
    """{shape: {prompt set: accuracy dict}} as a table, a row per shape and set, a column per
    attribute scored (Moving Shapes: colour, shape, direction, consistency; Camera Moves: subject,
    move), and the accuracy's 95% interval: rows of a few dozen videos differ by chance."""
    rows = [(shape, name, r) for shape, sets in results.items() for name, r in sets.items()]
    columns = list(dict.fromkeys(k for _, _, r in rows for k in r if k != "n"))
    lines = [f"{'shape':<10} {'set':<10} {'n':>4} " + " ".join(f"{c:>11}" for c in columns) + f" {'95% interval':>12}"]
    for shape, name, r in rows:
        cells = " ".join(f"{'-':>11}" if r.get(c) is None else f"{r[c]:>10.1f}%" for c in columns)
        ci = "-" if r.get("accuracy") is None else "{:.1f}-{:.1f}".format(*interval(r["accuracy"], r["n"]))
        lines.append(f"{shape:<10} {name:<10} {r['n']:>4} {cells} {ci:>12}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
