"""Tests for sora_lite.pipeline on the session's tiny run: generate, determinism, input errors."""

import os
import re
import shutil
import warnings

import numpy as np
import pytest

from sora_lite import Pipeline, diffusion, pipeline, sharding, sizing
from sora_lite.checkpoint import CheckpointError
from sora_lite.dit import SIZES
from sora_lite.sizing import num_tokens

PROMPTS = ["a red circle moving left", "a blue square moving up"]


@pytest.fixture(scope="module")
def pipe(tiny_run):
    return Pipeline.from_pretrained(tiny_run["dit_dir"])


def test_generate_shape_dtype_and_determinism(pipe):
    video = pipe.generate(PROMPTS, num_frames=5, height=16, width=16, seed=0)
    assert video.shape == (2, 5, 16, 16, 3) and video.dtype == np.uint8
    np.testing.assert_array_equal(pipe.generate(PROMPTS, num_frames=5, height=16, width=16, seed=0), video)
    other = pipe.generate(PROMPTS, num_frames=5, height=16, width=16, seed=1)
    assert not np.array_equal(other, video)
    assert not np.array_equal(video[0], video[1])  # each prompt gets its own noise
    one = pipe.generate(PROMPTS[0], num_frames=5, height=16, width=16, seed=0)  # a str is one prompt
    assert one.shape == (1, 5, 16, 16, 3)


def test_sizes_default_to_the_models_first_mixture_shape(pipe):
    assert pipe.default_shape == (5, 16, 16)  # configs/tiny.py's mixture starts with 5x16x16
    assert pipe.generate(PROMPTS[:1], seed=0).shape == (1, 5, 16, 16, 3)


def test_images_and_other_aspect_ratios(pipe):
    image = pipe.generate(["a red circle"], num_frames=1, height=16, width=32, seed=0)
    assert image.shape == (1, 1, 16, 32, 3) and image.dtype == np.uint8
    assert pipe.generate(PROMPTS[:1], num_frames=9, height=32, width=16, seed=0).shape == (1, 9, 32, 16, 3)


def test_sample_shift_warps_the_grid_and_old_checkpoints_sample_without_it(tiny_run, monkeypatch):
    pipe = Pipeline.from_pretrained(tiny_run["dit_dir"])  # its own: the test edits its config
    resolution = diffusion.timestep_shift(num_tokens(pipe.cfg, 5, 16, 16), pipe.cfg.diffusion.base_tokens)
    shifts = []
    sample = pipeline._sample
    monkeypatch.setattr(pipeline, "_sample", lambda *a: shifts.append(a[8]) or sample(*a))  # (..., shift, start)
    del pipe.cfg.sample["shift"]  # as a checkpoint written before the key
    pipe.generate(PROMPTS[:1], steps=2, seed=0)
    pipe.cfg.sample.shift = 4.0
    pipe.generate(PROMPTS[:1], steps=2, seed=0)
    assert shifts == [resolution, 4 * resolution]
    pipe.cfg.sample.shift = 0.0
    with pytest.raises(ValueError, match=r"^sample.shift must be a number >= 0.001; got 0.0$"):
        pipe.generate(PROMPTS[:1], steps=2, seed=0)


def test_sampling_sizes_halve_a_large_frame_and_double_a_small_image():
    from configs import shapes

    cfg = shapes.get_config()  # refine_above and supersample_below 2304: 48x48 frames sample in one go
    assert sizing.sampling_sizes(cfg, 17, 48, 48) == [(17, 48, 48)]
    assert sizing.sampling_sizes(cfg, 17, 32, 32) == [(17, 32, 32)]  # videos: at the size asked
    assert sizing.sampling_sizes(cfg, 1, 32, 32) == [(1, 32, 32), (1, 64, 64)]  # made at 64x64, via 32x32
    assert sizing.sampling_sizes(cfg, 1, 16, 24) == [(1, 32, 48), (1, 64, 96)]  # averaged 4x4 pixels
    assert sizing.sampling_sizes(cfg, 1, 48, 48) == [(1, 48, 48)]
    assert sizing.sampling_sizes(cfg, 17, 64, 64) == [(17, 32, 32), (17, 64, 64)]
    assert sizing.sampling_sizes(cfg, 1, 128, 256) == [(1, 32, 64), (1, 64, 128), (1, 128, 256)]
    assert sizing.sampling_sizes(cfg, 17, 64, 72) == [(17, 64, 72)]  # 36 is no multiple of 8
    cfg.sample.update(refine_above=0, supersample_below=0)
    assert sizing.sampling_sizes(cfg, 17, 128, 128) == [(17, 128, 128)]
    assert sizing.sampling_sizes(cfg, 1, 32, 32) == [(1, 32, 32)]


def test_a_refined_size_is_the_programs_video_and_drawn_over_at_strength_one(tiny_run, pipe, tmp_path):
    """The tiny model exported to sample frames above 8x8 at half size first: the saved program
    of `sora-lite generate` makes the Pipeline's video; frames as prompts sample in one go; at
    strength 1 the refined size draws over the half size's video (the one-go video)."""
    from ml_collections import ConfigDict

    from sora_lite import checkpoint, programs

    out = str(tmp_path / "refining")
    sample = ConfigDict(dict(pipe.cfg.sample, refine_above=64, refine_strength=0.5))
    checkpoint.export(checkpoint.directory(tiny_run["dit_dir"]), out, sample)
    refining = Pipeline.from_pretrained(out)
    assert sizing.sampling_sizes(refining.cfg, 5, 16, 16) == [(5, 8, 8), (5, 16, 16)]
    video = refining.generate(PROMPTS, 5, 16, 16, seed=0)
    one_go = pipe.generate(PROMPTS, 5, 16, 16, seed=0)
    assert np.abs(video.astype(int) - one_go.astype(int)).mean() > 5
    program, _ = programs.generate(out, PROMPTS[0], num_frames=5, height=16, width=16, seed=0)
    np.testing.assert_array_equal(program, video[:1])
    given = refining.image_to_video(PROMPTS, video[:, 0], 5, seed=0)
    np.testing.assert_array_equal(given, pipe.image_to_video(PROMPTS, video[:, 0], 5, seed=0))
    refining.cfg.sample.refine_strength = 1.0
    drawn_over = refining.generate(PROMPTS, 5, 16, 16, seed=0)
    assert np.abs(drawn_over.astype(int) - one_go.astype(int)).max() <= 1


def test_a_small_image_is_made_at_twice_its_size_and_averaged_down(tiny_run, pipe, tmp_path):
    """The tiny model exported to supersample images under 16x16: an 8x8 image is the 16x16 one
    of the same seed, averaged over 2x2 pixels, in the Pipeline and in the saved program;
    videos are sampled at the size asked."""
    from ml_collections import ConfigDict

    from sora_lite import checkpoint, programs

    out = str(tmp_path / "supersampling")
    checkpoint.export(checkpoint.directory(tiny_run["dit_dir"]), out,
                      ConfigDict(dict(pipe.cfg.sample, supersample_below=16 * 16)))
    supersampling = Pipeline.from_pretrained(out)
    image = supersampling.generate(PROMPTS, 1, 8, 8, seed=0)  # [B, 1, 8, 8, 3]
    averaged = pipe.generate(PROMPTS, 1, 16, 16, seed=0).reshape(2, 1, 8, 2, 8, 2, 3).mean((3, 5))
    assert image.shape == (2, 1, 8, 8, 3) and np.abs(image - averaged).max() <= 1  # uint8 rounding apart
    assert np.abs(image.astype(int) - pipe.generate(PROMPTS, 1, 8, 8, seed=0)).mean() > 5
    program, _ = programs.generate(out, PROMPTS[0], num_frames=1, height=8, width=8, seed=0)
    np.testing.assert_array_equal(program, image[:1])
    np.testing.assert_array_equal(supersampling.generate(PROMPTS, 5, 8, 8, seed=0),
                                  pipe.generate(PROMPTS, 5, 8, 8, seed=0))


def test_a_refined_video_keeps_the_half_sizes_layout():
    """The shipped model at 17x64x64 (sampled at 32x32 first): nearer the half size's video,
    upsampled, than the same noise sampled in one go is."""
    pipe = Pipeline.from_pretrained()
    assert sizing.sampling_sizes(pipe.cfg, 17, 64, 64) == [(17, 32, 32), (17, 64, 64)]
    video = pipe.generate(PROMPTS[:1], 17, 64, 64, seed=0)
    half = pipeline._resize(pipe.generate(PROMPTS[:1], 17, 32, 32, seed=0), 64, 64)
    pipe.cfg.sample.refine_above = 0
    one_go = pipe.generate(PROMPTS[:1], 17, 64, 64, seed=0)
    error = lambda a: np.abs(a.astype(int) - half.astype(int)).mean()  # noqa: E731
    assert error(video) < error(one_go) / 2, (error(video), error(one_go))


def test_an_autoencoder_workdir_is_not_a_model(tiny_run):
    with pytest.raises(CheckpointError, match=r"holds an autoencoder; expected a DiT model") as e:
        Pipeline.from_pretrained(tiny_run["ae_dir"])
    assert "\n" not in str(e.value)


def test_from_checkpoint_dir_or_workdir(tiny_run, pipe):
    direct = Pipeline.from_pretrained(os.path.join(tiny_run["dit_dir"], "checkpoints"))
    assert direct.cfg == pipe.cfg and direct.cfg.dit.size == "tiny"


@pytest.mark.parametrize("kwargs,constraint", [
    (dict(num_frames=6), "frames must be 1 + 4k"),
    (dict(height=12), "height and width must be positive multiples of 8"),
    (dict(width=0), "width must be an integer >= 1; got 0"),
    (dict(steps=0), "steps must be an integer between 1 and 1000; got 0"),
    (dict(guidance=float("nan")), "guidance must be a finite number; got nan"),
    (dict(guidance=float("inf")), "guidance must be a finite number; got inf"),
    (dict(prompts=[""]), "prompts[0] is empty"),
    (dict(prompts=["a red circle moving left", "  "]), "prompts[1] is empty"),
    (dict(prompts=[]), "prompts is empty"),
    (dict(prompts=None), "prompts must be a string or a list of strings; got None"),
    (dict(prompts=[3]), "prompts[0] must be a string; got 3 (int)"),
    (dict(num_frames=5.0), "num_frames must be an integer; got 5.0 (float)"),
    (dict(num_frames="5"), "num_frames must be an integer; got '5' (str)"),
    (dict(seed="a"), "seed must be an integer; got 'a' (str)"),
    (dict(seed=-1), "seed must be an integer between 0 and 4294967295; got -1"),
    (dict(num_frames=100001), "need about"),  # refused before anything is allocated
    (dict(height=80000, width=80000), "need about"),
])
def test_bad_input_raises_one_line_error(pipe, kwargs, constraint):
    args = dict(prompts=PROMPTS[:1], num_frames=5, height=16, width=16, seed=0) | kwargs
    with pytest.raises((ValueError, TypeError), match=re.escape(constraint)) as e:
        pipe.generate(**args)
    assert "\n" not in str(e.value)


def test_a_refused_size_says_what_it_needs_and_the_process_goes_on(pipe):
    with pytest.raises(ValueError, match=r"1 video\(s\) of 17x80000x80000 \(500,000,000 tokens each\) need about "
                                         r"[\d,.]+ GiB to sample, and the device has [\d,.]+ GiB: ask for at most"):
        pipe.generate(PROMPTS[:1], num_frames=17, height=80000, width=80000)
    assert pipe.generate(PROMPTS[:1], num_frames=5, height=16, width=16).shape == (1, 5, 16, 16, 3)


def test_the_memory_estimate_counts_attention_scores_only_where_xla_computes_them(pipe, monkeypatch):
    """On a CPU (XLA's attention) float32 scores [2, heads, N, N] dominate; under cuDNN's flash
    attention (GPUs, bf16) there are none, so a long video is not refused for them."""
    n, heads = num_tokens(pipe.cfg, 17, 256, 256), SIZES[pipe.cfg.dit.size].heads
    xla = sizing.sampling_bytes(pipe.cfg, 2, 17, 256, 256)
    monkeypatch.setattr(sharding, "attention_kernel", lambda dtype, head_dim: "cudnn")
    assert xla - sizing.sampling_bytes(pipe.cfg, 2, 17, 256, 256) == 2 * (2 * heads * n * n * 4)


def test_frames_as_prompts_shapes_determinism_and_inputs(pipe):
    clip = pipe.generate(PROMPTS, num_frames=9, height=16, width=16, seed=0)  # [2, 9, 16, 16, 3]
    runs = {
        "image_to_video": lambda seed: pipe.image_to_video(PROMPTS, clip[:, 0], num_frames=9, seed=seed),
        "extend": lambda seed: pipe.extend(PROMPTS, clip[:, :3], num_frames=9, seed=seed),
        "extend_backward": lambda seed: pipe.extend(PROMPTS, clip[:, -2:], num_frames=5, backward=True, seed=seed),
        "connect": lambda seed: pipe.connect(PROMPTS, clip[:, 0], clip[:, -2:], num_frames=9, seed=seed),
        "interpolate": lambda seed: pipe.interpolate(PROMPTS, clip[:, [0, 4, 8]], num_frames=9, seed=seed),
        "edit": lambda seed: pipe.edit(PROMPTS[::-1], clip, seed=seed),
    }
    frames = {"extend_backward": 5}
    for name, run in runs.items():
        out = run(0)
        assert out.shape == (2, frames.get(name, 9), 16, 16, 3) and out.dtype == np.uint8, name
        np.testing.assert_array_equal(run(0), out, err_msg=name)
    assert not np.array_equal(runs["edit"](1), runs["edit"](0))
    story = pipe.story(PROMPTS, frames_per_scene=5, seed=0)
    assert story.shape == (1, 10, 16, 16, 3)
    np.testing.assert_array_equal(story[:, :5], pipe.generate(PROMPTS[:1], 5, 16, 16, seed=0))  # scene 0
    bigger = pipe.image_to_video(PROMPTS, clip[:, 0], num_frames=5, height=32, width=24)  # inputs resized
    assert bigger.shape == (2, 5, 32, 24, 3)


def test_edit_at_low_strength_keeps_the_video():
    """SDEdit on the shipped model: a little noise changes little; strength 1 ignores the video."""
    pipe = Pipeline.from_pretrained()
    video = pipe.generate(PROMPTS[:1], seed=0)
    near = pipe.edit(PROMPTS[:1], video, strength=0.05, seed=1)
    far = pipe.edit(PROMPTS[:1], video, strength=1.0, seed=1)
    error = lambda a: np.abs(a.astype(int) - video.astype(int)).mean()  # noqa: E731
    assert error(near) < 2 < error(far)
    np.testing.assert_array_equal(far, pipe.generate(PROMPTS[:1], seed=1))  # from pure noise: text-to-video


@pytest.mark.parametrize("call,constraint", [
    (lambda p, v: p.image_to_video(PROMPTS, v[:, 0].astype(np.float32)), "image must be a uint8 numpy array"),
    (lambda p, v: p.image_to_video(PROMPTS, v), "image must be [B, H, W, 3] with no empty axis; got shape (2, 5, 16, 16, 3)"),
    (lambda p, v: p.image_to_video(PROMPTS[:1], v[:, 0]), "image has 2 rows for 1 prompts"),
    (lambda p, v: p.image_to_video(PROMPTS, v[:, 0], num_frames=8), "frames must be 1 + 4k"),
    (lambda p, v: p.image_to_video(PROMPTS, v[:, 0, :12]), "height and width must be positive multiples of 8"),
    (lambda p, v: p.extend(PROMPTS, v, num_frames=5), "fewer given frames than num_frames=5; got 5"),
    (lambda p, v: p.connect(PROMPTS, v[:, :3], v[:, :2], num_frames=5), "leave frames between them"),
    (lambda p, v: p.connect(PROMPTS, v[:, 0], v[:, 0, :8]), "given frames must share one size"),
    (lambda p, v: p.interpolate(PROMPTS, v[:, :1], num_frames=5), "2 to num_frames=5 keyframes; got 1"),
    (lambda p, v: p.edit(PROMPTS, v, strength=0.0), "strength must be in (0, 1]; got 0.0"),
    (lambda p, v: p.edit(PROMPTS, v, strength=1.5), "strength must be in (0, 1]; got 1.5"),
    (lambda p, v: p.edit(PROMPTS, v, strength="0.5"), "strength must be a number; got '0.5' (str)"),
    (lambda p, v: p.extend(PROMPTS, v, num_frames=9.0), "num_frames must be an integer; got 9.0"),
    (lambda p, v: p.interpolate(PROMPTS, v[:, :0]), "keyframes must be [B, K, H, W, 3] with no empty axis"),
    (lambda p, v: p.story(PROMPTS, frames_per_scene=None), "frames_per_scene must be an integer; got None"),
    (lambda p, v: p.story(PROMPTS, frames_per_scene=6), "frames must be 1 + 4k"),
])
def test_frames_as_prompts_bad_input_raises_one_line_error(pipe, call, constraint):
    video = pipe.generate(PROMPTS, num_frames=5, height=16, width=16, seed=0)
    with pytest.raises((ValueError, TypeError), match=re.escape(constraint)) as e:
        call(pipe, video)
    assert "\n" not in str(e.value)


def test_a_long_prompt_is_read_whole(pipe):
    """Past `text.max_len` tokens a prompt is padded longer, not cut: truncated, these two would
    read the same 16 tokens and make the same video."""
    a, b = ("a red circle " + "and more " * 20 + ending for ending in ("moving left", "moving up"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        videos = pipe.generate([a, b, "a red circle moving left"], num_frames=5, height=16, width=16, seed=0)
    assert videos.shape == (3, 5, 16, 16, 3) and not np.array_equal(videos[0], videos[1])


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Pipeline.from_pretrained(str(tmp_path / "nowhere"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="does not exist"):  # it has no checkpoints/ and no steps
        Pipeline.from_pretrained(str(tmp_path / "empty"))


def _corrupt_copy(tiny_run, tmp_path, items):
    d = str(tmp_path / "broken")
    shutil.copytree(os.path.join(tiny_run["dit_dir"], "checkpoints"), d)
    steps = [n for n in os.listdir(d) if n.isdigit()]
    assert steps
    for step in steps:
        for item in items:
            for root, _, files in os.walk(os.path.join(d, step, item)):
                for name in files:
                    with open(os.path.join(root, name), "wb") as f:
                        f.write(b"\x00garbage")
    return d


@pytest.mark.parametrize("items", [("model",), ("config", "model", "train")])
def test_corrupt_checkpoint(tiny_run, tmp_path, items):
    d = _corrupt_copy(tiny_run, tmp_path, items)
    with pytest.warns(UserWarning, match="unreadable"):
        with pytest.raises(CheckpointError, match="no readable checkpoint"):
            Pipeline.from_pretrained(d)


def test_generate_on_a_mesh_splits_prompts_and_tokens_and_matches_one_device(monkeypatch):
    """The shipped model on 8 devices: prompts over data=2, each video's 80 tokens over sequence=4."""
    import jax
    from ml_collections import ConfigDict

    from sora_lite import sharding

    traced = []
    ulysses = sharding._ulysses
    monkeypatch.setattr(sharding, "_ulysses", lambda *a: traced.append(a[0].shape) or ulysses(*a))
    mesh = sharding.make_mesh(ConfigDict(dict(data=2, fsdp=1, tensor=1, sequence=4)))
    prompts = ["a red circle moving left", "a blue square moving up", "a cyan triangle moving down"]
    pipe = Pipeline.from_pretrained(mesh=mesh)
    assert pipe.dit.blocks.attn.q.kernel[...].sharding.mesh == mesh
    sharded = pipe.generate(prompts, seed=0)  # 3 prompts: padded to 4 for data=2, then cut back
    assert traced and traced[0][1] == 80 // 4  # per device: its quarter of the tokens, inside shard_map
    reference = Pipeline.from_pretrained().generate(prompts, seed=0)
    assert sharded.shape == reference.shape == (3, 17, 32, 32, 3)
    diff = np.abs(sharded.astype(int) - reference.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.01, (diff.max(), diff.mean())
    assert len(jax.devices()) == 8
