"""Tests for sora_lite.sharding on the 8 fake CPU devices: rules, meshes, parameters born
sharded, Ulysses attention, and the tiny DiT training the same on every mesh."""

import json
import math
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P
from ml_collections import ConfigDict

from sora_lite import autoencoder, checkpoint, sharding, train_autoencoder, train_dit
from sora_lite.dit import DiT


def mesh_of(data=1, fsdp=1, tensor=1, sequence=1):
    sizes = dict(data=data, fsdp=fsdp, tensor=tensor, sequence=sequence)
    return sharding.make_mesh(ConfigDict(sizes), jax.devices()[:math.prod(sizes.values())])


def test_rules_map_logical_names_to_mesh_axes():
    to_mesh = sharding.logical_to_mesh
    assert to_mesh(("batch", "tokens", None)) == P(("data", "fsdp"), "sequence", None)
    assert to_mesh(("layers", "embed", "mlp")) == P(None, "fsdp", "tensor")
    assert to_mesh(("layers", "heads", "embed")) == P(None, "tensor", "fsdp")
    assert to_mesh(("patch", "embed")) == P(None, "fsdp")
    assert to_mesh(("text", "freq")) == P(None, None)
    assert to_mesh(("batch", "embed")) == P(("data", "fsdp"), None)  # a mesh axis is used once
    with pytest.raises(KeyError):
        to_mesh(("embedding",))


def test_make_mesh_sizes_and_errors():
    mesh = sharding.make_mesh(ConfigDict(dict(data=-1, fsdp=2, tensor=1, sequence=1)))
    assert dict(mesh.shape) == dict(data=4, fsdp=2, tensor=1, sequence=1)
    assert mesh.axis_types == (jax.sharding.AxisType.Auto,) * 4
    assert dict(mesh_of().shape) == dict(data=1, fsdp=1, tensor=1, sequence=1)
    with pytest.raises(ValueError, match=r"has 4 devices; there are 8"):
        sharding.make_mesh(ConfigDict(dict(data=2, fsdp=2, tensor=1, sequence=1)))
    with pytest.raises(ValueError, match=r"does not fit 8 devices"):
        sharding.make_mesh(ConfigDict(dict(data=-1, fsdp=3, tensor=1, sequence=1)))


def test_base_config_mesh_is_data_parallel():
    from configs import base

    assert base.get_config().mesh.to_dict() == dict(data=-1, fsdp=1, tensor=1, sequence=1)


def test_parameters_and_optimizer_state_are_born_sharded_on_fsdp():
    mesh = mesh_of(fsdp=8)
    make = lambda: DiT("tiny", 4, rngs=nnx.Rngs(0))  # noqa: E731
    model = sharding.init_sharded(make, mesh)
    reference = make()  # built on one device: the same values
    specs = nnx.get_partition_spec(nnx.state(model))
    sharded = 0
    for (path, x), spec, ref in zip(jax.tree_util.tree_flatten_with_path(nnx.state(model))[0],
                                    jax.tree.leaves(specs), jax.tree.leaves(nnx.state(reference)), strict=True):
        expected = tuple(n // 8 if name == "embed" else n for n, name in zip(x.shape, tuple(spec) + (None,) * x.ndim))
        assert x.addressable_shards[0].data.shape == expected, jax.tree_util.keystr(path)
        assert x.sharding.mesh.shape == mesh.shape
        np.testing.assert_array_equal(x, ref)
        sharded += expected != x.shape
    assert sharded >= 10
    assert model.blocks.mlp_in.kernel[...].sharding.spec == P(None, "fsdp", "tensor")

    opt = sharding.init_sharded(lambda: nnx.Optimizer(make(), optax.adam(1e-3), wrt=nnx.Param), mesh)
    mu = opt.opt_state[0].mu.blocks.mlp_in.kernel[...]
    assert mu.addressable_shards[0].data.shape == (2, 64 // 8, 256)


def _on_mesh(abstract, mesh):
    """ShapeDtypeStructs of an abstract nnx.State carrying the shardings its logical names get on `mesh`."""
    leaves, treedef = jax.tree.flatten(abstract)
    shardings = jax.tree.leaves(sharding.param_shardings(abstract, mesh))
    return jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)
                                        for x, s in zip(leaves, shardings, strict=True)])


def test_checkpoint_saved_on_fsdp8_restores_onto_other_meshes(tmp_path):
    make = lambda: DiT("tiny", 4, rngs=nnx.Rngs(0))  # noqa: E731
    tx = optax.adam(1e-3)
    model = sharding.init_sharded(make, mesh_of(fsdp=8))
    opt = sharding.init_sharded(lambda: nnx.Optimizer(make(), tx, wrt=nnx.Param), mesh_of(fsdp=8))
    opt.update(model, jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param)))  # moments not all zero
    saved = {"dit": nnx.state(model), "opt": nnx.state(opt)}
    directory = str(tmp_path / "ckpt")
    mngr = checkpoint.manager(directory)
    checkpoint.save(mngr, 1, "dit", ConfigDict(dict(mesh="fsdp=8")), saved)
    mngr.wait_until_finished()
    mngr.close()

    abstract = {"dit": nnx.state(nnx.eval_shape(make)),
                "opt": nnx.state(nnx.eval_shape(lambda: nnx.Optimizer(make(), tx, wrt=nnx.Param)))}
    for sizes in (dict(data=2, fsdp=4), {}):  # data=2 x fsdp=4, and one device
        mesh = mesh_of(**sizes)
        target = {k: _on_mesh(v, mesh) for k, v in abstract.items()}
        step, restored, _ = checkpoint.restore(directory, target)
        assert step == 1
        sharded = 0
        for x, t, s in zip(jax.tree.leaves(restored), jax.tree.leaves(target), jax.tree.leaves(saved), strict=True):
            assert x.sharding.is_equivalent_to(t.sharding, x.ndim)
            assert len(x.sharding.device_set) == mesh.size
            np.testing.assert_array_equal(x, s)
            sharded += x.addressable_shards[0].data.shape != x.shape
        assert sharded >= 10 if sizes else sharded == 0


def test_batch_sharding_splits_the_leading_axis():
    mesh = mesh_of(data=2, fsdp=2, tensor=2)
    x = sharding.global_batch(mesh, np.arange(8 * 3, dtype=np.float32).reshape(8, 3))
    assert x.sharding.spec == P(("data", "fsdp"), None)
    assert x.addressable_shards[0].data.shape == (2, 3)
    np.testing.assert_array_equal(x, np.arange(24).reshape(8, 3))


def test_ulysses_attention_matches_plain_attention():
    q, k, v = (jax.random.normal(jax.random.key(i), (4, 8, 4, 16)) for i in range(3))  # [B, N, K, Dh]
    expected = jax.nn.dot_product_attention(q, k, v)
    with jax.set_mesh(mesh_of(fsdp=2, sequence=4)):
        f = jax.jit(sharding.attention)
        assert "all_to_all" in f.lower(q, k, v).as_text()  # heads <-> tokens, Ulysses-style
        np.testing.assert_allclose(f(q, k, v), expected, rtol=1e-5, atol=1e-6)
    with jax.set_mesh(mesh_of(fsdp=2, tensor=2, sequence=2)):  # 2 heads per device over 2 token shards
        np.testing.assert_allclose(jax.jit(sharding.attention)(q, k, v), expected, rtol=1e-5, atol=1e-6)
    # Without a sequence axis (or with a key mask), plain attention: no all-to-all.
    assert "all_to_all" not in jax.jit(sharding.attention).lower(q, k, v).as_text()


def test_xla_attention_matches_jax_attention_and_its_gradients():
    """sharding.xla_attention against jax.nn.dot_product_attention: self-attention, and
    cross-attention with a key mask (one video's text all padding but its first token)."""
    q, g = (jax.random.normal(jax.random.key(i), (3, 10, 2, 8)) for i in range(2))  # [B, N, K, Dh]
    kv = jax.random.normal(jax.random.key(2), (3, 6, 2, 8))  # [B, M, K, Dh]
    mask = jnp.array([[1, 1, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], bool)[:, None, None, :]
    for k, v, m in ((q, 2 * q, None), (kv, 3 * kv, mask)):
        expected, expected_vjp = jax.vjp(lambda *a: jax.nn.dot_product_attention(*a, mask=m), q, k, v)
        out, out_vjp = jax.vjp(lambda *a: sharding.xla_attention(*a, m), q, k, v)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
        for grad, expected_grad in zip(out_vjp(g), expected_vjp(g)):  # dq, dk, dv
            np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-5)


def test_attention_uses_cudnn_flash_attention_on_nvidia_gpus_where_it_applies(monkeypatch):
    """On a CUDA backend, 16-bit self-attention asks for cuDNN's fused kernel, also inside Ulysses'
    shard_map; float32, a key mask, token-sharded inputs or CPUs get sharding.xla_attention."""
    calls = []
    monkeypatch.setattr(jax.nn, "dot_product_attention",
                        lambda q, k, v, mask=None, implementation=None: calls.append(implementation) or q)
    q = jnp.zeros((4, 8, 4, 16), jnp.bfloat16)  # [B, N, K, Dh]
    mask = jnp.ones((4, 1, 1, 8), bool)
    sharding.attention(q, q, q)
    assert calls == []  # this CPU backend: sharding.xla_attention
    cuda = type("Backend", (), {"platform_version": "cuda 12080"})()
    monkeypatch.setattr(jax.extend.backend, "get_backend", lambda: cuda)
    calls.clear()
    for x, m in ((q, None), (q.astype(jnp.float32), None), (q, mask), (jnp.zeros((4, 8, 4, 12), jnp.bfloat16), None)):
        sharding.attention(x, x, x, m)
    assert calls == ["cudnn"]
    calls.clear()
    with jax.set_mesh(mesh_of(fsdp=2, sequence=4)):
        jax.jit(sharding.attention).lower(q, q, q)  # Ulysses: each device attends over all tokens
    with jax.set_mesh(mesh_of(tensor=4, sequence=2)):
        jax.jit(sharding.attention).lower(q, q, q)  # 1 head per device: tokens stay sharded
    assert calls == ["cudnn"]
    assert sharding.attention_kernel(jnp.bfloat16, 64) == "cudnn" and sharding.attention_kernel(jnp.float32, 64) == "xla"


# ----------------------------------------------------------------------------- training on meshes

MESHES = [(2, 2, 2, 1), (1, 8, 1, 1), (1, 2, 1, 4)]  # (data, fsdp, tensor, sequence)


@pytest.fixture(scope="module")
def train_on_mesh(tiny_run, tmp_path_factory):
    """Train the tiny DiT (4 heads: they divide tensor x sequence) for 4 steps on a mesh of that
    many devices, on the session's autoencoder and cached latents of its video shape (one
    compiled step); returns its logged rows."""

    def run(sizes):
        cfg = tiny_run["cfg"].copy_and_resolve_references()
        cfg.mesh.update(dict(zip(sharding.AXES, sizes)))
        cfg.data.update(mixture="5x16x16", train_size=192)  # the session run's 5x16x16 clips
        cfg.train.update(steps=4, checkpoint_every=100)  # only the final save
        workdir = str(tmp_path_factory.mktemp("mesh_" + "x".join(map(str, sizes))))
        shutil.copytree(os.path.join(tiny_run["dit_dir"], "latents"), os.path.join(workdir, "latents"))
        train_dit.train(cfg, workdir, devices=jax.devices()[:math.prod(sizes)])
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            return [json.loads(line) for line in f]

    return run


@pytest.fixture(scope="module")
def one_device_rows(train_on_mesh):
    return train_on_mesh((1, 1, 1, 1))


@pytest.mark.parametrize("sizes", MESHES, ids=lambda s: "mesh" + "x".join(map(str, s)))
def test_training_logs_the_same_losses_on_every_mesh(one_device_rows, train_on_mesh, sizes):
    rows = train_on_mesh(sizes)
    assert len(rows) == len(one_device_rows) == 4
    for key in ("loss", "grad_norm"):
        np.testing.assert_allclose([r[key] for r in rows], [r[key] for r in one_device_rows], rtol=1e-4,
                                   err_msg=f"{key} on mesh {sizes}")


def test_autoencoder_trains_data_parallel_with_the_same_losses(tiny_run, tmp_path):
    """The session's tiny autoencoder trained on all 8 devices (batch 8 split over data); again on one."""
    cfg = tiny_run["cfg"].copy_and_resolve_references()
    workdir = str(tmp_path / "ae1")
    train_autoencoder.train_autoencoder(cfg, workdir, devices=jax.devices()[:1])
    rows = {}
    for name, path in (("one", workdir), ("eight", tiny_run["ae_dir"])):
        with open(os.path.join(path, "metrics.jsonl")) as f:
            rows[name] = [json.loads(line) for line in f]
    assert len(rows["one"]) == len(rows["eight"])
    for key in ("loss", "l1", "l2", "psnr/5x16x16", "psnr/1x16x32"):
        np.testing.assert_allclose([r[key] for r in rows["one"] if key in r],
                                   [r[key] for r in rows["eight"] if key in r], rtol=1e-4, err_msg=key)
    eight = autoencoder.load_autoencoder(tiny_run["ae_dir"])  # written from the 8-device mesh
    assert eight.encoder.out.kernel.get_metadata()["out_sharding"] == ("ae_in", "ae_out")
    np.testing.assert_allclose(autoencoder.load_autoencoder(workdir).latent_scale[...], eight.latent_scale[...], rtol=1e-4)


def test_mesh_sizes_parses_four_positive_integers():
    assert sharding.mesh_sizes("1,8,1,1") == dict(data=1, fsdp=8, tensor=1, sequence=1)
    for bad in ("1,8", "1,8,1,x", "1,0,1,1", "-1,8,1,1"):
        with pytest.raises(ValueError, match=r"a mesh is 4 positive integers data,fsdp,tensor,sequence"):
            sharding.mesh_sizes(bad)
