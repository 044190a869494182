"""Measuring the DiT training step: per-device memory of the compiled step, model FLOPs, speed.

`scripts/bench_memory.py` and `scripts/bench_train.py` print these and write JSON; the step
is train_dit.py's own (`jit_train_step` on state from `init_train_state`), fed synthetic
latents and text of the requested video size, so what is measured is what trains.
"""

import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import ClosedJaxpr, Jaxpr
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from ml_collections import ConfigDict

from sora_lite import autoencoder, sharding, train_dit
from sora_lite.conditioning import Condition
from sora_lite.dit import TEXT_DIM
from sora_lite.flax_setup import nnx
from sora_lite.sizing import num_tokens

# Dense bf16 peak FLOP/s per device, for MFU (vendor datasheets; SXM parts).
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "TPU v5p": 459e12, "TPU v5 lite": 197e12,
              "TPU v4": 275e12}


def peak_flops(device) -> float | None:
    """The bf16 peak of a device from PEAK_FLOPS by its device_kind, or None (CPUs have no entry)."""
    return next((v for k, v in PEAK_FLOPS.items() if k.lower() in device.device_kind.lower()), None)


def model_flops_per_step(cfg: ConfigDict, latent_shape: tuple) -> float:
    """Training FLOPs of one step on latents [B, t, h, w, C]: 3x the forward pass's matrix
    products (the backward pass does twice the forward's; what remat recomputes is not counted:
    PaLM's model FLOPs), counted in the text-to-video forward's jaxpr. So each dense layer counts
    at the rows it multiplies (video tokens; text tokens for the text projections; one row a
    video for the timestep MLP and adaLN), and attention's two products at their sizes."""
    cfg = ConfigDict(cfg.to_dict())
    cfg.dit.precision = "float32"  # XLA's attention, written as dot_generals (cuDNN's is one opaque call)
    graphdef, state = nnx.split(nnx.eval_shape(lambda: train_dit.build_dit(cfg)))
    b, L = latent_shape[0], cfg.text.max_len
    f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)  # noqa: E731
    cond = Condition(f32(b, L, TEXT_DIM), jax.ShapeDtypeStruct((b, L), jnp.bool_))
    jaxpr = jax.make_jaxpr(lambda s, z, t, c: nnx.merge(graphdef, s)(z, t, c))(state, f32(*latent_shape), f32(b), cond)
    return 3.0 * _dot_flops(jaxpr.jaxpr)


def _dot_flops(jaxpr) -> float:
    """2 x M x N x K summed over a jaxpr's dot_generals, into nested jaxprs (a scan's body counts
    once per iteration)."""
    total = 0.0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contracting, _), _ = eqn.params["dimension_numbers"]
            k = math.prod(eqn.invars[0].aval.shape[d] for d in contracting)
            total += 2.0 * math.prod(eqn.outvars[0].aval.shape) * k
        times = eqn.params["length"] if eqn.primitive.name == "scan" else 1
        total += times * sum(_dot_flops(sub) for sub in _jaxprs(eqn.params.values()))
    return total


def _jaxprs(values):
    for v in values:
        if isinstance(v, ClosedJaxpr):
            yield v.jaxpr
        elif isinstance(v, Jaxpr):
            yield v
        elif isinstance(v, (tuple, list)):  # cond's branches
            yield from _jaxprs(v)


class Step:
    """The jitted text-to-video train step of `cfg` on `mesh` for `batch` videos of frames x height
    x width. (Given frames, `train.conditions`, add the autoencoder's encoding of them and one
    projection; the benchmarks time the step every run pays.)"""

    def __init__(self, cfg: ConfigDict, mesh, frames: int, height: int, width: int, batch: int):
        cfg = ConfigDict(cfg.to_dict())
        cfg.train.conditions.update({k: float(k == "none") for k in cfg.train.conditions})
        self.cfg, self.mesh, self.batch = cfg, mesh, batch
        self.latent_shape = (batch, *autoencoder.latent_shape(cfg.ae, frames, height, width))
        self.tokens = num_tokens(cfg, frames, height, width)
        self.graphdef, abstract = nnx.split(nnx.eval_shape(lambda: train_dit.init_train_state(cfg, mesh)))
        self.state_sharding = sharding.param_shardings(abstract, mesh)
        self.abstract_state = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                                           abstract, self.state_sharding)
        self.replicated = NamedSharding(mesh, P())
        self.ae_graphdef, self.ae_abstract = nnx.split(nnx.eval_shape(lambda: autoencoder.build_autoencoder(cfg)))
        self.jitted = train_dit.jit_train_step(self.graphdef, self.ae_graphdef, cfg, mesh, self.state_sharding)

    def abstract_args(self):
        """(state, progress, batch, caption table, autoencoder, rng, step) as ShapeDtypeStructs on the mesh; the
        table holds one caption whose max_len tokens are all real: the text side at full size."""
        rep = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype, sharding=self.replicated)  # noqa: E731
        on_batch = lambda shape, dtype: jax.ShapeDtypeStruct(  # noqa: E731
            shape, dtype, sharding=sharding.batch_sharding(self.mesh, len(shape)))
        progress = dict.fromkeys(("data_step", "nonfinite", "last_nonfinite"), rep((), jnp.int32))
        batch = {"latent": on_batch(self.latent_shape, jnp.float32), "subject": on_batch((self.batch,), jnp.int32)}
        L = self.cfg.text.max_len
        table = {"text": rep((1, 1, L, TEXT_DIM), jnp.float32), "mask": rep((1, 1, L), jnp.bool_),
                 "null_text": rep((L, TEXT_DIM), jnp.float32), "null_mask": rep((L,), jnp.bool_)}
        ae = jax.tree.map(lambda x: rep(x.shape, x.dtype), self.ae_abstract)
        return self.abstract_state, progress, batch, table, ae, rep((2,), jnp.uint32), rep((), jnp.int32)

    def compile(self):
        with jax.set_mesh(self.mesh):  # the model's activation constraints read it while tracing
            return self.jitted.lower(*self.abstract_args()).compile()

    @functools.cached_property
    def flops(self) -> float:
        return model_flops_per_step(self.cfg, self.latent_shape)


def _bytes_per_device(tree) -> int:
    """Bytes one device holds of a pytree of ShapeDtypeStructs with shardings."""
    return sum(math.prod(x.sharding.shard_shape(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def memory(step: Step) -> dict:
    """Per-device bytes: parameters (raw + EMA), optimizer state, and the compiled step's
    temporaries (activations, gradients and workspace: XLA's temp allocation)."""
    model, opt, ema = (nnx.state(m) for m in nnx.merge(step.graphdef, step.abstract_state))
    analysis = step.compile().memory_analysis()
    return {"params_bytes": _bytes_per_device(model) + _bytes_per_device(ema),
            "optimizer_bytes": _bytes_per_device(opt),
            "activation_bytes": int(analysis.temp_size_in_bytes),
            "flops_per_step": step.flops}


def speed(step: Step, steps: int, warmup: int = 2) -> dict:
    """Median wall time of `steps` train steps (after `warmup` untimed ones) on random latents."""
    model, opt, ema = train_dit.init_train_state(step.cfg, step.mesh)
    state = nnx.state((model, opt, ema))
    _, progress, batch, table, ae, rng, _ = step.abstract_args()
    ae = jax.tree.map(lambda x: jax.device_put(np.zeros(x.shape, x.dtype), x.sharding), ae)  # unused: text-to-video
    progress = jax.device_put(dict.fromkeys(progress, np.int32(0)), step.replicated)
    noise = np.random.default_rng(0).normal(size=batch["latent"].shape).astype(np.float32)
    batch = {"latent": jax.device_put(noise, batch["latent"].sharding),
             "subject": jax.device_put(np.zeros(batch["subject"].shape, np.int32), batch["subject"].sharding)}
    table = jax.tree.map(lambda x: jax.device_put(jax.random.normal(jax.random.key(1), x.shape).astype(x.dtype)
                                                  if x.dtype == jnp.float32 else np.ones(x.shape, bool), x.sharding),
                         table)
    rng = jax.device_put(np.asarray(jax.random.key_data(jax.random.key(0))), step.replicated)
    compiled = step.compile()
    times = []
    for i in range(warmup + steps):
        tic = time.perf_counter()
        state, progress, (loss, _) = compiled(state, progress, batch, table, ae, rng, np.int32(i))
        loss.block_until_ready()
        times.append(time.perf_counter() - tic)
    if not np.isfinite(float(loss)):
        raise FloatingPointError("the benchmarked step's loss is not finite")
    step_time = float(np.median(times[warmup:]))
    flops = step.flops
    peak = peak_flops(step.mesh.devices.flat[0])
    return {"step_time_s": step_time, "tokens_per_s": step.batch * step.tokens / step_time,
            "flops_per_step": flops, "achieved_tflops_per_device": flops / step_time / step.mesh.size / 1e12,
            "peak_tflops_per_device": None if peak is None else peak / 1e12,
            "mfu": None if peak is None else flops / step_time / (peak * step.mesh.size)}


def forward_speed(step: Step, steps: int, warmup: int = 2) -> dict:
    """Median wall time of the DiT's forward pass alone (what sampling repeats) on the step's
    batch: random latents, timesteps and full-length text."""
    dit = train_dit.build_dit(step.cfg)
    latent = jax.random.normal(jax.random.key(0), step.latent_shape)  # [B, t, h, w, C]
    t = jax.random.uniform(jax.random.key(1), (step.batch,))  # [B]
    L = step.cfg.text.max_len
    cond = Condition(jax.random.normal(jax.random.key(2), (step.batch, L, TEXT_DIM)), jnp.ones((step.batch, L), bool))
    forward = nnx.jit(lambda m, z, t, c: m(z, t, c))
    times = []
    for _ in range(warmup + steps):
        tic = time.perf_counter()
        forward(dit, latent, t, cond).block_until_ready()
        times.append(time.perf_counter() - tic)
    return {"forward_s": float(np.median(times[warmup:]))}
