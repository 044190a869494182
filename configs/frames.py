"""The shipped default model (m4): the v2 text-to-video model (configs/shapes.py's two commands
write it to runs/shapes) fine-tuned to also take frames as prompts (animate, extend, connect,
interpolate, stories); 2-core CPU. v3 is the first command; v4 continues v3 at a lower
learning rate (the second); v5 and v6 repeat that, each from the one before. m1 to m3 add
the motion term and training times leaning towards noise (`diffusion.motion_weight`,
`diffusion.logit_mean`), each from the one before; m4, shipped, is their command from m3 with
the canvas position input (`dit.canvas_position`, zero-initialised, so m4's step 0 is m3). The
models before m4 were trained before that input existed: to rebuild them exactly, add
`--config.dit.canvas_position=False` to their commands (and to configs/shapes.py's DiT command).

python scripts/train.py --config configs/frames.py --workdir runs/frames --config.train.init_from=runs/shapes
python scripts/train.py --config configs/frames.py --workdir runs/frames_v4 --config.train.init_from=runs/frames --config.train.lr=2e-4 --config.train.steps=6000 --config.train.sample_every=0
python scripts/train.py --config configs/frames.py --workdir runs/frames_v5 --config.train.init_from=runs/frames_v4 --config.train.lr=2e-4 --config.train.steps=6000 --config.train.sample_every=0
python scripts/train.py --config configs/frames.py --workdir runs/frames_v6 --config.train.init_from=runs/frames_v5 --config.train.lr=2e-4 --config.train.steps=6000 --config.train.sample_every=0
python scripts/train.py --config configs/frames.py --workdir runs/frames_m1 --config.train.init_from=runs/frames_v6 --config.train.lr=2e-4 --config.train.steps=6000 --config.train.sample_every=0 --config.diffusion.motion_weight=2.0 --config.diffusion.logit_mean=0.5
python scripts/train.py --config configs/frames.py --workdir runs/frames_m2 --config.train.init_from=runs/frames_m1 --config.train.lr=2e-4 --config.train.steps=6000 --config.train.sample_every=0 --config.diffusion.motion_weight=2.0 --config.diffusion.logit_mean=0.5
python scripts/train.py --config configs/frames.py --workdir runs/frames_m3 --config.train.init_from=runs/frames_m2 --config.train.lr=2e-4 --config.train.steps=6000 --config.train.sample_every=0 --config.diffusion.motion_weight=2.0 --config.diffusion.logit_mean=0.5
python scripts/train.py --config configs/frames.py --workdir runs/frames_m4 --config.train.init_from=runs/frames_m3 --config.train.lr=2e-4 --config.train.steps=6000 --config.train.sample_every=0 --config.diffusion.motion_weight=2.0 --config.diffusion.logit_mean=0.5
Wall times and figures: sora_lite/assets/default/MODEL_CARD.md.
"""

from configs import shapes


def get_config():
    c = shapes.get_config()
    c.train.update(lr=3e-4, warmup=200, steps=7000, sample_every=3500)
    # A third of the examples stay text-to-video, so that skill is kept.
    c.train.conditions.update(none=0.3, first_frame=0.2, head=0.15, tail=0.1, first_last=0.1, keyframes=0.15)
    return c
