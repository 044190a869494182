"""Loss, learning rate and accuracy curves of training runs, to a PNG (matplotlib: pip install -e '.[plot]').

    python scripts/plot_metrics.py --workdir runs/shapes --workdir runs/frames --out curves.png

Reads each workdir's `metrics.jsonl` (sora_lite/curves.py): the training loss and its moving
average, the learning rate, and every evaluation accuracy the run logged
(`<shape>/<set>/accuracy`, at the step it was measured); one colour per workdir.
"""

import argparse

from sora_lite import cli


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", action="append", required=True, help="a training workdir (repeat for more)")
    parser.add_argument("--out", default="curves.png", help="output PNG")
    parser.add_argument("--smooth", type=int, default=20, help="moving-average window over logged losses")
    args = parser.parse_args()
    try:
        from sora_lite import curves

        print(f"wrote {curves.plot(args.workdir, args.out, args.smooth)}")
    except (ImportError, *cli.USER_ERRORS) as e:
        parser.exit(2, f"plot_metrics.py: error: {e}\n")


if __name__ == "__main__":
    main()
