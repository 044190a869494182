"""Export a trained DiT run for sampling: its newest readable step, without optimizer state.

python scripts/export.py --workdir runs/shapes --out sora_lite/assets/default/checkpoints
"""

import argparse

from sora_lite import checkpoint
from sora_lite.pipeline import checkpoint_dir

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True, help="a scripts/train.py workdir")
    parser.add_argument("--out", required=True, help="destination checkpoint directory (replaced)")
    args = parser.parse_args()
    step = checkpoint.export(checkpoint_dir(args.workdir), args.out)
    print(f"exported step {step} of {args.workdir} to {args.out}")
