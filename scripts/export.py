"""Export a trained DiT run for sampling: its newest readable step, without optimizer state.

python scripts/export.py --workdir runs/shapes --out sora_lite/assets/default/checkpoints
python scripts/export.py --workdir runs/frames_m4 --out sora_lite/assets/default/checkpoints --config configs/frames.py

With --config, the exported model samples by that config's `sample` section (steps, guidance,
multiscale refinement) in place of the run's: sampling defaults are not weights, so a model
trained before a setting existed takes it this way (the second command: the shipped m4).
"""

from absl import flags
from ml_collections import config_flags

from sora_lite import checkpoint, cli, training

flags.DEFINE_string("workdir", None, "A scripts/train.py workdir.", required=True)
flags.DEFINE_string("out", None, "Destination checkpoint directory (replaced).", required=True)
config_flags.DEFINE_config_file("config", None, "A config file whose `sample` section the model samples by.")


def main(_):
    f = flags.FLAGS
    sample = None
    if f.config is not None:
        training.check_settings(f.config, "sample")  # a bad value: one line now, not at a user's first sample
        sample = f.config.sample
    step = checkpoint.export(checkpoint.directory(f.workdir), f.out, sample)
    print(f"exported step {step} of {f.workdir} to {f.out}")


if __name__ == "__main__":
    cli.run_script(main)
