"""Tests for sora_lite.train on the session's tiny run: logs, checkpoints, resume, EMA."""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from flax import nnx
from ml_collections import ConfigDict

from sora_lite import autoencoder, checkpoint, data, train_autoencoder, train_dit, training
from sora_lite.checkpoint import abstract_state
from sora_lite.dit import build_dit

ONE = jax.devices()[:1]  # training here runs on one device: 8 fake ones compile and save slower


def _rows(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _steps_on_disk(workdir):
    return sorted(int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.isdigit())


def test_autoencoder_logs_checkpoints_and_eval(tiny_run):
    cfg, ae_dir = tiny_run["cfg"], tiny_run["ae_dir"]
    total = cfg.ae_train.steps + cfg.ae_train.decoder_steps
    rows = _rows(ae_dir)
    logged = [r for r in rows if "loss" in r]
    assert [r["step"] for r in logged] == list(range(cfg.ae_train.log_every, total + 1, cfg.ae_train.log_every))
    assert all(np.isfinite(r["loss"]) for r in logged)
    vae, decoder = [r for r in logged if r["step"] <= cfg.ae_train.steps], [r for r in logged if r["step"] > cfg.ae_train.steps]
    assert vae and decoder
    assert all({"l1", "l2", "kl"} <= set(r) for r in vae)
    assert all(set(r) == {"step", "loss", "learning_rate", "steps_per_s", "l2"} and r["loss"] == r["l2"] for r in decoder)
    evals = [r for r in rows if "loss" not in r]
    assert len(evals) == 1 and evals[0]["step"] == total
    result = tiny_run["ae_result"]
    assert list(result) == [str(e) for e in data.mixture(cfg.data)]  # every mixture shape, the image one too
    for shape, r in result.items():
        assert np.isfinite(r["psnr"]) and 0 <= r["recon_accuracy"] <= 100 and evals[0][f"psnr/{shape}"] == r["psnr"]
    assert "recon_direction" not in result["1x16x32"]  # images have no motion to judge
    with open(os.path.join(ae_dir, "eval.json")) as f:
        assert json.load(f) == result
    assert _steps_on_disk(ae_dir) == list(range(cfg.ae_train.checkpoint_every, total + 1, cfg.ae_train.checkpoint_every))


def _restore_ae_run(workdir, cfg, step=None):
    """The autoencoder's state at `step` (default: the newest) of an autoencoder workdir."""
    ae = nnx.eval_shape(lambda: autoencoder.build_autoencoder(cfg))
    return checkpoint.restore(os.path.join(workdir, "checkpoints"), abstract_state(ae), step=step)[1]


def test_decoder_phase_trains_the_decoder_only(tiny_run):
    """The latents a DiT learns (encoder, latent statistics) are those the VAE phase ended with."""
    cfg, ae_dir = tiny_run["cfg"], tiny_run["ae_dir"]
    after_vae, final = _restore_ae_run(ae_dir, cfg, cfg.ae_train.steps), _restore_ae_run(ae_dir, cfg)
    for name in ("encoder", "latent_shift", "latent_scale"):
        for a, b in zip(jax.tree.leaves(after_vae[name]), jax.tree.leaves(final[name])):
            np.testing.assert_array_equal(a, b, err_msg=name)
    changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(after_vae["decoder"]),
                                                        jax.tree.leaves(final["decoder"]))]
    assert all(changed), f"{changed.count(False)} decoder arrays did not train"


def test_autoencoder_resumes_into_and_inside_the_decoder_phase(tiny_run, tmp_path):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    workdir = str(tmp_path / "ae")
    shutil.copytree(tiny_run["ae_dir"], workdir)
    total = cfg.ae_train.steps + cfg.ae_train.decoder_steps
    shutil.rmtree(os.path.join(workdir, "checkpoints", str(total)))  # resumes where the decoder phase starts
    train_autoencoder.train_autoencoder(cfg, workdir, devices=ONE)
    original = _rows(tiny_run["ae_dir"])
    rows = _rows(workdir)
    assert [r["step"] for r in rows] == [r["step"] for r in original]  # each step once, then the eval
    for new, old in zip(rows, original):
        for key in set(old) - {"steps_per_s"}:
            np.testing.assert_allclose(new[key], old[key], rtol=1e-6, err_msg=f"{key} at step {old['step']}")
    resumed, uninterrupted = _restore_ae_run(workdir, cfg), _restore_ae_run(tiny_run["ae_dir"], cfg)
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(uninterrupted)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    cfg.ae_train.decoder_steps += 2  # now resumes inside the decoder phase, with its optimizer's saved state
    train_autoencoder.train_autoencoder(cfg, workdir, devices=ONE)
    logged = [r["step"] for r in _rows(workdir) if "loss" in r]
    assert logged == list(range(cfg.ae_train.log_every, total + 3, cfg.ae_train.log_every))
    assert _steps_on_disk(workdir)[-1] == total + 2


def test_non_finite_decoder_phase_stops_with_one_line_naming_its_lr(tiny_run, tmp_path):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    workdir = str(tmp_path / "ae")
    shutil.copytree(tiny_run["ae_dir"], workdir)
    last_good = cfg.ae_train.steps + cfg.ae_train.decoder_steps
    cfg.ae_train.decoder_steps, cfg.ae_train.decoder_lr = cfg.ae_train.decoder_steps + 4, 1e30  # resumes, then overflows at once
    with pytest.raises(FloatingPointError, match=r"^non-finite loss at step \d+: .*lower --config.ae_train.decoder_lr and"):
        train_autoencoder.train_autoencoder(cfg, workdir, devices=ONE)
    assert _steps_on_disk(workdir)[-1] == last_good  # nothing non-finite was saved


def test_autoencoder_checkpoint_holds_latent_statistics(tiny_run):
    ae = autoencoder.load_autoencoder(tiny_run["ae_dir"])
    scale = np.asarray(ae.latent_scale[...])
    assert scale.shape == (tiny_run["cfg"].ae.latent_channels,) and (scale > 0).all()
    assert not np.allclose(scale, 1.0)  # set from data, not left at the init value
    assert not np.allclose(ae.latent_shift[...], 0.0)


def test_an_autoencoder_on_a_base_trains_around_it(tiny_run, tmp_path):
    """ae_train.base: the base's weights and latent statistics stay as saved, its latent is the new
    one's first channels, the rest trains. (A DiT of the base's latent widened onto it, with
    diffusion.detail_weight: the camera card's v23 command, run by test_docs_camera.py.)"""
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.ae.latent_channels += 2
    cfg.ae_train.update(base=tiny_run["ae_dir"], steps=2, decoder_steps=2)
    workdir = str(tmp_path / "ae")
    train_autoencoder.train_autoencoder(cfg, workdir, devices=ONE)
    base, ae = autoencoder.load_autoencoder(tiny_run["ae_dir"]), autoencoder.load_autoencoder(workdir)
    for a, b in zip(jax.tree.leaves(nnx.state(base)), jax.tree.leaves(nnx.state(ae.base)), strict=True):
        np.testing.assert_array_equal(a, b)
    video = jax.random.uniform(jax.random.key(0), (1, 5, 16, 16, 3), minval=-1.0, maxval=1.0)
    latent = autoencoder.encode_latent(ae, video)  # [1, 2, 4, 4, C + 2]
    np.testing.assert_array_equal(latent[..., :-2], autoencoder.encode_latent(base, video))
    assert not np.allclose(ae.latent_scale[-2:], 1.0)  # its own channels' statistics, from data


def test_dit_logs_every_step_once(tiny_run):
    cfg = tiny_run["cfg"]
    rows = _rows(tiny_run["dit_dir"])
    assert [r["step"] for r in rows] == list(range(1, cfg.train.steps + 1))
    for r in rows:
        assert np.isfinite(r["loss"]) and r["loss"] > 0 and np.isfinite(r["grad_norm"]) and r["steps_per_s"] > 0
    assert _steps_on_disk(tiny_run["dit_dir"]) == list(range(cfg.train.checkpoint_every, cfg.train.steps + 1, cfg.train.checkpoint_every))
    caches = os.listdir(os.path.join(tiny_run["dit_dir"], "latents"))  # one per mixture shape (captions: with the data)
    assert sorted(n.split("-")[0] for n in caches) == sorted(str(e) for e in data.mixture(cfg.data))


def _restore_dit_run(workdir, cfg):
    """(step, {"dit": EMA, "ae"}, {"dit": raw, "opt", "rng", "progress"}) of the newest step, restored as training saved it."""
    ae = nnx.eval_shape(lambda: autoencoder.build_autoencoder(cfg))
    dit = nnx.eval_shape(lambda: build_dit(cfg))
    tx = training.make_optimizer(cfg.train.lr, cfg.train.warmup, cfg.train.steps, cfg.train.weight_decay, cfg.train.grad_clip)
    opt = nnx.eval_shape(lambda: nnx.Optimizer(build_dit(cfg), tx, wrt=nnx.Param))
    return checkpoint.restore(os.path.join(workdir, "checkpoints"),
                              {"dit": abstract_state(dit), "ae": abstract_state(ae)},
                              {"dit": abstract_state(dit), "opt": abstract_state(opt),
                               "rng": jax.ShapeDtypeStruct((2,), np.uint32),
                               "progress": dict.fromkeys(("data_step", "nonfinite", "last_nonfinite"),
                                                         jax.ShapeDtypeStruct((), np.int32))})


def test_ema_differs_from_raw_weights_and_lags_them(tiny_run):
    cfg = tiny_run["cfg"]
    step, model, state = _restore_dit_run(tiny_run["dit_dir"], cfg)
    assert step == cfg.train.steps
    ema, raw = jax.tree.leaves(model["dit"]), jax.tree.leaves(state["dit"])
    init = jax.tree.leaves(nnx.state(build_dit(cfg, cfg.seed)))  # training starts both from this
    moved_raw = sum(float(np.abs(r - i).sum()) for r, i in zip(raw, init, strict=True))
    moved_ema = sum(float(np.abs(e - i).sum()) for e, i in zip(ema, init, strict=True))
    assert moved_raw > 0 and 0 < moved_ema < 0.1 * moved_raw  # decay 0.999 over 6 steps: a small step
    assert int(jax.tree.leaves(state["opt"]["step"])[0]) == cfg.train.steps
    # The run's autoencoder weights travel with the DiT checkpoint.
    ae = autoencoder.load_autoencoder(tiny_run["ae_dir"])
    for a, b in zip(jax.tree.leaves(model["ae"]), jax.tree.leaves(nnx.state(ae)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_tensorboard_holds_the_scalars_and_sample_videos(tiny_run, tmp_path):
    """The event files open with tensorboard's own reader: every logged scalar of both runs,
    the evaluation included, and videos (GIFs) and images (PNGs) as the images tab shows them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    read = lambda d: EventAccumulator(os.path.join(d, "tensorboard"), size_guidance={"images": 0}).Reload()  # noqa: E731
    dit_events = read(tiny_run["dit_dir"])
    assert {"loss", "grad_norm", "learning_rate", "steps_per_s", "tokens_per_s"} <= set(dit_events.Tags()["scalars"])
    rows = [r for r in _rows(tiny_run["dit_dir"]) if "loss" in r]
    assert [e.step for e in dit_events.Scalars("loss")] == [r["step"] for r in rows]
    np.testing.assert_allclose([e.value for e in dit_events.Scalars("loss")], [r["loss"] for r in rows], rtol=1e-6)
    ae_events = read(tiny_run["ae_dir"])
    assert {"loss", "learning_rate", "psnr/5x16x16"} <= set(ae_events.Tags()["scalars"])  # evaluation too
    logger = training.Logger(str(tmp_path), 0)
    clip = np.zeros((5, 16, 24, 3), np.uint8)
    clip[:, 4:8, 4:8, 0] = 200
    logger.video(3, "samples/5x16x24/a red square", clip)
    logger.video(3, "samples/1x16x24/an image", clip[:1])
    logger.close()
    events = read(str(tmp_path))
    gif, png = (events.Images(t)[0] for t in ("samples/5x16x24/a red square", "samples/1x16x24/an image"))
    assert gif.encoded_image_string.startswith(b"GIF8") and (gif.width, gif.height, gif.step) == (24, 16, 3)
    assert png.encoded_image_string.startswith(b"\x89PNG")


def test_logger_on_resume_drops_later_rows_and_a_cut_line(tmp_path):
    with open(tmp_path / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 6))
        f.write('{"step": 6, "lo')  # a kill mid-write
    logger = training.Logger(str(tmp_path), start=3)
    logger.log(4, loss=0.5)
    assert [(r["step"], r["loss"]) for r in _rows(tmp_path)] == [(1, 1.0), (2, 0.5), (3, 1 / 3), (4, 0.5)]


def test_rerun_resumes_from_the_last_step(tiny_run, tmp_path):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    workdir = str(tmp_path / "dit")
    shutil.copytree(tiny_run["dit_dir"], workdir)
    old_steps = cfg.train.steps
    cfg.train.steps = old_steps + 2
    train_dit.train(cfg, workdir, devices=ONE)
    steps = [r["step"] for r in _rows(workdir)]
    assert steps == list(range(1, old_steps + 3))  # the old rows, then exactly the new steps
    assert _steps_on_disk(workdir)[-1] == old_steps + 2


def test_a_rerun_that_trains_another_run_does_not_resume_the_old_one(tiny_run, tmp_path):
    """Resuming continues the run a workdir holds; a command that would train something else
    there (other data, another diffusion setting) is refused in one line, before any work."""
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    training.check_same_run(cfg, "dit", tiny_run["dit_dir"])  # the same command: it resumes
    cfg.train.update(steps=100, lr=1e-5, log_every=7)  # longer, slower, logged otherwise: the same run
    cfg.sample.steps = 9
    training.check_same_run(cfg, "dit", tiny_run["dit_dir"])
    cfg.data.mixture, cfg.diffusion.logit_mean = "5x16x16", 1.0
    with pytest.raises(ValueError, match=r"/dit holds another run, at step 6 \(data\.mixture '5x16x16:3,1x16x32:1' there, "
                                         r"'5x16x16' here; diffusion\.logit_mean 0\.0 there, 1\.0 here\): rerun its "
                                         r"command to resume it, or give this one a new --workdir$"):
        train_dit.train(cfg, tiny_run["dit_dir"], devices=ONE)
    with pytest.raises(checkpoint.CheckpointError, match="holds an autoencoder"):
        training.check_same_run(cfg, "dit", tiny_run["ae_dir"])
    training.check_same_run(cfg, "dit", str(tmp_path / "new"))  # nothing there: a new run
    ae_cfg = tiny_run["cfg"].copy_and_resolve_references()
    ae_cfg.ae_train.kl_weight *= 10
    with pytest.raises(ValueError, match=r"/ae holds another run, at step \d+ \(ae_train\.kl_weight"):
        train_autoencoder.train_autoencoder(ae_cfg, tiny_run["ae_dir"], devices=ONE)


def test_non_finite_loss_stops_with_one_line_and_keeps_the_last_finite_checkpoint(tiny_run, tmp_path):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    workdir = str(tmp_path / "dit")
    shutil.copytree(tiny_run["dit_dir"], workdir)
    last_good = _steps_on_disk(workdir)[-1]
    cfg.train.steps, cfg.train.lr, cfg.train.warmup = last_good + 6, 1e9, 0  # diverges at once
    with pytest.raises(FloatingPointError, match=r"^non-finite loss or grad_norm at step \d+ \(1 such steps, "
                                                 r"nonfinite_skips=0\): .*lower --config.train.lr"):
        train_dit.train(cfg, workdir, devices=ONE)
    assert _steps_on_disk(workdir)[-1] == last_good
    step, model, state = _restore_dit_run(workdir, cfg)
    assert step == last_good
    assert all(np.isfinite(x).all() for x in jax.tree.leaves((model, state)))


def _poison_latents(workdir):
    """Make every training latent NaN: from now on every step's loss is non-finite."""
    for name in os.listdir(os.path.join(workdir, "latents")):
        if not name.startswith("captions"):
            path = os.path.join(workdir, "latents", name)
            encoded = dict(np.load(path))
            encoded["latent"][:] = np.nan
            np.savez(path, **encoded)


def test_non_finite_steps_are_skipped_up_to_the_limit_and_counted(tiny_run, tmp_path):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    workdir = str(tmp_path / "dit")
    shutil.copytree(tiny_run["dit_dir"], workdir)
    _poison_latents(workdir)
    start = _steps_on_disk(workdir)[-1]
    _, _, before = _restore_dit_run(workdir, cfg)
    cfg.train.steps, cfg.train.nonfinite_skips = start + 6, 6
    train_dit.train(cfg, workdir, devices=ONE)
    new = _rows(workdir)[-6:]
    assert [r["step"] for r in new] == list(range(start + 1, start + 7))
    assert [r["nonfinite_steps"] for r in new] == [1, 2, 3, 4, 5, 6] and all(r["loss"] is None for r in new)
    step, _, after = _restore_dit_run(workdir, cfg)
    assert step == start + 6  # saved: every skipped step left the state as it was
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b)
    assert int(after["progress"]["nonfinite"]) == 6 and int(after["progress"]["data_step"]) == start + 6

    cfg.train.steps, cfg.train.nonfinite_skips = start + 12, 8  # 6 counted already: the 3rd new one is too many
    with pytest.raises(FloatingPointError, match=rf"^non-finite loss or grad_norm at step {start + 9} "
                                                 r"\(9 such steps, nonfinite_skips=8\)"):
        train_dit.train(cfg, workdir, devices=ONE)
    assert _steps_on_disk(workdir)[-1] == start + 6


def test_unreadable_newest_checkpoint_warns_and_training_resumes_from_the_previous_one(tiny_run, tmp_path):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    workdir = str(tmp_path / "dit")
    shutil.copytree(tiny_run["dit_dir"], workdir)
    original = {r["step"]: r for r in _rows(workdir)}
    previous, newest = _steps_on_disk(workdir)[-2:]
    chunks = os.path.join(workdir, "checkpoints", str(newest), "train", "ocdbt.process_0", "d")
    largest = max((os.path.join(chunks, f) for f in os.listdir(chunks)), key=os.path.getsize)  # surely array data
    os.remove(largest)
    with pytest.warns(UserWarning, match=rf"checkpoint step {newest} in .* is unreadable"):
        train_dit.train(cfg, workdir, devices=ONE)
    rows = _rows(workdir)
    assert [r["step"] for r in rows] == list(range(1, cfg.train.steps + 1))  # the redone steps replace their rows
    for r in rows[previous:]:  # resumed exactly: the same losses as the first time through these steps
        np.testing.assert_allclose(r["loss"], original[r["step"]]["loss"], rtol=1e-6)
    step, model, _ = _restore_dit_run(workdir, cfg)
    assert step == newest and all(np.isfinite(x).all() for x in jax.tree.leaves(model))


@pytest.mark.parametrize("key,value,message", [
    ("ae_train.decoder_steps", -1, "ae_train.decoder_steps must be an integer >= 0; got -1"),
    ("ae_train.batch_size", 0, "ae_train.batch_size must be an integer >= 1; got 0"),
    ("ae_train.lr", float("nan"), "ae_train.lr must be a finite number; got nan"),
    ("train.steps", -5, "train.steps must be an integer >= 1; got -5"),
    ("train.batch_size", 0, "train.batch_size must be an integer >= 1; got 0"),
    ("train.lr", float("nan"), "train.lr must be a finite number; got nan"),
    ("train.ema_decay", 1.5, "train.ema_decay must be a number between 0 and 1; got 1.5"),
    ("train.nonfinite_skips", -1, "train.nonfinite_skips must be an integer >= 0; got -1"),
    ("train.distill_pairs", -1, "train.distill_pairs must be an integer >= 0; got -1"),
    ("keep_checkpoints", 0, "keep_checkpoints must be an integer >= 1; got 0"),
])
def test_bad_training_settings_are_one_line_naming_the_key(tiny_run, key, value, message):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    section, _, name = key.rpartition(".")
    (cfg[section] if section else cfg)[name] = value
    train = train_autoencoder.train_autoencoder if section == "ae_train" else train_dit.train
    with pytest.raises((ValueError, TypeError)) as e:
        train(cfg, "/nonexistent")
    assert str(e.value) == message


def test_init_from_starts_at_a_models_weights_with_new_inputs_at_zero(tiny_run, tmp_path, capsys):
    """Fine-tuning from a model: its weights (raw and EMA) are where training starts, its
    autoencoder comes along, and weights it lacks (an older model's frames input) stay zero."""
    source = str(tmp_path / "source")
    shutil.copytree(tiny_run["dit_dir"], source)
    _, _, arrays = checkpoint.load_arrays(checkpoint.directory(source), ("dit",))
    del arrays["dit"]["frames_embed"]  # a text-to-video model from before frames conditioning
    model = build_dit(tiny_run["cfg"])
    assert checkpoint.fill(model, arrays["dit"], source) == ["frames_embed.kernel"]
    assert not np.asarray(model.frames_embed.kernel[...]).any()
    np.testing.assert_array_equal(model.x_embed.kernel[...], arrays["dit"]["x_embed"]["kernel"]["value"])
    arrays["dit"]["x_embed"]["kernel"]["value"] = np.zeros((3, 3))
    with pytest.raises(checkpoint.CheckpointError, match=r"x_embed.kernel has shape \(3, 3\)"):
        checkpoint.fill(model, arrays["dit"], source)

    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.train.update(autoencoder="", init_from=tiny_run["dit_dir"], steps=2)  # (step 0's warmup lr is 0)
    # ... and with frames given: every kind, encoded inside the step.
    cfg.train.conditions.update(first_frame=1.0, head=1.0, tail=1.0, first_last=1.0, keyframes=1.0)
    train_dit.train(cfg, str(tmp_path / "tuned"), devices=ONE)
    assert f"initialised from {tiny_run['dit_dir']}" in capsys.readouterr().out
    _, _, tuned = checkpoint.load_arrays(checkpoint.directory(str(tmp_path / "tuned")), ("dit",))
    _, _, start = checkpoint.load_arrays(checkpoint.directory(tiny_run["dit_dir"]), ("dit",))
    for a, b in zip(jax.tree.leaves(tuned["ae"]), jax.tree.leaves(start["ae"]), strict=True):
        np.testing.assert_array_equal(a, b)  # the model's own autoencoder
    kernel = lambda arrays: np.asarray(arrays["dit"]["x_embed"]["kernel"]["value"])  # noqa: E731
    step = np.abs(kernel(tuned) - kernel(start))
    assert 0 < step.max() < 0.01  # one small step (EMA) away from the source, not a fresh init
    assert np.abs(np.asarray(tuned["dit"]["frames_embed"]["kernel"]["value"])).max() > 0  # the frames input trains


@pytest.mark.parametrize("weights,message", [
    (dict(none=-1.0), "train.conditions weights must be >= 0 with a positive sum"),
    (dict(none=0.0, first_frame=0.0, head=0.0, tail=0.0, first_last=0.0, keyframes=0.0), "positive sum"),
])
def test_bad_condition_weights_are_a_one_line_error(tiny_run, weights, message):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.train.conditions.update(weights)
    with pytest.raises(ValueError, match=message):
        train_dit.train(cfg, "/nonexistent")


def test_per_shape_compiles_once_per_named_shape(capsys):
    from sora_lite import sharding

    mesh = sharding.make_mesh(ConfigDict(dict(data=1, fsdp=1, tensor=1, sequence=1)), jax.devices()[:1])
    step = training.PerShape(jax.jit(lambda x: 2 * x), mesh)
    for n in (3, 5, 3, 5, 3):
        np.testing.assert_array_equal(step(f"{n}x", np.ones(n, np.float32)), 2 * np.ones(n))
    assert list(step.compiled) == ["3x", "5x"]
    assert step.summary().startswith("2 compiled steps, one per shape, ") and "3x " in step.summary()
    assert capsys.readouterr().out.count("compiled the step for") == 2


def test_latent_cache_is_keyed_by_the_autoencoder_and_the_data(tiny_run, tmp_path):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    ae = autoencoder.load_autoencoder(tiny_run["ae_dir"])
    entry = data.mixture(cfg.data)[0]
    first = train_dit.encode_latents(ae, cfg, entry, str(tmp_path))
    np.testing.assert_array_equal(train_dit.encode_latents(ae, cfg, entry, str(tmp_path))["latent"], first["latent"])
    cfg.data.train_size += 64  # other data: encoded anew, not read from the cache
    assert len(train_dit.encode_latents(ae, cfg, entry, str(tmp_path))["latent"]) > len(first["latent"])
    ae.latent_shift[...] += 1.0  # other autoencoder weights, same config and path: encoded anew
    again = train_dit.encode_latents(ae, cfg, entry, str(tmp_path))
    assert len(os.listdir(tmp_path / "latents")) == 3 and not np.allclose(again["latent"][:8], first["latent"][:8])


def test_the_caption_table_reads_long_captions_whole(tmp_path):
    from sora_lite.text import TextEncoder

    rows = [["a red ball moving left", "a red ball " + "and more " * 12 + "moving left"]]  # 2nd: 31 tokens
    table = train_dit.caption_table(TextEncoder(16), rows, str(tmp_path))
    assert table["text"].shape == (1, 2, 32, 384) and table["null_text"].shape == (32, 384)
    np.testing.assert_array_equal(table["mask"].sum(-1), [[7, 31]])
    assert table["null_mask"].sum() == 2
    short = train_dit.caption_table(TextEncoder(16), [rows[0][:1]], str(tmp_path))
    assert short["text"].shape == (1, 1, 16, 384)  # its own cache entry, at the model's max_len


def test_autoencoder_init_from_and_base_together_is_a_one_line_error(tiny_run):
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.ae_train.update(init_from=tiny_run["ae_dir"], base=tiny_run["ae_dir"])
    with pytest.raises(ValueError, match=r"^ae_train.init_from and ae_train.base are both set: .*give one of them$"):
        train_autoencoder.train_autoencoder(cfg, "/nonexistent")
