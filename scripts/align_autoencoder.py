"""Align a newly trained autoencoder's latent with a DiT model's, so that the DiT moves onto it
by fine-tuning (`--config.train.init_from` the model, `--config.train.autoencoder` the aligned
autoencoder) instead of learning its latent from scratch; sora_lite/align.py says how.

python scripts/align_autoencoder.py --autoencoder runs/camera_ae64 --model camera --out runs/camera_ae64_aligned
"""

from absl import flags

from sora_lite import align, cli

flags.DEFINE_string("autoencoder", None, "A scripts/train_autoencoder.py workdir.", required=True)
flags.DEFINE_string("model", None, "The DiT model to align with: a shipped name or a path.", required=True)
flags.DEFINE_string("out", None, "Where the aligned autoencoder goes (replaced).", required=True)
flags.DEFINE_integer("clips", 256, "Training clips the alignment is fitted on.")


def main(_):
    f = flags.FLAGS
    matched, old, new = align.align_checkpoint(f.autoencoder, f.model, f.out, f.clips)
    print(f"{f.out}: the first {old} of {f.autoencoder}'s {new} latent channels match {100 * matched:.1f}% "
          f"of {f.model}'s latent (variance explained)")


if __name__ == "__main__":
    cli.run_script(main)
