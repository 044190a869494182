"""Few-step sampling: reflow (Liu et al. 2023, as InstaFlow distils Stable Diffusion), guidance included.

The teacher, a trained DiT (`train.init_from`), samples latents from fixed noise with its own
steps and guidance. The student starts from the teacher's weights (or from `train.student_from`:
a student of an earlier teacher is a few-step sampler already) and trains with the usual
flow-matching loss on these pairs, with the pair's noise in place of fresh noise and the text
alone (no caption dropout): it learns the straight line from each noise to the teacher's
sample, so a few Euler steps along it land where 25 guided steps did, with one forward pass a
step instead of guidance's two. It trains at the times its own few-step sampler evaluates it
(`sample.steps` on the `sample.shift` grid: at 17x32x32, t = 1, 0.96, 0.89, 0.73), not at
logit-normal ones, which put under 1% of the steps beyond 0.96, where the first step, the one
that decides the layout and the motion, starts from pure noise.
`configs/distill.py` trains it; its model card has the figures.
"""

import os

import jax
import numpy as np
from ml_collections import ConfigDict
from tqdm import tqdm

from sora_lite import data, sampler, training
from sora_lite.conditioning import Condition
from sora_lite.flax_setup import nnx
from sora_lite.pipeline import Pipeline
from sora_lite.sizing import grid_shift, latent_grid, sampling_shift


@nnx.jit(static_argnames=("steps",))
def _teacher_sample(dit, noise, cond, null_text, null_mask, steps, guidance, shift):
    return sampler.sample(dit, noise, cond, null_text, null_mask, steps, guidance, shift)


def student_times(cfg: ConfigDict, shift: float):
    """The times [steps] at which the student's sampler (`cfg.sample`) evaluates it, for a shape of
    resolution shift `shift`: the training timesteps of distillation."""
    return sampler.time_grid(cfg.sample.steps, grid_shift(cfg, shift))[:-1]


def check(cfg: ConfigDict, frames_given: bool):
    """A one-line ValueError for a distillation run without a teacher, or with given frames
    (`frames_given`: train.conditions weighs a kind other than none), or for a student's start
    (`train.student_from`) without a distillation."""
    if not cfg.train.distill_pairs:
        if cfg.train.student_from:
            raise ValueError("train.student_from is the start of a distillation's student: set train.distill_pairs too")
        return
    if not cfg.train.init_from:
        raise ValueError("train.distill_pairs needs a teacher: set --config.train.init_from to a trained DiT model")
    if frames_given:
        raise ValueError("distillation learns text-to-video from the teacher's samples: set train.conditions "
                         "to none only")


def teacher_pairs(teacher: Pipeline, cfg: ConfigDict, entry: data.Entry, subjects: np.ndarray, table: dict,
                  workdir: str, batch: int = 32) -> dict:
    """{"latent": [n, t, h, w, C] the teacher's samples, "noise": the noise each started from,
    "subject": [n], "caption": [n]} for the clips' `subjects` of `entry`, each prompted with a
    random one of its captions (`table`, train_dit.caption_table); cached under a key of all these."""
    sc = teacher.cfg.sample
    key = training.fingerprint(teacher.dit, sc.to_dict(), str(entry), subjects.tobytes(), table["text"].tobytes(),
                               cfg.seed)

    def compute():
        rng = np.random.default_rng([cfg.seed, *entry.shape])
        shape = latent_grid(cfg, *entry.shape)
        noise = rng.standard_normal((len(subjects), *shape), np.float32)  # [n, t, h, w, C]
        pick = rng.integers(0, table["text"].shape[1], len(subjects))  # [n] a caption of each subject
        shift = sampling_shift(teacher.cfg, *entry.shape)
        latents = []
        for i in tqdm(range(0, len(subjects), batch), desc=f"teacher samples {entry}",
                      disable=jax.process_index() != 0):
            s, k = subjects[i : i + batch], pick[i : i + batch]
            cond = Condition(table["text"][s, k], table["mask"][s, k])
            latents.append(np.asarray(_teacher_sample(teacher.dit, noise[i : i + batch], cond, table["null_text"],
                                                      table["null_mask"], sc.steps, sc.guidance, shift)))
        return {"latent": np.concatenate(latents), "noise": noise, "subject": subjects, "caption": pick.astype(np.int32)}

    return training.cached(os.path.join(workdir, "latents", f"teacher-{entry}-{key}.npz"), compute)


def mixture_pairs(cfg: ConfigDict, entries: list[data.Entry], latents: list[dict], sizes: list[int], table: dict,
                  workdir: str) -> list[dict]:
    """The teacher's pairs for every mixture entry in place of its data latents: `train.distill_pairs`
    in all, split by the entries' weights (at least a batch each), for the subjects of its clips."""
    teacher = Pipeline.from_pretrained(cfg.train.init_from)
    total = sum(e.weight for e in entries)
    counts = [max(size, round(cfg.train.distill_pairs * e.weight / total)) for e, size in zip(entries, sizes)]
    return [teacher_pairs(teacher, cfg, e, a["subject"][:n], table, workdir)
            for e, a, n in zip(entries, latents, counts)]
