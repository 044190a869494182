"""Export a trained DiT run for sampling: its newest readable step, without optimizer state.

python scripts/export.py --workdir runs/shapes --out sora_lite/assets/default/checkpoints
"""

import argparse

from sora_lite import checkpoint, cli

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True, help="a scripts/train.py workdir")
    parser.add_argument("--out", required=True, help="destination checkpoint directory (replaced)")
    args = parser.parse_args()
    cli.quiet_libraries()
    try:
        step = checkpoint.export(checkpoint.directory(args.workdir), args.out)
    except (checkpoint.CheckpointError, OSError) as e:
        parser.exit(2, f"export.py: error: {e}\n")
    print(f"exported step {step} of {args.workdir} to {args.out}")
