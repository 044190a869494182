"""Tests for sora_lite.checkpoint: round trip, errors, fallback past a corrupt step, tmp leftovers."""

import os
import shutil

import jax
import numpy as np
import pytest
from flax import nnx
from ml_collections import ConfigDict

from sora_lite import checkpoint as ck
from sora_lite.checkpoint import abstract_state

CFG = ConfigDict(dict(name="tiny", patch=(1, 2, 2), nested=dict(widths=(8, 16), lr=1e-3)))


def _model(seed):
    return nnx.Linear(3, 4, rngs=nnx.Rngs(seed))


def _save_steps(directory, seeds):
    """Step i + 1 holds a Linear initialised with seeds[i]; returns the states."""
    mngr = ck.manager(directory, max_to_keep=5)
    states = []
    for i, seed in enumerate(seeds):
        m = _model(seed)
        states.append(nnx.state(m))
        ck.save(mngr, i + 1, "dit", CFG, {"net": nnx.state(m)}, {"opt_step": np.int32(10 * (i + 1))})
    mngr.wait_until_finished()
    mngr.close()
    return states


def _target():
    return {"net": abstract_state(nnx.eval_shape(lambda: _model(0)))}


def _assert_state_equal(restored, state):
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def two_steps(tmp_path):
    d = str(tmp_path / "ckpt")
    return d, _save_steps(d, [0, 1])


def test_round_trip(two_steps):
    d, states = two_steps
    step, model, train = ck.restore(d, _target())
    assert step == 2 and train is None
    _assert_state_equal(model["net"], states[1])
    step, model, train = ck.restore(d, _target(), {"opt_step": jax.ShapeDtypeStruct((), np.int32)}, step=1)
    assert step == 1 and int(train["opt_step"]) == 10
    _assert_state_equal(model["net"], states[0])
    # Restored into a module, the module computes what the saved one did.
    m = nnx.eval_shape(lambda: _model(5))
    nnx.update(m, model["net"])
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(m(x), _model(0)(x), rtol=1e-6)


def test_config_round_trip_keeps_tuples(two_steps):
    d, _ = two_steps
    cfg, step = ck.read_config(d, "dit")
    assert step == 2 and cfg == CFG and cfg.nested.widths == (8, 16)


def test_missing_and_empty_dirs(tmp_path):
    with pytest.raises(ck.CheckpointError, match="does not exist"):
        ck.restore(str(tmp_path / "nope"), _target())
    with pytest.raises(ck.CheckpointError, match="does not exist"):
        ck.read_config(str(tmp_path / "nope"), "dit")
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ck.CheckpointError, match="no checkpoint in"):
        ck.restore(str(tmp_path / "empty"), _target())
    with pytest.raises(ck.CheckpointError, match="no checkpoint in"):
        ck.read_config(str(tmp_path / "empty"), "dit")


def _break_model_item(directory, step):
    """Delete the array data of one step's `model` item (as a half-copied checkpoint would lack)."""
    model_dir = os.path.join(directory, str(step), "model")
    assert os.path.isdir(model_dir)
    os.remove(os.path.join(model_dir, "manifest.ocdbt"))
    shutil.rmtree(os.path.join(model_dir, "ocdbt.process_0"))


def test_corrupt_newest_step_warns_and_falls_back(two_steps):
    d, states = two_steps
    _break_model_item(d, 2)
    with pytest.warns(UserWarning, match="checkpoint step 2 .* is unreadable"):
        step, model, _ = ck.restore(d, _target())
    assert step == 1
    _assert_state_equal(model["net"], states[0])


def test_all_steps_corrupt_raises(two_steps):
    d, _ = two_steps
    _break_model_item(d, 1)
    _break_model_item(d, 2)
    with pytest.warns(UserWarning, match="unreadable"):
        with pytest.raises(ck.CheckpointError, match="no readable checkpoint"):
            ck.restore(d, _target())


def test_leftover_tmp_dir_is_ignored(two_steps):
    d, states = two_steps
    tmp = os.path.join(d, "3.orbax-checkpoint-tmp")
    os.makedirs(os.path.join(tmp, "model"))
    with open(os.path.join(tmp, "model", "manifest.ocdbt"), "w") as f:
        f.write("half written")
    step, model, _ = ck.restore(d, _target())
    assert step == 2
    _assert_state_equal(model["net"], states[1])
    assert ck.read_config(d, "dit")[1] == 2
    # A directory holding only a leftover is as good as empty.
    only = os.path.join(os.path.dirname(d), "only_tmp")
    os.makedirs(os.path.join(only, "1.orbax-checkpoint-tmp"))
    with pytest.raises(ck.CheckpointError, match="no checkpoint in"):
        ck.restore(only, _target())


def test_manager_keeps_the_newest(tmp_path):
    d = str(tmp_path / "keep")
    mngr = ck.manager(d, max_to_keep=2)
    for step in (1, 2, 3):
        ck.save(mngr, step, "dit", CFG, {"net": nnx.state(_model(step))})
    mngr.wait_until_finished()
    mngr.close()
    assert sorted(int(n) for n in os.listdir(d) if n.isdigit()) == [2, 3]


def test_export_keeps_config_and_model_only(two_steps, tmp_path):
    d, states = two_steps
    out = str(tmp_path / "export")
    os.makedirs(os.path.join(out, "99"))  # a stale export is replaced, not merged
    assert ck.export(d, out) == 2
    assert sorted(os.listdir(out)) == ["2"]
    assert "train" not in os.listdir(os.path.join(out, "2"))
    assert ck.read_config(out, "dit") == (CFG, 2)
    step, model, _ = ck.restore(out, _target())
    assert step == 2
    _assert_state_equal(model["net"], states[1])


def test_export_skips_a_step_whose_model_is_corrupt(two_steps, tmp_path):
    d, states = two_steps
    out = str(tmp_path / "export")
    _break_model_item(d, 2)  # its config still reads: only restoring the model shows the damage
    assert ck.read_config(d, "dit")[1] == 2
    with pytest.warns(UserWarning, match="checkpoint step 2 .* is unreadable"):
        assert ck.export(d, out) == 1
    _assert_state_equal(ck.restore(out, _target())[1]["net"], states[0])


def test_a_checkpoint_of_another_kind_is_named_in_one_line(two_steps, tmp_path):
    d, _ = two_steps
    with pytest.raises(ck.CheckpointError, match=r"holds a DiT model; expected an autoencoder \(scripts/train_autoencoder"):
        ck.read_config(d, "autoencoder")
    ae = str(tmp_path / "ae")
    mngr = ck.manager(ae)
    ck.save(mngr, 1, "autoencoder", CFG, {"net": nnx.state(_model(0))})
    mngr.wait_until_finished()
    with pytest.raises(ck.CheckpointError, match=r"holds an autoencoder; expected a DiT model") as e:
        ck.export(ae, str(tmp_path / "out"))  # an autoencoder run is not a model to sample from
    assert "\n" not in str(e.value) and not os.path.exists(tmp_path / "out")
