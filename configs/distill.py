"""The default model distilled to 4 sampling steps without guidance (sora_lite/distill.py: reflow
on the default model's own samples, 25 guided steps each, learnt at the student's 4 sampling
times); 2-core CPU. The shipped student (v12, of the default model m4) is the first command
then the second, which resumes it to 7,000 steps.

python scripts/train.py --config configs/distill.py --workdir runs/distilled --config.train.init_from=sora_lite/assets/default
python scripts/train.py --config configs/distill.py --workdir runs/distilled --config.train.init_from=sora_lite/assets/default --config.train.steps=7000
python scripts/export.py --workdir runs/distilled --out sora_lite/assets/distilled/checkpoints --config configs/distill.py
Wall time and figures: sora_lite/assets/distilled/MODEL_CARD.md.
"""

from configs import shapes


def get_config():
    c = shapes.get_config()
    # Pairs split over the mixture by weight; a small learning rate: the student starts as the teacher.
    c.train.update(distill_pairs=8192, lr=1e-4, warmup=100, steps=5000, sample_every=0)
    c.diffusion.caption_dropout = 0.0  # sampled with the text alone: no unconditional velocity to learn
    # 4 steps on a grid shifted 4x further towards noise, where the layout and the motion are decided.
    c.sample.update(steps=4, guidance=1.0, shift=4.0)
    return c
