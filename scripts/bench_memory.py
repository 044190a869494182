"""Per-device memory of the DiT train step on device meshes, from XLA's memory analysis of the
compiled step, and model FLOPs per step. Compiles only: nothing is allocated or run.

    python scripts/bench_memory.py --config configs/base.py --config.dit.size=B \
        --frames 17 --height 256 --width 256 \
        --mesh 1,1,1,1 --mesh 1,8,1,1 --mesh 1,1,1,4 --remat none --remat full \
        --out benchmarks/bench_memory.json

Each --mesh is data,fsdp,tensor,sequence; the batch is one video per batch shard (data x fsdp).
With --device_gib M, the last line answers "what fits devices of M GiB": of the rows whose
parameters, optimizer state and activations fit, the one that recomputes least (remat none,
then dots, then full), and the least memory among those; e.g. DiT-B at 17x256x256 on 8
devices of 16 GiB:

    python scripts/bench_memory.py --config configs/base.py --config.dit.size=B \
        --frames 17 --height 256 --width 256 --mesh 1,8,1,1 --mesh 1,2,1,4 \
        --remat dots --remat full --device_gib 16 --out benchmarks/bench_memory_fit.json

Rows are printed with ratios to the first row (the baseline), next to the ratio that
parameters and optimizer state would have if every one of them split over fsdp x tensor. By default the programs are
compiled for --cpu_devices fake CPU devices, so any mesh can be measured on one machine;
`--cpu_devices 0` compiles for the real devices instead.
"""

import datetime
import json
import math
import os
import sys

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", "configs/base.py", "Config file.")
flags.DEFINE_multi_string("mesh", ["1,1,1,1"], "data,fsdp,tensor,sequence sizes; repeat for several meshes.")
flags.DEFINE_multi_string("remat", None, "remat policies to measure (none, dots, full); default: the config's.")
flags.DEFINE_integer("frames", 17, "Video frames.")
flags.DEFINE_integer("height", 256, "Video height.")
flags.DEFINE_integer("width", 256, "Video width.")
flags.DEFINE_integer("cpu_devices", 8, "Fake CPU devices to compile for; 0 = the real devices.")
flags.DEFINE_float("device_gib", None, "Memory per device, GiB: name the setting that fits best.")
flags.DEFINE_string("out", None, "Write the rows as JSON here.")

REMAT_COST = {"none": 0, "dots": 1, "full": 2}  # how much of the forward pass the backward recomputes


def main(_):
    f = flags.FLAGS
    if f.cpu_devices:  # before jax starts
        os.environ["JAX_PLATFORMS"] = "cpu"
        os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={f.cpu_devices}"
    import jax
    from ml_collections import ConfigDict

    from sora_lite import benchmark, sharding

    try:  # every mesh first: a bad flag fails at once, in one line
        meshes = []
        for mesh_flag in f.mesh:
            sizes = sharding.mesh_sizes(mesh_flag)
            if math.prod(sizes.values()) > jax.device_count():
                raise ValueError(f"mesh {mesh_flag} needs {math.prod(sizes.values())} devices; there are "
                                 f"{jax.device_count()} (raise --cpu_devices)")
            meshes.append((mesh_flag, sizes, sharding.make_mesh(ConfigDict(sizes), jax.devices()[:math.prod(sizes.values())])))
    except ValueError as e:
        print(f"bench_memory.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    rows = []
    for remat in f.remat or [f.config.dit.remat]:
        for mesh_flag, sizes, mesh in meshes:
            cfg = ConfigDict(f.config.to_dict())
            cfg.dit.remat, cfg.mesh = remat, sizes
            step = benchmark.Step(cfg, mesh, f.frames, f.height, f.width, batch=sharding.batch_shards(mesh))
            row = {"mesh": sizes, "remat": remat, "precision": cfg.dit.precision, "dit_size": cfg.dit.size,
                   "batch": step.batch, "tokens_per_video": step.tokens, **benchmark.memory(step)}
            rows.append(row)
            base = rows[0]
            state, base_state = (r["params_bytes"] + r["optimizer_bytes"] for r in (row, base))
            print(f"mesh {mesh_flag} remat={remat:5s} batch={step.batch} tokens={step.tokens}: "
                  f"params {row['params_bytes'] / 2**20:.1f} MiB, optimizer {row['optimizer_bytes'] / 2**20:.1f} MiB, "
                  f"activations {row['activation_bytes'] / 2**20:.1f} MiB per device; "
                  f"{row['flops_per_step'] / 1e12:.2f} TFLOP per step | vs first row: params+optimizer "
                  f"x{state / base_state:.3f} (fully sharded: x{1 / (sizes['fsdp'] * sizes['tensor']):.3f}), activations "
                  f"x{row['activation_bytes'] / base['activation_bytes']:.3f}", flush=True)
    if f.device_gib:
        print(fitting(rows, f.device_gib))
    if f.out:
        with open(f.out, "w") as out:
            json.dump({"date": datetime.date.today().isoformat(), "device": jax.devices()[0].device_kind,
                       "jax": jax.__version__, "frames": f.frames, "height": f.height, "width": f.width,
                       "rows": rows}, out, indent=2)


def fitting(rows: list[dict], device_gib: float) -> str:
    """The measured setting that fits `device_gib` per device and recomputes least, said in a line."""
    total = lambda r: r["params_bytes"] + r["optimizer_bytes"] + r["activation_bytes"]  # noqa: E731
    name = lambda r: f"mesh {','.join(str(v) for v in r['mesh'].values())} remat={r['remat']}"  # noqa: E731
    fits = sorted((r for r in rows if total(r) <= device_gib * 2**30), key=lambda r: (REMAT_COST[r["remat"]], total(r)))
    if not fits:
        least = min(rows, key=total)
        return (f"nothing measured fits {device_gib:g} GiB per device; the least is {name(least)} at "
                f"{total(least) / 2**30:.1f} GiB: try more devices, a larger fsdp or sequence axis, remat=full or bf16")
    best = fits[0]
    return (f"fits {device_gib:g} GiB per device: {name(best)}, {total(best) / 2**30:.1f} GiB "
            f"(params {best['params_bytes'] / 2**30:.1f}, optimizer {best['optimizer_bytes'] / 2**30:.1f}, "
            f"activations {best['activation_bytes'] / 2**30:.1f}); {len(fits)} of {len(rows)} settings fit")


if __name__ == "__main__":
    app.run(main)
