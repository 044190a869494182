"""Input pipeline: Moving Shapes clips, or with `data.folder` your own captioned videos
(datasets/video_folder.py), from tensorflow-datasets (array_record, random access, no
TensorFlow) through grain: seeded shuffle, per-process sharding, batching.

A clip batch is `{"video": float32 [B, T, H, W, 3] in [-1, 1], "caption": str [B], "subject": int32 [B]}`
(`subject` indexes the rows of `caption_rows`: Moving Shapes' subjects, or a folder's captions). Training draws from a *shape mixture*
(`data.mixture`, e.g. "17x32x32:2,1x32x32:1"): each step takes one whole batch of one
entry (a bucket), chosen with probability proportional to the entry's weight, so every
batch has one shape and compiles once. Which entry a step takes and what it reads are a
pure function of `(seed, step)`, so resuming at a step needs no iterator state.
"""

import grain
import numpy as np
from ml_collections import ConfigDict

from sora_lite import captions
from sora_lite.captions import SUBJECT_INDEX
from sora_lite.datasets import moving_shapes, video_folder
from sora_lite.shapes import Entry, mixture
from sora_lite.video import to_model


def train_size(data: ConfigDict, entries: list[Entry], entry: Entry) -> int:
    """Training examples of `entry`: its weight's share of `data.train_size` (at least 64)."""
    return max(64, round(data.train_size * entry.weight / sum(e.weight for e in entries)))


def _prepare(example: dict) -> dict:
    direction = example["direction"].decode() or None  # "" for an image
    subject = (example["color"].decode(), example["shape"].decode(), direction)
    return {"video": to_model(example["video"]), "caption": example["caption"].decode(),
            "subject": np.int32(SUBJECT_INDEX[subject])}


def caption_rows(data: ConfigDict) -> list[list[str]]:
    """The captions a clip's `subject` indexes: per Moving Shapes subject its training captions
    (captions.py); for a folder, each distinct caption alone."""
    if data.folder:
        return [[c] for c in video_folder.captions(data.folder, mixture(data), data.fps)]
    table, k = captions.caption_table(), captions.PER_SUBJECT
    return [table[i : i + k] for i in range(0, len(table), k)]


def has_clips(data: ConfigDict, split: str, entry: Entry) -> bool:
    """Whether `entry` has clips in `split` (Moving Shapes always; a folder, where files fit)."""
    if not data.folder:
        return True
    entries = mixture(data)
    sources = video_folder.sources_of(video_folder.scan(data.folder, entries, data.fps)[0], entries, entry)
    return any(s.split == split for s in sources)


def clips(data: ConfigDict, split: str, entry: Entry | None = None):
    """Random-access clips of one split at one mixture entry (default: the first), built on
    first use (seconds for small sizes): Moving Shapes, or the videos of `data.folder`."""
    entries = mixture(data)
    entry = entry or entries[0]
    if data.folder:
        index = {c[0]: i for i, c in enumerate(caption_rows(data))}
        source = video_folder.data_source(data.dir, data.folder, entry, entries, data.fps, split)
        return grain.MapDataset.source(source).map(
            lambda ex: {"video": to_model(ex["video"]), "caption": ex["caption"].decode(),
                        "subject": np.int32(index[ex["caption"].decode()])})
    b = moving_shapes.builder(data.dir, *entry.shape, train_size(data, entries, entry))
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


def bucket_sizes(sizes: list[int], batch_size: int, multiple: int) -> list[int]:
    """Per-entry batch sizes carrying as much as `batch_size` items of the first entry's size
    (`sizes`: tokens or pixels per example), each a positive multiple of `multiple`."""
    return [max(1, round(batch_size * sizes[0] / s / multiple)) * multiple for s in sizes]


def schedule(weights, seed: int, steps: int) -> np.ndarray:
    """The entry each of `steps` steps trains on, drawn with probability proportional to
    `weights`; a pure function of `seed`, and a longer run extends a shorter one's schedule."""
    u = np.random.default_rng([seed, 11]).random(steps)
    cdf = np.cumsum(weights) / np.sum(weights)
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(weights) - 1)


class MixtureBatches:
    """This process's batches of a mixture from `start` on: step s reads the next batch of
    entry `choices[s]` (each entry's own seeded stream, resumed at the count of its earlier steps)."""

    def __init__(self, sources, batch_sizes, choices, seed, start, process_index=0, process_count=1):
        self.choices, self.step = choices, start
        self.streams = [
            batches(ds, b, seed + i, int(np.sum(choices[:start] == i)), process_index, process_count)
            for i, (ds, b) in enumerate(zip(sources, batch_sizes))]

    def __next__(self) -> tuple[int, dict]:
        """(entry index, batch) of the next step."""
        i = int(self.choices[self.step])
        self.step += 1
        return i, next(self.streams[i])

    def __iter__(self):
        return self
