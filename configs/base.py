"""Every default of sora_lite, once. Other configs import this and override a few keys.

Train: python scripts/train.py --config configs/base.py --workdir runs/base
"""

from ml_collections import ConfigDict


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.seed = 0

    c.data = ConfigDict(dict(dir="data", frames=17, height=32, width=32, train_size=50_000))

    c.ae = ConfigDict()
    c.ae.space_factor = 4  # 4 or 8; needs log2(space_factor) widths
    c.ae.widths = (64, 128)
    c.ae.blocks = 1  # residual blocks per encoder stage (decoder: one more)
    c.ae.latent_channels = 16
    c.ae.kl_weight = 1e-6
    c.ae.checkpoint = ""  # autoencoder checkpoint dir used by DiT training
    c.ae.steps = 4000
    c.ae.batch_size = 8
    c.ae.lr = 1e-3
    # Then the decoder alone on the frozen encoder's latents (squared error): sharper videos,
    # same latents. 0 skips it.
    c.ae.decoder_steps = 3000
    c.ae.decoder_batch_size = 4
    c.ae.decoder_lr = 2e-3
    c.ae.warmup = 200
    c.ae.log_every = 50
    c.ae.checkpoint_every = 500

    c.text = ConfigDict(dict(max_len=16))

    c.dit = ConfigDict()
    c.dit.size = "S"
    c.dit.patch = (1, 2, 2)  # (pt, ph, pw) over latent (t, h, w)

    c.diffusion = ConfigDict()
    c.diffusion.logit_mean = 0.0
    c.diffusion.logit_std = 1.0
    c.diffusion.base_tokens = 20  # timestep shift sqrt(tokens / base_tokens): 2 at 17x32x32 (80 tokens)
    c.diffusion.caption_dropout = 0.1

    c.sample = ConfigDict(dict(steps=25, guidance=4.0))

    # Device mesh (sora_lite/sharding.py); -1 = all remaining devices. On one device all are 1.
    c.mesh = ConfigDict(dict(data=-1, fsdp=1, tensor=1, sequence=1))

    c.precision = "float32"  # DiT compute dtype: float32 or bfloat16 (weights and optimizer stay float32)
    c.remat = "none"  # what DiT blocks recompute in the backward pass: none, dots or full

    c.steps = 10_000
    c.batch_size = 32
    c.lr = 3e-4
    c.warmup = 500
    c.weight_decay = 0.01
    c.grad_clip = 1.0
    c.ema_decay = 0.999
    c.nonfinite_skips = 0  # NaN/Inf steps whose update is dropped before the run stops (counted in metrics)
    c.log_every = 50
    c.checkpoint_every = 1000
    c.sample_every = 2000
    c.keep_checkpoints = 3
    c.eval_at_end = True
    return c
