"""Device meshes and logical axis names, MaxText-style.

Every parameter names its axes logically (`embed`, `heads`, `mlp`, ...; see dit.py), and
RULES maps each name onto mesh axes: that one table decides data, FSDP, tensor and
sequence parallelism. Training (train.py) builds the mesh from `cfg.mesh`, creates the
model and optimizer state born sharded (`init_sharded`), and puts each batch on the
mesh (`global_batch`); the model pins activations with `constrain` and runs self-attention
through `attention` (cuDNN's flash kernel in 16 bits on NVIDIA GPUs, XLA's elsewhere).

  mesh axes  data      replicas of the model, each on a slice of the batch
             fsdp      the batch splits here too, and parameters are sharded here (ZeRO-3)
             tensor    attention heads and MLP hidden units (Megatron)
             sequence  spacetime tokens in self-attention (Ulysses, dit.py)
"""

import math

import jax
import jax.extend
import jax.numpy as jnp
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from sora_lite.flax_setup import nnx

AXES = ("data", "fsdp", "tensor", "sequence")

# logical axis name -> mesh axis (or axes, or None: replicated)
RULES = {
    "batch": ("data", "fsdp"),
    "embed": "fsdp",
    "heads": "tensor",
    "mlp": "tensor",
    "tokens": "sequence",
    "layers": None,  # the stacked blocks' leading axis: nnx.scan walks it
    "patch": None,
    "freq": None,
    "text": None,
    # autoencoder.py: its weights stay whole (small next to its activations); data parallel
    "ae_in": None,
    "ae_out": None,
}


def mesh_sizes(text: str) -> dict:
    """"data,fsdp,tensor,sequence" (e.g. "1,8,1,1") -> {axis: size}, or a one-line ValueError."""
    parts = text.split(",")
    if len(parts) != len(AXES) or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"a mesh is 4 positive integers data,fsdp,tensor,sequence (e.g. 1,8,1,1); got {text!r}")
    return dict(zip(AXES, (int(p) for p in parts)))


def make_mesh(cfg, devices=None) -> jax.sharding.Mesh:
    """A mesh with AXES sized by cfg.data/fsdp/tensor/sequence; -1 takes all remaining devices."""
    devices = jax.devices() if devices is None else list(devices)
    sizes = [int(cfg[a]) for a in AXES]
    fixed = math.prod(s for s in sizes if s != -1)
    if sizes.count(-1) > 1 or any(s < 1 and s != -1 for s in sizes) or len(devices) % fixed:
        raise ValueError(f"mesh {dict(zip(AXES, sizes))} does not fit {len(devices)} devices: use sizes >= 1 "
                         "whose product is the device count, or one -1 for the remaining devices")
    sizes = [len(devices) // fixed if s == -1 else s for s in sizes]
    if math.prod(sizes) != len(devices):
        raise ValueError(f"mesh {dict(zip(AXES, sizes))} has {math.prod(sizes)} devices; there are {len(devices)}")
    return jax.make_mesh(tuple(sizes), AXES, axis_types=(AxisType.Auto,) * len(AXES), devices=devices)


def _axes(axes) -> tuple:
    return (axes,) if isinstance(axes, str) else tuple(axes or ())


def logical_to_mesh(spec) -> P:
    """PartitionSpec of logical names -> PartitionSpec of mesh axes (a mesh axis is used once)."""
    used, out = set(), []
    for name in spec:
        axes = tuple(a for a in _axes(RULES[name] if name is not None else None) if a not in used)
        used.update(axes)
        out.append(axes[0] if len(axes) == 1 else axes or None)
    return P(*out)


def param_shardings(state, mesh):
    """NamedShardings for an nnx.State (parameters or optimizer state) from its logical names
    (flax keeps them in each variable's `out_sharding` metadata); unnamed variables are replicated."""
    return jax.tree.map(lambda spec: NamedSharding(mesh, logical_to_mesh(spec)), nnx.get_partition_spec(state))


def batch_shards(mesh) -> int:
    """How many ways a batch splits on `mesh` (its size must be a multiple of this)."""
    return math.prod(mesh.shape[a] for a in _axes(RULES["batch"]))


def batch_sharding(mesh, ndim: int) -> NamedSharding:
    """Leading (batch) axis split over RULES['batch'], the rest replicated."""
    return NamedSharding(mesh, logical_to_mesh(("batch",) + (None,) * (ndim - 1)))


def global_batch(mesh, local):
    """This process's rows of a batch -> one global array on `mesh` (multi-process safe)."""
    return jax.make_array_from_process_local_data(batch_sharding(mesh, local.ndim), local)


def init_sharded(make, mesh):
    """The nnx object `make()` builds, each variable born on `mesh` where its logical names say
    (never whole on one device): eval_shape -> shardings -> jit with out_shardings."""
    graphdef, abstract = nnx.split(nnx.eval_shape(make))
    state = jax.jit(lambda: nnx.state(make()), out_shardings=param_shardings(abstract, mesh))()
    return nnx.merge(graphdef, state)


def _fit(shape, names) -> P:
    """Mesh spec of logical `names` for `shape` on the context mesh; axes that do not divide
    their dimension are dropped (that dimension stays whole)."""
    mesh = jax.sharding.get_abstract_mesh()
    spec = logical_to_mesh(names)
    return P(*(axes if dim % math.prod(mesh.shape[a] for a in _axes(axes)) == 0 else None
               for dim, axes in zip(shape, spec)))


def constrain(x, names):
    """Pin an activation to the mesh axes of its logical `names` when a mesh is set
    (`jax.set_mesh`); a no-op otherwise."""
    if jax.sharding.get_abstract_mesh().empty:
        return x
    return jax.lax.with_sharding_constraint(x, _fit(x.shape, names))


def attention(q, k, v, mask=None):
    """Attention on q, k, v [B, N, K, Dh]: cuDNN's flash kernel where it applies, else
    `xla_attention`. Self-attention (no mask) over tokens sharded on `sequence` runs
    Ulysses-style (DeepSpeed-Ulysses): an all-to-all trades each device's token shard for a
    head shard, each device attends over all tokens for its heads, and a second all-to-all
    trades back. Needs the heads per device divisible by `sequence`."""
    mesh = jax.sharding.get_abstract_mesh()
    seq = 1 if mesh.empty else mesh.shape.get("sequence", 1)
    if mask is None and seq > 1:
        spec = _fit(q.shape, ("batch", "tokens", "heads", None))
        heads_here = q.shape[2] // math.prod(mesh.shape[a] for a in _axes(spec[2]))
        if spec[1] is not None and heads_here % seq == 0:
            return jax.shard_map(_ulysses, in_specs=(spec,) * 3, out_specs=spec)(q, k, v)
        return xla_attention(q, k, v)  # cuDNN's kernel takes no token-sharded inputs
    return _attend(q, k, v, mask)


def _ulysses(q, k, v):  # per device: [b, N / seq, k, Dh] -> [b, N, k / seq, Dh] -> attention -> back
    q, k, v = (jax.lax.all_to_all(x, "sequence", split_axis=2, concat_axis=1, tiled=True) for x in (q, k, v))
    o = _attend(q, k, v)
    return jax.lax.all_to_all(o, "sequence", split_axis=1, concat_axis=2, tiled=True)


def _attend(q, k, v, mask=None):
    if mask is None and attention_kernel(q.dtype, q.shape[-1]) == "cudnn":
        return jax.nn.dot_product_attention(q, k, v, implementation="cudnn")
    return xla_attention(q, k, v, mask)


def xla_attention(q, k, v, mask=None):  # q [B, N, K, Dh]; k, v [B, M, K, Dh]; mask [B, 1, 1 or N, M]
    """jax.nn.dot_product_attention's XLA path, written with heads-major batched products: on
    XLA:CPU the forward pass about 8% faster, the train step level (BENCHMARKS.md). Scores and
    probabilities in float32, as there."""
    bias = 0.0 if mask is None else jnp.where(mask, 0.0, jnp.finfo(jnp.float32).min)  # float32
    q, k, v = (x.transpose(0, 2, 1, 3) for x in (q * q.shape[-1] ** -0.5, k, v))  # [B, K, N or M, Dh]
    s = jnp.matmul(q, k.swapaxes(-1, -2), preferred_element_type=jnp.float32) + bias  # [B, K, N, M]
    e = jnp.exp(s - jax.lax.stop_gradient(s.max(-1, keepdims=True)))
    p = e / e.sum(-1, keepdims=True)
    return (p.astype(v.dtype) @ v).transpose(0, 2, 1, 3)  # [B, N, K, Dh]


def attention_kernel(dtype, head_dim: int) -> str:
    """Which kernel unmasked self-attention runs: cuDNN's fused flash attention where it applies
    (NVIDIA GPUs, 16-bit inputs, head dim a multiple of 8 up to 128), which never materialises
    the [B, K, N, N] scores; XLA's elsewhere (CPUs, float32; also for the text mask's 16 keys)."""
    cuda = "cuda" in jax.extend.backend.get_backend().platform_version
    fused = cuda and dtype in (jnp.bfloat16, jnp.float16) and head_dim % 8 == 0 and head_dim <= 128
    return "cudnn" if fused else "xla"
