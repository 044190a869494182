"""Prompt accuracy of a sora_lite model on the data set it trained on, per shape and prompt set.

    python scripts/evaluate.py --checkpoint runs/shapes --shapes 17x32x32,17x32x48,1x32x32 \
        --sets seen,heldout,new_words --seeds 0 1
    python scripts/evaluate.py --checkpoint camera --seeds 0 1
    python scripts/evaluate.py --dataset camera_moves --shapes 17x32x32 --seeds 0 1

Scores the data set the model trained on, or `--dataset` (the last line: the default Moving
Shapes model on Camera Moves prompts, the baseline of fine-tuning it on a folder of them).

Moving Shapes: generates every prompt of each set once per seed at each shape: `seen` (the
64 validation combinations; for images the 18 colour-shape pairs), `heldout` (the 8
held-out combinations) and `new_words` (every combination written only in words no training
caption uses, sora_lite/captions.py; the pipeline reads them through WordNet, wording.py),
scored with `sora_lite.metrics`. Camera Moves: the 56
seen and 8 held-out combinations, scored with `sora_lite.camera_metrics` (`--sets` does not
apply). Prints a table (accuracy per attribute, and the accuracy's 95% Wilson interval: at
128 videos a row a model's figure moves by several points from one pair of seeds to the next)
and writes the numbers as JSON: to --out, by default `evaluate.json` in the checkpoint's
workdir (a shipped model's figures are printed only).
"""

import argparse

from sora_lite import cli
from sora_lite.shapes import parse_shape


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="a shipped model (default, distilled, camera), a training workdir or an exported model")
    parser.add_argument("--dataset", default=None, choices=("moving_shapes", "camera_moves"),
                        help="score on this data set's prompts (default: what the model trained on)")
    parser.add_argument("--shapes", default=None, help="FRAMESxHEIGHTxWIDTH,... (default: the model's mixture)")
    parser.add_argument("--sets", default="seen,heldout", help="prompt sets: seen, heldout, new_words")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: model's)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (default: model's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args()
    cli.quiet_libraries()
    try:
        from sora_lite import Pipeline, camera_metrics, captions, metrics, shapes
        from sora_lite.metrics import prompt_set

        sets = [s.strip() for s in args.sets.split(",")]
        for s in sets:
            prompt_set(s, 17)  # an unknown set name fails here, in one line
        pipe = Pipeline.from_pretrained(args.checkpoint)
        sizes = ([parse_shape(s) for s in args.shapes.split(",")] if args.shapes
                 else [e.shape for e in shapes.mixture(pipe.cfg.data)])
        for size in sizes:
            pipe.latent_grid(*size)  # a shape the model cannot make fails before any sampling
        name = args.dataset or captions.dataset(pipe.cfg.data)
        if name not in captions.DATASETS:
            raise ValueError(f"{args.checkpoint} trained on a folder of videos: say which data set's prompts to "
                             f"score with --dataset ({' or '.join(captions.DATASETS)})")
        if name == "camera_moves" and not args.shapes:  # a mixture's images have no move to score
            sizes = [size for size in sizes if size[0] > 1]
        if name == "camera_moves" and min((size[0] for size in sizes), default=0) < 2:
            raise ValueError("Camera Moves is scored on videos: give shapes of at least 2 frames")
        kw = dict(seeds=tuple(args.seeds), steps=args.steps, guidance=args.guidance)
        if name == "moving_shapes":
            kw["sets"] = sets
        score = camera_metrics.evaluate_pipeline if name == "camera_moves" else metrics.evaluate_pipeline
        results = {"x".join(map(str, size)): score(pipe, *size, **kw) for size in sizes}
    except cli.USER_ERRORS as e:
        parser.exit(2, f"evaluate.py: error: {e}\n")
    print(cli.eval_table(results))
    cli.write_results(args, results, "evaluate.json")


if __name__ == "__main__":
    main()
