"""A tiny model for tests and smoke runs: seconds to train on a 2-core CPU.

python scripts/train_autoencoder.py --config configs/tiny.py --workdir /tmp/tiny_ae
python scripts/train.py --config configs/tiny.py --workdir /tmp/tiny --config.train.autoencoder=/tmp/tiny_ae
"""

from configs import base


def get_config():
    c = base.get_config()
    c.data.update(mixture="5x16x16:3,1x16x32:1", train_size=256)  # a video and an image shape
    c.ae.update(widths=(16, 32), latent_channels=4)
    c.ae_train.update(steps=4, batch_size=8, decoder_steps=2, decoder_batch_size=8, log_every=2, checkpoint_every=2,
                      warmup=1)
    c.dit.size = "tiny"
    c.sample.steps = 4
    c.train.update(steps=6, batch_size=8, warmup=2, log_every=1, checkpoint_every=3, sample_every=0,
                   eval_at_end=False)
    return c
