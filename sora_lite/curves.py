"""Training curves of runs, drawn to a PNG with matplotlib (`pip install -e '.[plot]'`):
the loss (and a moving average), the learning rate, and every evaluation accuracy logged."""

import json
import os

import numpy as np


def read(workdir: str) -> list[dict]:
    """The rows of a training workdir's `metrics.jsonl`."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no metrics.jsonl in {workdir}: is it a training workdir?")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot(workdirs: list[str], out: str, smooth: int = 20) -> str:
    """Draw the curves of every workdir (a colour each) into the PNG `out`; returns `out`."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install -e '.[plot]'") from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    runs = {w: read(w) for w in workdirs}
    fig, (ax_loss, ax_lr, ax_acc) = plt.subplots(1, 3, figsize=(15, 4))
    for color, (workdir, rows) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], runs.items()):
        name = os.path.basename(os.path.normpath(workdir))
        steps = np.array([r["step"] for r in rows if r.get("loss") is not None])
        loss = np.array([r["loss"] for r in rows if r.get("loss") is not None])
        ax_loss.plot(steps, loss, color=color, alpha=0.3, lw=0.8, label=None if len(loss) >= smooth > 1 else name)
        if len(loss) >= smooth > 1:
            ax_loss.plot(steps[smooth - 1 :], np.convolve(loss, np.ones(smooth) / smooth, "valid"), color=color,
                         label=name)
        lr = [(r["step"], r["learning_rate"]) for r in rows if r.get("learning_rate") is not None]
        if lr:
            ax_lr.plot(*zip(*lr), color=color, label=name)
        for r in rows:
            for k, v in r.items():
                if k.endswith("/accuracy") and v is not None:
                    ax_acc.scatter(r["step"], v, color=color, s=12)
                    ax_acc.annotate(k.removesuffix("/accuracy"), (r["step"], v), fontsize=6)
    ax_loss.set(title="training loss", xlabel="step", yscale="log")
    ax_lr.set(title="learning rate", xlabel="step")
    ax_acc.set(title="prompt accuracy (%)", xlabel="step", ylim=(0, 101))
    for ax in (ax_loss, ax_lr):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
