"""Few-step distillation (distill.py): the student learns the teacher's own samples of known noise."""

import glob
import os

import jax
import numpy as np
import pytest

from sora_lite import Pipeline, captions, checkpoint, diffusion, distill, train_dit
from sora_lite.conditioning import Condition
from sora_lite.sizing import num_tokens
from sora_lite.text import TextEncoder

ONE = jax.devices()[:1]  # training here runs on one device: 8 fake ones compile and save slower


def test_a_distillation_run_trains_on_the_teachers_samples_of_their_noise(tiny_run, tmp_path):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.train.update(autoencoder="", init_from=tiny_run["dit_dir"], distill_pairs=24, steps=2)
    cfg.diffusion.caption_dropout = 0.0
    cfg.sample.update(steps=2, guidance=1.0, shift=4.0)
    workdir = str(tmp_path / "student")
    train_dit.train(cfg, workdir, devices=ONE)

    paths = sorted(glob.glob(os.path.join(workdir, "latents", "teacher-*.npz")))
    assert [os.path.basename(p).split("-")[1] for p in paths] == ["1x16x32", "5x16x16"]  # one per mixture entry
    pairs = dict(np.load(paths[1]))
    n = len(pairs["latent"])
    assert n == 18 and {k: len(v) for k, v in pairs.items()} == dict.fromkeys(("latent", "noise", "subject", "caption"), n)

    # Each latent is the teacher's sample (its steps and guidance) of its noise and caption.
    teacher = Pipeline.from_pretrained(tiny_run["dit_dir"])
    table = train_dit.caption_table(TextEncoder(cfg.text.max_len), captions.caption_rows(cfg.data), cfg.data.dir)
    s, k = pairs["subject"][:2], pairs["caption"][:2]
    shift = diffusion.timestep_shift(num_tokens(cfg, 5, 16, 16), cfg.diffusion.base_tokens)
    again = distill._teacher_sample(teacher.dit, pairs["noise"][:2], Condition(table["text"][s, k], table["mask"][s, k]),
                                    table["null_text"], table["null_mask"], teacher.cfg.sample.steps,
                                    teacher.cfg.sample.guidance, shift)
    np.testing.assert_allclose(again, pairs["latent"][:2], rtol=1e-4, atol=1e-4)
    assert np.abs(pairs["latent"] - pairs["noise"]).mean() > 1e-5  # sampled (by a tiny model: a small move)

    student = Pipeline.from_pretrained(workdir)  # samples with its own config: few steps, no guidance, its shift
    assert (student.cfg.sample.steps, student.cfg.sample.guidance, student.cfg.sample.shift) == (2, 1.0, 4.0)
    assert student.generate(["a red circle moving left"]).shape == (1, 5, 16, 16, 3)


def test_a_students_start_can_be_another_model_than_its_teacher(tiny_run, tmp_path):
    """`train.student_from`: the student starts from that model's weights, the teacher stays init_from."""
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.update(seed=1)
    cfg.train.update(steps=1, eval_at_end=False)
    other = str(tmp_path / "other")
    train_dit.train(cfg, other, devices=ONE)  # another model: another seed's initial weights
    cfg.train.update(autoencoder="", init_from=tiny_run["dit_dir"], student_from=other, distill_pairs=24, lr=1e-12)
    cfg.diffusion.caption_dropout = 0.0
    cfg.sample.update(steps=2, guidance=1.0)
    student = str(tmp_path / "student")
    train_dit.train(cfg, student, devices=ONE)

    def weights(workdir):
        return jax.tree.leaves(checkpoint.load_arrays(checkpoint.directory(workdir), ("dit",))[2]["dit"])

    for got, start in zip(weights(student), weights(other)):
        np.testing.assert_allclose(got, start, atol=1e-6)  # one step at a learning rate of 1e-12
    assert any(not np.allclose(a, b) for a, b in zip(weights(other), weights(tiny_run["dit_dir"])))


@pytest.mark.parametrize("update,message", [
    (dict(init_from=""), "train.distill_pairs needs a teacher: set --config.train.init_from"),
    (dict(conditions=dict(first_frame=1.0)), "distillation learns text-to-video"),
    (dict(distill_pairs=0, student_from="runs/distilled"), "train.student_from is the start of a distillation"),
])
def test_a_distillation_run_without_a_teacher_or_with_frames_is_one_line(tiny_run, update, message):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.train.update(distill_pairs=8, init_from=tiny_run["dit_dir"])
    cfg.train.update(update)
    with pytest.raises(ValueError, match=message):
        train_dit.train(cfg, "/nonexistent")


def test_the_student_trains_at_the_times_its_few_step_sampler_evaluates_it(tiny_run):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.sample.update(steps=4, shift=4.0)
    times = np.asarray(distill.student_times(cfg, 2.0))
    np.testing.assert_allclose(times, [1.0, 0.96, 0.8888889, 0.7272727], rtol=1e-6)  # shift 8: 4 x 2

    seen = []

    def model(x, t, cond):  # records the times the loss asks the velocity at
        seen.append(np.asarray(t))
        return x

    x0 = np.zeros((64, 2, 2, 2, 4), np.float32)
    cond = Condition(np.zeros((64, 3, 8), np.float32), np.ones((64, 3), bool))
    null = (np.zeros((3, 8), np.float32), np.zeros((3,), bool))
    diffusion.loss(model, x0, cond, *null, jax.random.key(0), cfg.diffusion, 2.0, noise=x0, times=times)
    assert set(np.round(seen[0], 6)) == set(np.round(times, 6))  # all four, and only they, in 64 draws
    diffusion.loss(model, x0, cond, *null, jax.random.key(0), cfg.diffusion, 2.0, noise=x0)
    assert len(set(np.round(seen[1], 6))) == 64  # without: logit-normal, every draw its own
