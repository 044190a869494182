"""Prompt accuracy of a sora_lite model on Moving Shapes, seen vs held-out combinations.

    python scripts/evaluate.py --checkpoint runs/x/ckpt --seeds 0 1 --out eval.json

Generates every validation prompt (the 64 seen combinations) and every held-out prompt
(8 combinations) once per seed, scores them with `sora_lite.metrics`, prints a table and
writes the numbers as JSON.
"""

import argparse
import json

from sora_lite import Pipeline
from sora_lite.metrics import evaluate_pipeline

COLUMNS = ("accuracy", "color", "shape", "direction", "consistency")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model path (default: Pipeline's own)")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: model's)")
    parser.add_argument("--guidance", type=float, default=None, help="guidance scale (default: model's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", default="eval.json")
    args = parser.parse_args()

    pipe = Pipeline.from_pretrained(args.checkpoint)
    results = evaluate_pipeline(pipe, seeds=tuple(args.seeds), frames=args.frames,
                                height=args.height, width=args.width,
                                steps=args.steps, guidance=args.guidance)

    print(f"{'split':<8} {'n':>4} " + " ".join(f"{c:>11}" for c in COLUMNS))
    for split, r in results.items():
        print(f"{split:<8} {r['n']:>4} " + " ".join(f"{r[c]:>10.1f}%" for c in COLUMNS))

    with open(args.out, "w") as f:
        json.dump({"settings": vars(args), **results}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
