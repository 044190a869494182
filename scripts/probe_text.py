"""What the frozen text encoder tells of words no training caption uses: a ceiling for prompts in
the held-out vocabulary (`--sets new_words` of scripts/evaluate.py).

    python scripts/probe_text.py --out benchmarks/probe_text.json

For each MiniLM layer (0: the embeddings; 6: the last, which the DiT reads), two probes fitted
on the training captions' sentence embeddings (captions.vocabulary_probe) name the colour, shape
and motion of captions written only in held-out words. 2-core CPU: about 30 s.
"""

import argparse
import json
import os

from sora_lite import cli


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args()
    folder = os.path.dirname(os.path.abspath(args.out)) if args.out else "."
    if not os.path.isdir(folder):  # before the half minute of encoding, not after it
        parser.exit(2, f"probe_text.py: error: --out {args.out!r}: no folder {folder}; create it or write elsewhere\n")
    try:
        from configs import base
        from sora_lite import captions, text

        encoder = text.TextEncoder(base.get_config().text.max_len)  # captions cut where the models cut them
        train, test = captions.probe_captions()
        x, x_test = (encoder.pooled_layers([c for c, _ in pairs]) for pairs in (train, test))  # [layers, N, D]
        layers = {layer: captions.vocabulary_probe(x[layer], x_test[layer]) for layer in range(text.LAYERS + 1)}
        attrs = ("color", "shape", "motion")
        best = {a: max(r[a] for probes in layers.values() for r in probes.values()) for a in attrs}
        print(f"{'layer':>5}  {'probe':8} {'colour':>7} {'shape':>7} {'motion':>7}")
        for layer, probes in layers.items():
            for probe, r in probes.items():
                print(f"{layer:>5}  {probe:8} " + " ".join(f"{r[a]:6.1f}%" for a in attrs))
        print("best of any layer and probe: " + ", ".join(f"{a} {v:.1f}%" for a, v in best.items()))
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"layers": layers, "best": best}, f, indent=2)
            print(f"wrote {args.out}")
    except cli.USER_ERRORS as e:
        parser.exit(2, f"probe_text.py: error: {e}\n")


if __name__ == "__main__":
    main()
