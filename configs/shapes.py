"""The shipped default model: Moving Shapes at a mixture of durations, sizes and aspect
ratios, images included, with captions in many wordings; trained on a 2-core CPU.

python scripts/train_autoencoder.py --config configs/shapes.py --workdir runs/shapes_ae
python scripts/train.py --config configs/shapes.py --workdir runs/shapes \
    --config.train.autoencoder=runs/shapes_ae
Wall times and figures: sora_lite/assets/default/MODEL_CARD.md.
"""

from configs import base


def get_config():
    c = base.get_config()
    # 17x32x32 first: the default sampling shape. Weights are shares of steps; every step
    # carries the tokens of 32 videos at 17x32x32.
    c.data.mixture = ("17x32x32:3,17x32x48:1,17x48x32:1,9x32x32:1,33x32x32:1,17x64x64:1.5,"
                      "17x48x48:1,1x32x32:1,1x64x48:0.5")
    c.data.train_size = 24_000
    c.ae_train.update(steps=2000, decoder_steps=3000)
    c.dit.size = "cpu"
    c.train.update(lr=5e-4, warmup=300, steps=9000, sample_every=4500)
    # Above 48x48 a frame has too few tokens near its edges to place a motion that must fit:
    # 64x64 samples at 32x32 first (17x64x64 seeds 2-3: 79.7% in one go, 96.9% so). Below it an
    # image's shape is drawn by too few tokens: 1x32x32 is made at 64x64 and averaged down
    # (seeds 0-3: 90.3% at its own size, 98.6% so; videos gain too, at 8 times the time).
    c.sample.update(guidance=2.5, refine_above=48 * 48, supersample_below=48 * 48)
    return c
