"""Tests for `sora-lite generate`'s saved programs: the Pipeline's video bit for bit, a later
process that builds no model, and entries that are traced again when the model changed or
cannot be read."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sora_lite import Pipeline, cache_dir, programs

REQUEST = dict(num_frames=5, height=16, width=16, steps=2)


def _entries():
    folder = os.path.join(cache_dir(), "programs")
    return set(os.listdir(folder)) if os.path.isdir(folder) else set()


def test_a_saved_program_makes_the_pipelines_video_and_a_later_process_builds_no_model(tiny_run, tmp_path):
    video, read = programs.generate(tiny_run["dit_dir"], "a crimson circle moving left", seed=3, **REQUEST)
    pipe = Pipeline.from_pretrained(tiny_run["dit_dir"])
    np.testing.assert_array_equal(video, pipe.generate(["a crimson circle moving left"], seed=3, **REQUEST))
    assert [read] == pipe.read(["a crimson circle moving left"]) == ["a red circle moving left"]
    assert video.shape == (1, 5, 16, 16, 3) and video.dtype == np.uint8
    long = "a crimson circle " + "on a plain black background " * 3 + "moving left"  # past text.max_len
    np.testing.assert_array_equal(programs.generate(tiny_run["dit_dir"], long, seed=3, **REQUEST)[0],
                                  pipe.generate([long], seed=3, **REQUEST))

    code = (f"import sys, numpy as np; from sora_lite import programs; "
            f"v, _ = programs.generate({tiny_run['dit_dir']!r}, 'a crimson circle moving left', seed=3, **{REQUEST!r}); "
            f"np.save({str(tmp_path / 'v.npy')!r}, v); "
            f"print(sorted(m for m in ('flax', 'orbax', 'optax', 'tensorflow_datasets', 'sora_lite.pipeline') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out  # nothing that builds or restores a model was imported
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), video)


def test_requests_share_the_models_weights_and_a_changed_model_or_unreadable_entry_is_traced_again(
        tiny_run, tmp_path):
    model = str(tmp_path / "dit")
    shutil.copytree(tiny_run["dit_dir"], model)
    before = _entries()
    first, _ = programs.generate(model, "a blue square moving up", **REQUEST)
    programs.generate(model, "a blue square", **{**REQUEST, "num_frames": 1})
    saved = programs._model_key(model)  # by name: the other worker may be saving programs of its own
    assert saved in _entries() - before
    folder = os.path.join(cache_dir(), "programs", saved)
    assert sorted(os.listdir(folder))[-1] == "weights.safetensors" and len(os.listdir(folder)) == 3  # 2 programs

    metrics = os.path.join(model, "metrics.jsonl")  # any file of the model folder counts
    os.utime(metrics, ns=(os.stat(metrics).st_atime_ns, os.stat(metrics).st_mtime_ns + 10**9))
    assert np.array_equal(programs.generate(model, "a blue square moving up", **REQUEST)[0], first)
    changed = programs._model_key(model)
    assert changed != saved and changed in _entries() - before

    folder = os.path.join(cache_dir(), "programs", changed)
    (request,) = [name for name in os.listdir(folder) if name != "weights.safetensors"]
    with open(os.path.join(folder, request, "program.bin"), "r+b") as f:
        f.truncate(100)
    with pytest.warns(UserWarning, match="is unreadable .* tracing it again"):
        again, _ = programs.generate(model, "a blue square moving up", **REQUEST)
    np.testing.assert_array_equal(again, first)
    assert os.path.getsize(os.path.join(folder, request, "program.bin")) > 100  # saved anew


def test_every_program_is_cached_unless_jax_is_told_a_minimum_compile_time(monkeypatch):
    """A cold `sora-lite generate` pays for each program it compiles, so all are cached; JAX's own
    variable sets a minimum (the tests set one: see conftest)."""
    import jax

    import sora_lite

    before = jax.config.jax_persistent_cache_min_compile_time_secs
    try:
        monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
        sora_lite.enable_compilation_cache()
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
        monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1.5")
        sora_lite.enable_compilation_cache()
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 1.5
        assert jax.config.jax_compilation_cache_dir == cache_dir()
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before)
