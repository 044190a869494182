"""Frames as prompts, scored: each task on Moving Shapes validation clips, per shape.

    python scripts/evaluate_frames.py --checkpoint runs/frames --shapes 17x32x32,17x32x48 --seeds 0 1

For each of the 64 seen combinations, validation clip i is the reference: the task is given
frames of it (image_to_video: frame 0; extend_forward: frames 0-8; extend_backward: the last
8; connect: the first and last; interpolate: first, middle and last; edit: the whole clip
with another colour in the prompt; story: its caption, then the reverse motion) and scored
with sora_lite.frame_tasks: prompt accuracy, PSNR of the given frames, and the object's
distance in pixels to the reference's where the task had to invent it (story: the jump
across the seam; edit: to the source track). Prints a table and writes JSON: to --out, by
default `evaluate_frames.json` in the checkpoint's workdir (the shipped model's figures are
printed only).
"""

import argparse

from sora_lite import cli
from sora_lite.shapes import parse_shape

COLUMNS = ("accuracy", "within_3px", "both", "median_px", "given_psnr")


def table(results: dict) -> str:
    lines = [f"{'shape':<10} {'task':<16} {'n':>4} " + " ".join(f"{c:>11}" for c in COLUMNS)]
    for shape, tasks in results.items():
        for task, r in tasks.items():
            cells = " ".join(f"{'-':>11}" if c not in r else f"{r[c]:>11.1f}" for c in COLUMNS)
            lines.append(f"{shape:<10} {task:<16} {r['n']:>4} {cells}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="training workdir or exported model (default: shipped)")
    parser.add_argument("--shapes", default="17x32x32", help="FRAMESxHEIGHTxWIDTH,... (17 frames or more)")
    parser.add_argument("--tasks", default=None, help="comma-separated subset of the tasks (default: all)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: model's)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (default: model's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--clips", type=int, default=64, help="reference clips, one per seen combination (max 64)")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args()
    cli.quiet_libraries()
    try:
        from sora_lite import Pipeline, frame_tasks

        tasks = frame_tasks.TASKS if args.tasks is None else tuple(t.strip() for t in args.tasks.split(","))
        unknown = set(tasks) - set(frame_tasks.TASKS)
        if unknown:
            raise ValueError(f"unknown task(s) {sorted(unknown)}; choose from {list(frame_tasks.TASKS)}")
        sizes = [parse_shape(s) for s in args.shapes.split(",")]
        pipe = Pipeline.from_pretrained(args.checkpoint)
        for size in sizes:
            pipe.latent_grid(*size)  # a shape the model cannot make fails before any sampling
        results = {"x".join(map(str, size)): frame_tasks.evaluate(
            pipe, *size, seeds=tuple(args.seeds), tasks=tasks, clips=args.clips, steps=args.steps, guidance=args.guidance)
            for size in sizes}
    except cli.USER_ERRORS as e:
        parser.exit(2, f"evaluate_frames.py: error: {e}\n")
    print(table(results))
    cli.write_results(args, results, "evaluate_frames.json")


if __name__ == "__main__":
    main()
