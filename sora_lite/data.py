"""Input pipeline: Moving Shapes clips from tensorflow-datasets (array_record, random
access, no TensorFlow) through grain: seeded shuffle, per-process sharding, batching.

A clip batch is `{"video": float32 [B, T, H, W, 3] in [-1, 1], "caption": str [B]}`.
Batches are a pure function of `(seed, step)`, so resuming at a step needs no iterator
state. DiT training batches pre-encoded latents through the same `batches`.
"""

import grain
import numpy as np
from ml_collections import ConfigDict

from sora_lite.datasets import moving_shapes
from sora_lite.video import to_model


def _prepare(example: dict) -> dict:
    return {"video": to_model(example["video"]), "caption": example["caption"].decode()}


def clips(data: ConfigDict, split: str):
    """Random-access Moving Shapes clips of one split (built on first use; seconds for small sizes)."""
    b = moving_shapes.builder(data.dir, data.frames, data.height, data.width, data.train_size)
    return grain.MapDataset.source(b.as_data_source(split=split)).map(_prepare)


def batches(ds: grain.MapDataset, batch_size: int, seed: int, start_step: int = 0,
            process_index: int = 0, process_count: int = 1, repeat: bool = True):
    """Iterator over this process's batches from `start_step` on (global batch / process_count each).

    Process i gets the i-th contiguous block of rows of each global batch (it reads only
    those), so the processes' rows stacked in process order are the one-process batch.
    With `repeat`, an endless reshuffled stream; without, one pass in order.
    """
    if batch_size % process_count:
        raise ValueError(f"batch_size {batch_size} must divide evenly over {process_count} processes")
    if repeat:
        ds = ds.seed(seed).shuffle().repeat()
    # Per-process blocks of the stream; step s of process i is block s * process_count + i.
    ds = ds.batch(batch_size // process_count, drop_remainder=repeat)[process_index::process_count]
    return iter(ds[start_step:].to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)))
