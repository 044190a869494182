"""Training throughput on the shape mixture against one shape, at the same tokens per step;
and the packing alternative's attention cost. Prints the figures and writes JSON.

    python scripts/bench_mixture.py --config configs/shapes.py --out benchmarks/bench_mixture.json

Buckets (what train_dit.py does): every mixture entry's step, compiled for its batch
(`train.batch_size` videos of the first entry, as many tokens for the others), is timed
(median of --steps after a warm-up); the mixture's tokens/s is its schedule's tokens over
its schedule's time, against the first entry alone at `train.batch_size`. Compile times are
reported apart: one per entry, paid once per run (or not at all from the persistent cache).

Packing (NaViT's Patch n' Pack, what Sora cites): the same videos packed into sequences of
the longest entry's tokens, attention masked per video. XLA computes a masked attention at
full size, so each packed row pays for its whole length squared; the script times the
self-attention forward and backward of one step's tokens both ways, at the DiT's heads.
"""

import datetime
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from ml_collections import config_flags

from sora_lite import benchmark, cli, data, sharding
from sora_lite.dit import SIZES
from sora_lite.sizing import num_tokens

config_flags.DEFINE_config_file("config", "configs/shapes.py", "Config file (its data.mixture and train.batch_size).")
flags.DEFINE_integer("steps", 5, "Timed steps per entry (after one untimed).")
flags.DEFINE_integer("schedule", 1000, "Steps of the mixture's schedule that the throughput averages over.")
flags.DEFINE_string("out", None, "Write the result as JSON here.")


def _timed(fn, *args, repeats: int = 5) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm up
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - tic)
    return float(np.median(times))


def attention_cost(lengths: list[int], packed_length: int, heads: int, head_dim: int) -> dict:
    """Seconds of self-attention forward + backward over videos of `lengths` tokens: one batch
    per length (buckets), or first-fit packed into rows of `packed_length` with a block mask."""
    def grad_fn(mask):
        loss = lambda q, k, v: jnp.sum(sharding.attention(q, k, v, mask) ** 2)  # the DiT's own  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))

    def qkv(b, n):
        x = jax.random.normal(jax.random.key(0), (b, n, heads, head_dim))
        return x, x, x

    bucket = sum(_timed(grad_fn(None), *qkv(lengths.count(n), n)) for n in sorted(set(lengths)))
    rows = []  # first-fit decreasing: each row a list of video lengths
    for n in sorted(lengths, reverse=True):
        row = next((r for r in rows if sum(r) + n <= packed_length), None)
        row.append(n) if row is not None else rows.append([n])
    segment = np.full((len(rows), packed_length), -1)  # -1: padding
    for i, row in enumerate(rows):
        segment[i, :sum(row)] = np.repeat(np.arange(len(row)), row)
    mask = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0)
    mask |= np.eye(packed_length, dtype=bool)[None]  # padding attends to itself: no empty softmax
    packed = _timed(grad_fn(jnp.asarray(mask[:, None])), *qkv(len(rows), packed_length))
    return {"bucket_s": bucket, "packed_s": packed, "packed_rows": len(rows),
            "padding_fraction": float(1 - sum(lengths) / (len(rows) * packed_length))}


def main(_):
    cfg = flags.FLAGS.config
    mesh = sharding.make_mesh(cfg.mesh)
    entries = data.mixture(cfg.data)
    tokens = [num_tokens(cfg, *e.shape) for e in entries]
    sizes = data.bucket_sizes(tokens, cfg.train.batch_size, sharding.batch_shards(mesh))
    rows = []
    for e, n, b in zip(entries, tokens, sizes):
        step = benchmark.Step(cfg, mesh, *e.shape, b)
        tic = time.perf_counter()
        step.compile()
        compile_s = time.perf_counter() - tic
        speed = benchmark.speed(step, flags.FLAGS.steps, warmup=1)
        rows.append({"shape": str(e), "weight": e.weight, "batch": b, "tokens_per_video": n,
                     "compile_s": compile_s, "step_time_s": speed["step_time_s"],
                     "tokens_per_s": speed["tokens_per_s"]})
        print(f"{e}: batch {b} x {n} tokens = {b * n} per step, {speed['step_time_s'] * 1e3:.0f} ms, "
              f"{speed['tokens_per_s']:.0f} tokens/s, compile {compile_s:.1f}s", flush=True)
    counts = np.bincount(data.schedule([e.weight for e in entries], cfg.seed, flags.FLAGS.schedule),
                         minlength=len(entries))
    mixed = sum(c * r["batch"] * r["tokens_per_video"] for c, r in zip(counts, rows)) / sum(
        c * r["step_time_s"] for c, r in zip(counts, rows))
    single = rows[0]["tokens_per_s"]
    print(f"mixture {mixed:.0f} tokens/s vs {entries[0]} alone {single:.0f} tokens/s: x{mixed / single:.3f}; "
          f"{len(rows)} compiled steps, {sum(r['compile_s'] for r in rows):.1f}s in all")

    size = SIZES[cfg.dit.size]
    lengths = [n for e, n, b, c in zip(entries, tokens, sizes, counts) for _ in range(b * round(c / counts.sum() * 8))]
    packing = attention_cost(lengths, max(tokens), size.heads, size.width // size.heads)
    print(f"self-attention fwd+bwd over {len(lengths)} videos ({sum(lengths)} tokens): buckets "
          f"{packing['bucket_s'] * 1e3:.0f} ms, packed into {packing['packed_rows']} rows of {max(tokens)} "
          f"{packing['packed_s'] * 1e3:.0f} ms (x{packing['packed_s'] / packing['bucket_s']:.2f}, "
          f"{100 * packing['padding_fraction']:.1f}% padding)")
    if flags.FLAGS.out:
        with open(flags.FLAGS.out, "w") as f:
            json.dump({"date": datetime.date.today().isoformat(), "device": jax.devices()[0].device_kind,
                       "devices": mesh.size, "mixture": cfg.data.mixture, "dit_size": cfg.dit.size,
                       "entries": rows, "mixture_tokens_per_s": mixed, "single_shape_tokens_per_s": single,
                       "ratio": mixed / single, "packing": packing}, f, indent=2)


if __name__ == "__main__":
    cli.run_script(main)
