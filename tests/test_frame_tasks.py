"""Tests for sora_lite.frame_tasks: a pipeline that returns the reference clips themselves
scores perfectly on every task, and one that ignores its given frames does not."""

import numpy as np

from sora_lite import frame_tasks as F
from sora_lite.datasets.moving_shapes import COLORS
from sora_lite.metrics import parse_prompt


class Oracle:
    """Returns what a perfect model would: the reference clips (recoloured for an edit)."""

    def __init__(self, ref, shift=0):
        self.ref, self.shift = ref, shift  # shift: move every object by this many pixels

    def _out(self):
        return np.roll(self.ref, self.shift, axis=3)

    def image_to_video(self, prompts, *given, **_):
        return self._out()

    extend = connect = interpolate = image_to_video

    def edit(self, prompts, video, **_):
        out = self._out().copy()
        for v, p, r in zip(out, prompts, video):
            old = {tuple(c) for c in r.reshape(-1, 3)} & {tuple(c) for c in COLORS.values()}
            v[np.all(v == np.array(old.pop()), axis=-1)] = COLORS[parse_prompt(p)[0]]
        return out

    def story(self, prompts, frames_per_scene, seed, **_):
        subjects = F.references(17, 32, 32, len(self.ref))[1]
        clip = self._out()[subjects.index(parse_prompt(prompts[0]))]
        return np.concatenate([clip, clip[::-1]])[None]  # back the way it came, from where it ended


def test_a_perfect_pipeline_scores_perfectly_and_a_shifted_one_misses_the_positions():
    ref, _ = F.references(17, 32, 32, 4)
    perfect = F.evaluate(Oracle(ref), seeds=(0,), clips=4)
    assert set(perfect) == set(F.TASKS)
    for task, r in perfect.items():
        assert r["accuracy"] == 100.0 and r["within_3px"] == 100.0 and r["n"] == 4, (task, r)
    assert perfect["image_to_video"]["given_psnr"] > 100  # identical frames (inf dB, capped by the mean)
    shifted = F.evaluate(Oracle(ref, shift=5), seeds=(0,), clips=4, tasks=("connect", "interpolate"))
    for r in shifted.values():
        assert r["within_3px"] <= 25.0 and 4.5 < r["median_px"] < 5.5  # (an object rolled across the edge moves less)
