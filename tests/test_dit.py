"""Tests for sora_lite.dit: shapes, zero init, sizes, the stacked blocks, logical axis names."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sora_lite import checkpoint
from sora_lite import dit as D
from sora_lite.conditioning import MASK_CHANNELS, Condition

C = 4  # latent channels
forward = nnx.jit(lambda model, z, t, text, mask, frames=None: model(z, t, Condition(text, mask, frames)))
call = lambda m, z, t, text, mask: m(z, t, Condition(text, mask))  # noqa: E731


@pytest.fixture(scope="module")
def model():
    return D.DiT("tiny", C, (1, 2, 2), rngs=nnx.Rngs(0))


def make_live(precision="float32", remat="none", size="tiny"):
    """A DiT (tiny by default) with its zero-initialised parameters made random, so every path is live."""
    m = D.DiT(size, C, (1, 2, 2), precision, remat, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(1)
    for _, var in nnx.iter_graph(m):
        if isinstance(var, nnx.Param) and not np.asarray(var[...]).any():
            var[...] = jnp.asarray(0.2 * rng.normal(size=var.shape), var.dtype)
    return m


@pytest.fixture(scope="module")
def live_model():
    return make_live()


def inputs(b=2, thw=(2, 4, 4), L=6, seed=0):
    k = jax.random.split(jax.random.key(seed), 3)
    z = jax.random.normal(k[0], (b, *thw, C))
    t = jax.random.uniform(k[1], (b,))
    text = jax.random.normal(k[2], (b, L, D.TEXT_DIM))
    mask = jnp.arange(L)[None] < jnp.array([3, L] * b)[:b, None]  # first sample: 3 real tokens
    return z, t, text, mask


def test_output_shape_equals_input_for_any_divisible_size(model):
    for thw in [(1, 2, 2), (3, 6, 4), (5, 2, 8)]:
        z, t, text, mask = inputs(thw=thw)
        out = nnx.eval_shape(call, model, z, t, text, mask)
        assert out.shape == z.shape and out.dtype == z.dtype
    with pytest.raises(ValueError, match="must be divisible by the patch"):
        nnx.eval_shape(call, model, *inputs(thw=(2, 3, 4)))


def test_output_is_exactly_zero_at_init(model):
    z, t, text, mask = inputs()
    out = forward(model, z, t, text, mask)
    assert out.shape == z.shape and not np.asarray(out).any()
    # adaLN-Zero: every modulation and the output projection start at zero.
    for layer in (model.blocks.ada, model.final_ada, model.final):
        assert not np.asarray(layer.kernel[...]).any() and not np.asarray(layer.bias[...]).any()
    # Given frames start ignored, and have no bias: zero frames add nothing, however trained.
    assert not np.asarray(model.frames_embed.kernel[...]).any() and model.frames_embed.bias is None
    assert not np.asarray(model.canvas_embed.kernel[...]).any() and model.canvas_embed.bias is None
    assert np.asarray(model.blocks.attn.q.kernel[...]).any()  # ... and nothing else is


def test_live_model_conditions_on_everything_and_keeps_samples_apart(live_model):
    z, t, text, mask = inputs()
    out = np.asarray(forward(live_model, z, t, text, mask))
    assert np.isfinite(out).all() and np.abs(out).mean() > 1e-3
    # Padding tokens of the text are masked out: changing them changes nothing.
    pad_changed = text.at[0, 3:].set(7.0)
    np.testing.assert_allclose(forward(live_model, z, t, pad_changed, mask), out, rtol=1e-4, atol=1e-5)
    # The real text tokens, the time and the latent all matter.
    for args in [(z, t, text.at[0, 0].add(1.0), mask), (z, t.at[0].set(0.9 - t[0] / 2), text, mask),
                 (z.at[0, 0, 0, 0].add(1.0), t, text, mask)]:
        assert not np.allclose(forward(live_model, *args)[0], out[0], atol=1e-4)
    # Samples in a batch do not see each other.
    changed = forward(live_model, z.at[1].set(0.0), t, text.at[1].set(0.0), mask)
    np.testing.assert_allclose(changed[0], out[0], rtol=1e-4, atol=1e-5)


def test_given_frames_enter_and_zero_frames_are_text_to_video(live_model):
    z, t, text, mask = inputs()
    out = np.asarray(forward(live_model, z, t, text, mask))
    zeros = jnp.zeros((*z.shape[:4], C + MASK_CHANNELS))
    np.testing.assert_array_equal(forward(live_model, z, t, text, mask, zeros), out)
    frames = zeros.at[0, 1, :, :, :].set(1.0)  # one latent frame of the first sample given
    given = np.asarray(forward(live_model, z, t, text, mask, frames))
    assert not np.allclose(given[0], out[0], atol=1e-4)
    np.testing.assert_allclose(given[1], out[1], rtol=1e-4, atol=1e-5)


def test_canvas_position_enters_and_a_checkpoint_without_it_starts_where_it_stood(live_model):
    """A model saved before `dit.canvas_position` (no canvas input) fills a model with one: the new
    input is zero, so the outputs match; it gets gradients, and trained (here: made random) it
    changes them."""
    old = D.DiT("tiny", C, (1, 2, 2), canvas_position=False, rngs=nnx.Rngs(0))
    nnx.update(old, nnx.state(live_model, nnx.Not(nnx.PathContains("canvas_embed"))))
    saved = jax.tree.map(lambda a: {"value": np.asarray(a)}, nnx.to_pure_dict(nnx.state(old)))
    new = D.DiT("tiny", C, (1, 2, 2), rngs=nnx.Rngs(3))
    assert checkpoint.fill(new, saved, "old") == ["canvas_embed.kernel"]
    z, t, text, mask = inputs()
    np.testing.assert_array_equal(forward(new, z, t, text, mask), forward(old, z, t, text, mask))
    grads = nnx.jit(nnx.grad(lambda m: jnp.sum(call(m, z, t, text, mask) ** 2)))(new)
    assert np.abs(grads.canvas_embed.kernel[...]).sum() > 0
    assert not np.allclose(forward(live_model, z, t, text, mask), forward(old, z, t, text, mask), atol=1e-4)


def test_checkpoint_configs_written_before_canvas_position_build_without_it():
    from configs import tiny
    cfg = tiny.get_config()
    assert D.build_dit(cfg).canvas_embed is not None
    del cfg.dit["canvas_position"]
    assert D.build_dit(cfg).canvas_embed is None


def test_conftest_exposes_8_cpu_devices():
    assert len(jax.devices("cpu")) == 8  # for sharding tests (tests/conftest.py sets XLA_FLAGS)


def test_unknown_size():
    with pytest.raises(ValueError, match=r"unknown DiT size 'huge'; choose one of \[.*'XL'"):
        D.DiT("huge", C, rngs=nnx.Rngs(0))


def test_sizes_registry():
    # DiT's S/B/L/XL (Peebles & Xie, table 1).
    assert {k: (s.depth, s.width, s.heads) for k, s in D.SIZES.items() if k in ("S", "B", "L", "XL")} == {
        "S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
    for s in D.SIZES.values():
        assert s.width % s.heads == 0 and (s.width // s.heads) % 2 == 0  # even head dim for RoPE


def test_blocks_are_stacked_with_a_leading_depth_axis(model):
    depth = D.SIZES["tiny"].depth
    leaves = jax.tree.leaves(nnx.state(model.blocks))
    assert leaves and all(x.shape[0] == depth for x in leaves)
    assert model.blocks.attn.q.kernel.shape == (depth, 64, 64)
    # Each layer has its own initialisation.
    q = np.asarray(model.blocks.attn.q.kernel[...])
    assert not np.allclose(q[0], q[1])


def test_params_carry_logical_axis_names(model):
    specs = nnx.get_partition_spec(nnx.state(model, nnx.Param))
    assert tuple(specs["x_embed"]["kernel"].get_value()) == ("patch", "embed")
    assert tuple(specs["x_embed"]["bias"].get_value()) == ("embed",)
    assert tuple(specs["blocks"]["attn"]["q"]["kernel"].get_value()) == ("layers", "embed", "heads")
    assert tuple(specs["blocks"]["mlp_out"]["kernel"].get_value()) == ("layers", "mlp", "embed")
    assert model.blocks.mlp_in.kernel.get_metadata()["out_sharding"] == ("layers", "embed", "mlp")
    # Every dense kernel is named, with one name per dimension.
    named = 0
    for path, var in nnx.iter_graph(model):
        if isinstance(var, nnx.Param) and path[-1] == "kernel":
            names = var.get_metadata().get("out_sharding")
            assert names is not None and len(names) == var.ndim, path
            assert ("layers" in names) == ("blocks" in path), path
            named += 1
    assert named >= 10


def test_bfloat16_computes_in_bf16_and_keeps_float32_master_weights(live_model):
    m = make_live("bfloat16")
    assert {x.dtype for x in jax.tree.leaves(nnx.state(m, nnx.Param))} == {jnp.dtype(jnp.float32)}
    z, t, text, mask = inputs()
    graphdef, state = nnx.split(m)
    hlo = jax.jit(lambda s, *a: call(nnx.merge(graphdef, s), *a)).lower(state, z, t, text, mask).as_text()
    dots = [line for line in hlo.splitlines() if "dot_general" in line]
    operands = [re.search(r"\((tensor<[^)]*)\)", line).group(1) for line in dots]
    assert len(dots) >= 20  # every projection, both attentions' two products, embeddings, final layer
    assert all(o.count("xbf16>") == 2 for o in operands), [o for o in operands if o.count("xbf16>") != 2]
    out, ref = forward(m, z, t, text, mask), forward(live_model, z, t, text, mask)
    assert out.dtype == jnp.float32
    err = np.abs(np.asarray(out) - np.asarray(ref)).mean() / np.abs(np.asarray(ref)).mean()
    assert 1e-4 < err < 3e-2  # bf16 rounding: visible, small


@pytest.mark.parametrize("remat", ["dots", "full"])
def test_remat_recomputes_without_changing_gradients(live_model, remat):
    z, t, text, mask = inputs()
    grad = nnx.jit(lambda m: nnx.grad(lambda m: jnp.mean(call(m, z, t, text, mask) ** 2))(m))  # compiled: fast
    expected, got = grad(live_model), grad(make_live(remat=remat))
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_remat_policies_keep_less_for_the_backward_pass():
    """XLA's temporary memory of the compiled gradient, as training computes it (`unroll`):
    dots keeps the projections' outputs only, full keeps only each block's input. (Without
    remat the blocks are unrolled, which XLA schedules in less memory than the rolled loop:
    1.7x dots' here, not 2x as rolled.)"""
    z, t, text, mask = inputs(b=4, thw=(3, 8, 8))
    loss = lambda m: jnp.mean(m(z, t, Condition(text, mask), unroll=True) ** 2)  # noqa: E731
    temp = {}
    for remat in ("none", "dots", "full"):
        graphdef, state = nnx.split(make_live(remat=remat))
        grad = jax.jit(lambda s: nnx.grad(loss)(nnx.merge(graphdef, s)))
        temp[remat] = grad.lower(state).compile().memory_analysis().temp_size_in_bytes
    assert temp["none"] > 1.5 * temp["dots"] and temp["dots"] > temp["full"], temp


def test_sampling_keeps_the_blocks_rolled_and_training_unrolls_them(live_model):
    """One loop over the stacked blocks when sampling (it compiles in under half the time), the
    blocks inlined when training unrolls them; the same velocity either way."""
    z, t, text, mask = inputs()
    graphdef, state = nnx.split(live_model)
    run = lambda unroll: jax.jit(  # noqa: E731
        lambda s: nnx.merge(graphdef, s)(z, t, Condition(text, mask), unroll=unroll)).lower(state)
    rolled, unrolled = run(False), run(True)
    assert rolled.as_text().count("stablehlo.while") == 1 and "stablehlo.while" not in unrolled.as_text()
    np.testing.assert_allclose(rolled.compile()(state), unrolled.compile()(state), rtol=1e-5, atol=1e-6)


def test_unknown_precision_and_remat():
    with pytest.raises(ValueError, match=r"unknown DiT precision 'fp8'; choose one of \['float32', 'bfloat16'\]"):
        D.DiT("tiny", C, precision="fp8", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"unknown DiT remat 'some'"):
        D.DiT("tiny", C, remat="some", rngs=nnx.Rngs(0))


def test_dense_matches_nnx_linear_in_value_and_gradients():
    """Dense computes the bias gradient as a product with ones (a speed choice): it must equal
    nnx.Linear's, the plain sum over every row of a [B, N, D] input."""
    dense = D.dense(8, 16, ("embed", "mlp"), nnx.Rngs(0), jnp.float32)
    nnx.update(dense, {"bias": jax.random.normal(jax.random.key(1), (16,))})
    linear = nnx.Linear(8, 16, rngs=nnx.Rngs(2))
    nnx.update(linear, nnx.state(dense))
    x = jax.random.normal(jax.random.key(3), (3, 5, 8))  # [B, N, D]
    loss = lambda m, x: jnp.sum(jnp.sin(m(x)))  # noqa: E731
    (l1, g1), (l2, g2) = (jax.value_and_grad(lambda s: loss(nnx.merge(nnx.graphdef(m), s), x))(nnx.state(m))
                          for m in (dense, linear))
    np.testing.assert_allclose(l1, l2, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(g1["bias"][...], 0)


def test_a_grown_model_starts_as_the_one_it_grew_from_and_its_new_layers_train():
    """`grow` spreads a trained stack over a deeper one (cpu, depth 6 -> cpu_deep, 12): the new layers
    start as the identity, so the outputs match, and their gates get gradients, so they train."""
    small = make_live(size="cpu")
    saved = jax.tree.map(lambda a: {"value": np.asarray(a)}, nnx.to_pure_dict(nnx.state(small)))
    deep = D.DiT("cpu_deep", C, (1, 2, 2), rngs=nnx.Rngs(5))
    assert checkpoint.fill(deep, D.grow(saved, deep), "small") == []
    np.testing.assert_array_equal(deep.blocks.mlp_in.kernel[...][::2], small.blocks.mlp_in.kernel[...])
    z, t, text, mask = inputs()
    np.testing.assert_allclose(forward(deep, z, t, text, mask), forward(small, z, t, text, mask), rtol=1e-5, atol=1e-6)

    grads = nnx.jit(nnx.grad(lambda m: jnp.sum(call(m, z, t, text, mask) ** 2)))(deep)
    assert np.abs(grads.blocks.ada.kernel[...][1::2]).sum(axis=(1, 2)).min() > 0  # every new layer's gates
    assert D.grow(saved, small) is saved  # same depth: unchanged


def test_a_widened_model_predicts_as_before_on_the_old_channels_and_nothing_on_the_new():
    """`widen` gives a trained DiT (C channels) the latent of an autoencoder built on its own (C + 2, `ae.base`): the
    old channels' velocity is unchanged, given frames included, whatever the new channels hold."""
    small = make_live()
    saved = jax.tree.map(lambda a: {"value": np.asarray(a)}, nnx.to_pure_dict(nnx.state(small)))
    wide = D.DiT("tiny", C + 2, (1, 2, 2), rngs=nnx.Rngs(5))
    assert checkpoint.fill(wide, D.widen(saved, wide), "small") == []
    z, t, text, mask = inputs()
    extra = jax.random.normal(jax.random.key(9), (*z.shape[:-1], 2))
    frames = jax.random.normal(jax.random.key(8), (*z.shape[:-1], C + 2 + MASK_CHANNELS))
    old_frames = jnp.concatenate([frames[..., :C], frames[..., C + 2:]], axis=-1)  # the same mask channels
    before = forward(small, z, t, text, mask, old_frames)
    after = forward(wide, jnp.concatenate([z, extra], axis=-1), t, text, mask, frames)
    np.testing.assert_allclose(after[..., :C], before, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(after[..., C:], 0.0)
    assert D.widen(saved, small) is saved  # same channels: unchanged


def test_growing_into_another_width_is_the_checkpoint_shape_error():
    saved = jax.tree.map(lambda a: {"value": np.asarray(a)}, nnx.to_pure_dict(nnx.state(make_live())))  # tiny: 2 x 64
    wide = D.DiT("cpu", C, (1, 2, 2), rngs=nnx.Rngs(0))  # 6 x 128
    with pytest.raises(checkpoint.CheckpointError, match=r"tiny: .* has shape .*is it the same architecture"):
        checkpoint.fill(wide, D.grow(saved, wide), "tiny")
