"""Loss and accuracy curves of training runs, to a PNG (needs matplotlib: pip install -e '.[plot]').

    python scripts/plot_metrics.py --workdir runs/shapes --workdir runs/frames --out curves.png

Reads each workdir's `metrics.jsonl`: the training loss (and a moving average), the learning
rate, and every evaluation accuracy the run logged (`<shape>/<set>/accuracy`, at the step it
was measured). Several workdirs share the axes, one colour each.
"""

import argparse
import json
import os
import sys

from sora_lite import cli


def read(workdir: str) -> list[dict]:
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no metrics.jsonl in {workdir}: is it a training workdir?")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", action="append", required=True, help="a training workdir (repeat for more)")
    parser.add_argument("--out", default="curves.png", help="output PNG")
    parser.add_argument("--smooth", type=int, default=20, help="moving-average window over logged losses")
    args = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
        import numpy as np

        runs = {w: read(w) for w in args.workdir}
    except ImportError:
        sys.exit("plot_metrics.py: error: matplotlib is not installed; pip install -e '.[plot]'")
    except cli.USER_ERRORS as e:
        sys.exit(f"plot_metrics.py: error: {e}")
    fig, (ax_loss, ax_lr, ax_acc) = plt.subplots(1, 3, figsize=(15, 4))
    for color, (workdir, rows) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], runs.items()):
        name = os.path.basename(os.path.normpath(workdir))
        steps = np.array([r["step"] for r in rows if r.get("loss") is not None])
        loss = np.array([r["loss"] for r in rows if r.get("loss") is not None])
        ax_loss.plot(steps, loss, color=color, alpha=0.3, lw=0.8)
        if len(loss) >= args.smooth > 1:
            kernel = np.ones(args.smooth) / args.smooth
            ax_loss.plot(steps[args.smooth - 1 :], np.convolve(loss, kernel, "valid"), color=color, label=name)
        lr = [(r["step"], r["learning_rate"]) for r in rows if r.get("learning_rate") is not None]
        if lr:
            ax_lr.plot(*zip(*lr), color=color, label=name)
        accuracies = [(k, r["step"], v) for r in rows for k, v in r.items() if k.endswith("/accuracy") and v is not None]
        for k, step, v in accuracies:
            ax_acc.scatter(step, v, color=color, s=12)
            ax_acc.annotate(k.removesuffix("/accuracy"), (step, v), fontsize=6)
    ax_loss.set(title="training loss", xlabel="step", yscale="log")
    ax_lr.set(title="learning rate", xlabel="step")
    ax_acc.set(title="prompt accuracy (%)", xlabel="step", ylim=(0, 101))
    for ax in (ax_loss, ax_lr):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
