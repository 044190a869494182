"""The shipped default model: the v2 text-to-video model (configs/shapes.py's two commands
write it to runs/shapes; it was shipped in sora_lite/assets/default until v3) fine-tuned to
also take frames as prompts (animate, extend, connect, interpolate, stories); 2-core CPU.
v3 is the first command; v4 continues v3 at a lower learning rate (the second); v5 repeats
that from v4 (the third), and v6, shipped, from v5 (the fourth).

python scripts/train.py --config configs/frames.py --workdir runs/frames --config.train.init_from=runs/shapes
python scripts/train.py --config configs/frames.py --workdir runs/frames_v4 --config.train.init_from=runs/frames --config.train.lr=2e-4 --config.train.steps=6000 --config.train.sample_every=0
python scripts/train.py --config configs/frames.py --workdir runs/frames_v5 --config.train.init_from=runs/frames_v4 --config.train.lr=2e-4 --config.train.steps=6000 --config.train.sample_every=0
python scripts/train.py --config configs/frames.py --workdir runs/frames_v6 --config.train.init_from=runs/frames_v5 --config.train.lr=2e-4 --config.train.steps=6000 --config.train.sample_every=0
Wall times and figures: sora_lite/assets/default/MODEL_CARD.md.
"""

from configs import shapes


def get_config():
    c = shapes.get_config()
    c.train.update(lr=3e-4, warmup=200, steps=7000, sample_every=3500)
    # A third of the examples stay text-to-video, so that skill is kept.
    c.train.conditions.update(none=0.3, first_frame=0.2, head=0.15, tail=0.1, first_last=0.1, keyframes=0.15)
    return c
