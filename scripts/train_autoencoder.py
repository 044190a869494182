"""Train the video autoencoder on the config's data mixture (`data.name` or `data.folder`) and
report validation PSNR and the share of reconstructions scored correct, per shape; rerun the
same command to resume.

python scripts/train_autoencoder.py --config configs/shapes.py --workdir runs/shapes_ae
"""

from absl import flags
from ml_collections import config_flags

import sora_lite
from sora_lite import cli, train_autoencoder

config_flags.DEFINE_config_file("config", "configs/base.py", "Config file.")
flags.DEFINE_string("workdir", None, "Where checkpoints and metrics go; rerun to resume.", required=True)


def main(_):
    sora_lite.enable_compilation_cache()
    result = train_autoencoder.train_autoencoder(flags.FLAGS.config, flags.FLAGS.workdir)
    for shape, r in result.items():
        print(shape, " ".join(f"{k}={v:.4g}" for k, v in r.items()))


if __name__ == "__main__":
    cli.run_script(main)
