"""Input pipeline: clips of a generated data set (`data.name`: Moving Shapes or Camera Moves),
or with `data.folder` your own captioned videos (datasets/video_folder.py), from
tensorflow-datasets (array_record, random access, no TensorFlow) through grain: seeded
shuffle, per-process sharding, batching.

A clip batch is `{"video": float32 [B, T, H, W, 3] in [-1, 1], "caption": str [B], "subject": int32 [B]}`
(`subject` indexes the rows of `captions.caption_rows`: a data set's subjects, or a folder's captions).
Training draws from a *shape mixture*
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
from sora_lite.datasets import camera_moves, generated, video_folder
from sora_lite.shapes import Entry, mixture
from sora_lite.video import to_model


def train_size(data: ConfigDict, entries: list[Entry], entry: Entry) -> int:
    """Training examples of `entry`: its weight's share of `data.train_size` (at least 64)."""
    return max(64, round(data.train_size * entry.weight / sum(e.weight for e in entries)))


CAMERA_INDEX = {combo: i for i, combo in enumerate(camera_moves.SEEN)}


def _prepare_shapes(example: dict) -> dict:
    direction = example["direction"].decode() or None  # "" for an image
    subject = (example["color"].decode(), example["shape"].decode(), direction)
    return {"video": to_model(example["video"]), "caption": example["caption"].decode(),
            "subject": np.int32(SUBJECT_INDEX[subject])}


def _prepare_camera(example: dict) -> dict:
    combo = (example["subject"].decode(), example["move"].decode())
    return {"video": to_model(example["video"]), "caption": example["caption"].decode(),
            "subject": np.int32(CAMERA_INDEX.get(combo, -1))}  # -1: a held-out combination


def sample_prompts(data: ConfigDict, image: bool = False) -> list[str]:
    """A few prompts to watch a run by: Moving Shapes' own, four Camera Moves combinations,
    or a folder's first four captions."""
    name = captions.dataset(data)
    if name == "folder":
        return [r[0] for r in captions.caption_rows(data)[:4]]
    if name == "camera_moves":
        return [camera_moves.caption(*camera_moves.SEEN[i]) for i in (0, 17, 34, 51)]
    return captions.sample_prompts(image=image)


def identity(data: ConfigDict, entry: Entry) -> list:
    """What a split's clips of `entry` are a function of: a cache of anything made from them
    is keyed by it."""
    name = captions.dataset(data)
    if name == "folder":
        return [name, video_folder.fingerprint(data.folder), data.fps, str(entry)]
    module = generated.CameraMoves if name == "camera_moves" else generated.MovingShapes
    # A generated split is a pure function of the version and sizes, wherever it is stored.
    return [name, str(module.VERSION), str(entry), train_size(data, mixture(data), entry)]


def has_clips(data: ConfigDict, split: str, entry: Entry) -> bool:
    """Whether `entry` has clips in `split` (a generated data set always; a folder, where files fit)."""
    if not data.folder:
        return True
    entries = mixture(data)
    sources = video_folder.sources_of(video_folder.scan(data.folder, entries, data.fps)[0], entries, entry)
    return any(s.split == split for s in sources)


def clips(data: ConfigDict, split: str, entry: Entry | None = None):
    """Random-access clips of one split at one mixture entry (default: the first), built on
    first use (seconds for small sizes): Moving Shapes, Camera Moves, or the videos of `data.folder`."""
    entries = mixture(data)
    entry = entry or entries[0]
    name = captions.dataset(data)
    if name == "folder":
        index = {c[0]: i for i, c in enumerate(captions.caption_rows(data))}
        source = Checked(video_folder.builder_for(data.dir, data.folder, entry, entries, data.fps, split), split)
        return grain.MapDataset.source(source).map(
            lambda ex: {"video": to_model(ex["video"]), "caption": ex["caption"].decode(),
                        "subject": np.int32(index[ex["caption"].decode()])})
    module, prepare = ((generated.CameraMoves, _prepare_camera) if name == "camera_moves"
                       else (generated.MovingShapes, _prepare_shapes))
    b = generated.prepare(module, data.dir, *entry.shape, train_size(data, entries, entry))
    return grain.MapDataset.source(Checked(b, split)).map(prepare)


class Checked:
    """Random access to one split of a prepared builder, whose unreadable record (a truncated or
    corrupt file) stops the run with one line naming the file and how to rebuild it. The last
    record is read at once, so a truncated file is found before training starts."""

    def __init__(self, builder, split: str):
        self.source, self.split = builder.as_data_source(split=split), split
        self.path, self.files = builder.data_path, [str(f) for f in builder.info.splits[split].filepaths]
        if len(self.source):
            self[len(self.source) - 1]

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict:
        try:
            example = self.source[i]
        except Exception:  # noqa: BLE001 - any failure to read or decode is a damaged file
            example = None
        if example is None or any(v is None for v in example.values()):
            raise ValueError(f"record {i} of {' '.join(self.files)} is unreadable (a truncated or corrupt file); "
                             f"rebuild the data set: rm -r {self.path} and rerun (it is built again on first use)")
        return example


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
