"""The shipped camera model (`Pipeline.from_pretrained("camera")`, `sora-lite generate --model
camera`): Camera Moves, a camera panning, zooming or rotating over real photographs, at two
aspect ratios; trained on a 2-core CPU.

python scripts/train_autoencoder.py --config configs/camera.py --workdir runs/camera_ae
python scripts/train.py --config configs/camera.py --workdir runs/camera --config.train.autoencoder=runs/camera_ae
The shipped v2 fine-tunes that model, with more of its steps at high noise, where the move is decided:
python scripts/train.py --config configs/camera.py --workdir runs/camera_v2 --config.train.init_from=sora_lite/assets/camera --config.train.lr=3e-4 --config.train.steps=5000 --config.train.sample_every=0 --config.diffusion.logit_mean=0.5
Wall times and figures: sora_lite/assets/camera/MODEL_CARD.md.
"""

from configs import base


def get_config():
    c = base.get_config()
    c.data.update(name="camera_moves", mixture="17x32x32:3,17x32x48:1", train_size=12_000)
    c.ae_train.update(steps=3000, decoder_steps=3000)
    c.dit.size = "cpu"
    c.train.update(lr=5e-4, warmup=300, steps=5000, sample_every=2500)
    c.sample.guidance = 2.5
    return c
