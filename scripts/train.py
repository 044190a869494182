"""Train the DiT on latents of a trained autoencoder; rerun the same command to resume.

python scripts/train.py --config configs/shapes.py --workdir runs/shapes --config.ae.checkpoint=runs/shapes_ae
"""

from absl import app, flags
from ml_collections import config_flags

from sora_lite import train

config_flags.DEFINE_config_file("config", "configs/base.py", "Config file.")
flags.DEFINE_string("workdir", None, "Where checkpoints, metrics.jsonl and samples go.", required=True)


def main(_):
    result = train.train(flags.FLAGS.config, flags.FLAGS.workdir)
    for split, r in result.items():
        print(split, " ".join(f"{k}={v:.4g}" for k, v in r.items()))


if __name__ == "__main__":
    app.run(main)
