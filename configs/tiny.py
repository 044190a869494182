"""A tiny model for tests and smoke runs: a few seconds to train on a 2-core CPU.

python scripts/train.py --config configs/tiny.py --workdir /tmp/tiny
"""

from configs import base


def get_config():
    c = base.get_config()
    c.data.update(frames=5, height=16, width=16, train_size=256)
    c.ae.update(widths=(16, 32), latent_channels=4, steps=4, batch_size=8, decoder_steps=2, decoder_batch_size=8,
                log_every=2, checkpoint_every=2, warmup=1)
    c.text.max_len = 12
    c.dit.size = "tiny"
    c.sample.steps = 4
    c.steps = 6
    c.batch_size = 8
    c.warmup = 2
    c.log_every = 1
    c.checkpoint_every = 3
    c.sample_every = 0
    c.eval_at_end = False
    return c
