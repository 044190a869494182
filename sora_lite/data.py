"""Input pipeline: Moving Shapes clips from tensorflow-datasets (array_record, random
access, no TensorFlow) through grain: seeded shuffle, per-process sharding, batching.

A batch is `{"video": float32 [B, T, H, W, 3] in [-1, 1], "caption": str [B]}`. Batches
are a pure function of `(seed, step)`, so resuming at a step needs no iterator state.
"""

import grain
import numpy as np
from ml_collections import ConfigDict

from sora_lite.datasets import moving_shapes


def to_model(video_uint8: np.ndarray) -> np.ndarray:
    return video_uint8.astype(np.float32) / 127.5 - 1.0


def to_uint8(video: np.ndarray) -> np.ndarray:
    return np.clip(np.round((np.asarray(video, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _prepare(example: dict) -> dict:
    return {"video": to_model(example["video"]), "caption": example["caption"].decode()}


def source(data: ConfigDict, split: str):
    """The tfds random-access source of one split (built on first use, in seconds for small sizes)."""
    b = moving_shapes.builder(data.dir, data.frames, data.height, data.width, data.train_size)
    return b.as_data_source(split=split)


def batches(data: ConfigDict, split: str, batch_size: int, seed: int, start_step: int = 0,
            process_index: int = 0, process_count: int = 1, repeat: bool = True):
    """Iterator over this process's batches from `start_step` on (global batch / process_count each)."""
    if batch_size % process_count:
        raise ValueError(f"batch_size {batch_size} must divide evenly over {process_count} processes")
    ds = grain.MapDataset.source(source(data, split)).seed(seed)
    ds = ds.shuffle() if repeat else ds
    ds = ds.repeat() if repeat else ds
    ds = ds.map(_prepare)[process_index::process_count]
    ds = ds.batch(batch_size // process_count, drop_remainder=repeat)
    return iter(ds[start_step:].to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)))
