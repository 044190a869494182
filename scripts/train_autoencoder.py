"""Train the video autoencoder on Moving Shapes and report validation PSNR.

python scripts/train_autoencoder.py --config configs/shapes.py --workdir runs/ae
"""

from absl import app, flags
from ml_collections import config_flags

from sora_lite import train

config_flags.DEFINE_config_file("config", "configs/base.py", "Config file.")
flags.DEFINE_string("workdir", None, "Where checkpoints and metrics go; rerun to resume.", required=True)


def main(_):
    result = train.train_autoencoder(flags.FLAGS.config, flags.FLAGS.workdir)
    print(" ".join(f"{k}={v:.4g}" for k, v in result.items()))


if __name__ == "__main__":
    app.run(main)
