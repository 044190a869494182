"""Your own videos: a folder of video and image files with captions, as a tensorflow-datasets
builder stored like Moving Shapes (array_record, read with grain, no TensorFlow).

    my_videos/
      captions.csv      path,caption        (or captions.jsonl: {"path": ..., "caption": ...})
      walk.mp4, sunset.gif, cat.png, ...

`scan` probes every listed file once (`video.probe`: as a player shows it, upright and at its
display aspect ratio, a video's frames resampled to the target frame rate as they decode; a
file of one frame, a PNG, JPEG or WebP photo, is an image: a 1-frame clip). Each file goes to
the mixture entries (`shapes.py`) nearest its aspect ratio: videos to the video entries,
images to the image entries. A video gives as many non-overlapping clips of an entry's frame
count as it holds; frames are resized to cover the entry's size and centre-cropped. A file
that is missing, unreadable, not a video, or too short for every entry is skipped with one
warning line naming it, and counted in the summary; nothing else stops. One file in ten (by a hash of its
path) is validation, the rest train: the split never depends on the folder's other files.
"""

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import warnings
import zlib

import numpy as np
import tensorflow_datasets as tfds

from sora_lite import video as video_io
from sora_lite.shapes import Entry

INDEX_FILES = ("captions.csv", "captions.jsonl")
CAPTION_KEYS = ("caption", "text")  # Open-Sora's data tools name the caption column "text"
VALIDATION_SHARE = 10  # one file in this many is validation


@dataclasses.dataclass(frozen=True)
class Source:
    """A usable file of the folder: its path (relative), caption, and frames at the target rate."""

    path: str
    caption: str
    frames: int  # 1 for an image
    height: int
    width: int

    @property
    def split(self) -> str:
        return "validation" if zlib.crc32(self.path.encode()) % VALIDATION_SHARE == 0 else "train"


def read_index(folder: str) -> list[tuple[str, str]]:
    """(path, caption) rows of the folder's captions.csv or captions.jsonl, or a one-line error.
    A CSV with a header row takes its `path` and `caption` (or Open-Sora's `text`) columns and
    ignores the others; without one, each row is path,caption. A JSON line takes the same keys."""
    found = [name for name in INDEX_FILES if os.path.isfile(os.path.join(folder, name))]
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no such folder: {folder}")
    if len(found) != 1:
        raise ValueError(f"{folder} needs exactly one caption index, {' or '.join(INDEX_FILES)} "
                         f"(rows: path,caption); found {found or 'none'}")
    path = os.path.join(folder, found[0])
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
        if found[0].endswith(".csv"):
            columns = None  # (path, caption) indices from a header row; without one, path,caption
            for n, row in enumerate(csv.reader(f), 1):
                names = [c.strip().lower() for c in row]
                if not any(names):
                    continue  # a blank line
                caption = next((k for k in CAPTION_KEYS if k in names), None)
                if not rows and columns is None and "path" in names and caption:  # the first row: a header
                    columns = (names.index("path"), names.index(caption))
                    continue
                if columns is None and len(row) != 2:
                    raise ValueError(f"{path} line {n}: expected 2 columns path,caption (or a header row "
                                     f"naming path and caption); got {len(row)}")
                if columns is not None and len(row) <= max(columns):
                    raise ValueError(f"{path} line {n}: expected the header's columns; got {len(row)}")
                i, j = columns or (0, 1)
                rows.append((row[i].strip(), row[j].strip()))
        else:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    key = next((k for k in CAPTION_KEYS if k in record), "caption")
                    rows.append((str(record["path"]).strip(), str(record[key]).strip()))
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise ValueError(f"{path} line {n}: expected {{\"path\": ..., \"caption\": ...}}; "
                                     f"{type(e).__name__}") from None
    return rows


def nearest_entries(entries: list[Entry], height: int, width: int, image: bool) -> list[Entry]:
    """The entries (images' for an image, videos' for a video) nearest the aspect ratio w / h."""
    pool = [e for e in entries if (e.frames == 1) == image]
    if not pool:
        return []
    gap = lambda e: abs(math.log(e.width / e.height) - math.log(width / height))  # noqa: E731
    best = min(gap(e) for e in pool)
    return [e for e in pool if gap(e) - best < 1e-9]


_SCANS = {}  # (folder, fingerprint, entries, fps) -> scan result: each entry's build reuses it


def scan(folder: str, entries: list[Entry], fps: float) -> tuple[list[Source], list[str]]:
    """(the usable files, a warning line per skipped one), each file decoded once per process."""
    key = (os.path.abspath(folder), fingerprint(folder), tuple(entries), fps)
    if key not in _SCANS:
        _SCANS[key] = _scan(folder, entries, fps)
    return _SCANS[key]


def _scan(folder, entries, fps):
    sources, skipped = [], []
    for path, caption in read_index(folder):
        full = os.path.join(folder, path)
        why = None
        if not caption:
            why = "has an empty caption"
        elif not os.path.isfile(full):
            why = "is listed but not found"
        else:
            try:
                count, height, width = video_io.probe(full, fps)
            except ValueError as e:
                why = str(e)
        if why is None:
            image = count == 1
            kind = "image" if image else "video"
            shortest = min((e.frames for e in nearest_entries(entries, height, width, image)), default=None)
            if shortest is None:
                why = f"is {'an' if image else 'a'} {kind} and the mixture has no {kind} shape"
            elif count < shortest:
                why = f"is too short: {count} frames at {fps:g} fps; its shapes need {shortest}"
        if why:
            skipped.append(f"skipped {path}: {why}")
            continue
        sources.append(Source(path, caption, count, height, width))
    return sources, skipped


def sources_of(sources: list[Source], entries: list[Entry], entry: Entry) -> list[Source]:
    """The sources that give `entry` clips: nearest its aspect ratio, and long enough."""
    return [s for s in sources if clips_of(s, entry) and entry.shape in
            {e.shape for e in nearest_entries(entries, s.height, s.width, s.frames == 1)}]


def _by_split(sources: list[Source]) -> dict:
    return {split: [s for s in sources if s.split == split] for split in ("train", "validation")}


def clips_of(source: Source, entry: Entry) -> int:
    """How many clips of `entry`'s length a source's frames hold (whatever its aspect ratio)."""
    return source.frames // entry.frames


@dataclasses.dataclass
class VideoFolderConfig(tfds.core.BuilderConfig):
    folder: str = ""
    frames: int = 17
    height: int = 32
    width: int = 32
    fps: float = 8.0
    all_entries: tuple = ()  # every mixture entry: a file goes to those nearest its aspect ratio


class VideoFolder(tfds.core.GeneratorBasedBuilder):
    """Clips of one mixture entry from a folder of captioned videos and images."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        c = self.builder_config
        return tfds.core.DatasetInfo(
            builder=self, description=__doc__, disable_shuffling=True,
            features=tfds.features.FeaturesDict({
                "video": tfds.features.Tensor(shape=(c.frames, c.height, c.width, 3), dtype=np.uint8),
                "caption": tfds.features.Text(),
                "source": tfds.features.Text(),  # the file it came from
            }),
        )

    def _split_generators(self, dl_manager):
        c = self.builder_config
        entries = [Entry(*e) for e in c.all_entries]
        sources, _ = scan(c.folder, entries, c.fps)
        mine = sources_of(sources, entries, Entry(c.frames, c.height, c.width))
        # Only splits with clips: tfds refuses to write an empty one.
        return {split: self._generate_examples(group) for split, group in _by_split(mine).items() if group}

    def _generate_examples(self, sources):
        c = self.builder_config
        entry = Entry(c.frames, c.height, c.width, 1.0)
        for s in sources:
            frames = video_io.decode(os.path.join(c.folder, s.path), c.fps, (c.height, c.width))
            for k in range(clips_of(s, entry)):
                clip = frames[k * c.frames : (k + 1) * c.frames]
                yield f"{s.path}#{k}", {"video": clip, "caption": s.caption, "source": s.path}


def fingerprint(folder: str) -> str:
    """A key of the folder's index and files (names, sizes, times): a changed folder builds anew."""
    h = hashlib.sha1()
    for path, caption in read_index(folder):
        full = os.path.join(folder, path)
        stat = os.stat(full) if os.path.isfile(full) else None
        h.update(json.dumps([path, caption, stat and stat.st_size, stat and stat.st_mtime_ns]).encode())
    return h.hexdigest()[:12]


def builder(data_dir: str, folder: str, entry: Entry, entries: list[Entry], fps: float) -> VideoFolder:
    """The builder of one entry's clips from `folder`, prepared on first use."""
    folder = os.path.abspath(folder)
    config = VideoFolderConfig(
        name=f"{fingerprint(folder)}_{entry}_fps{fps:g}".replace(".", "p"), folder=folder,
        frames=entry.frames, height=entry.height, width=entry.width, fps=fps,
        all_entries=tuple((e.frames, e.height, e.width, e.weight) for e in entries))
    b = VideoFolder(config=config, data_dir=data_dir, file_format="array_record")
    tfds.disable_progress_bar()
    # tfds's chatter ("Downloading and preparing dataset Unknown size ..." on stdout, warnings):
    # `prepare` reports the folder itself.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        b.download_and_prepare()
    return b


def prepare(data_dir: str, folder: str, entries: list[Entry], fps: float) -> tuple[dict, list[str]]:
    """Build every entry's clips from `folder`. Returns ({entry: {split: clips}}, warning lines)."""
    sources, skipped = scan(folder, entries, fps)
    counts = {}
    for entry in entries:
        mine = sources_of(sources, entries, entry)
        counts[str(entry)] = {split: sum(clips_of(s, entry) for s in group) for split, group in _by_split(mine).items()}
        if mine:
            builder(data_dir, folder, entry, entries, fps)
    return counts, skipped


def summary(counts: dict, skipped: list[str], files: int) -> str:
    """One line: files used and skipped, clips per shape."""
    shapes = ", ".join(f"{shape} {c['train']}+{c['validation']}" for shape, c in counts.items())
    return (f"{files - len(skipped)} of {files} files used, {len(skipped)} skipped; "
            f"clips per shape (train+validation): {shapes}")


def captions(folder: str, entries: list[Entry], fps: float) -> list[str]:
    """The distinct captions of the folder's usable files, sorted: what training draws from."""
    return sorted({s.caption for s in scan(folder, entries, fps)[0]})


def builder_for(data_dir: str, folder: str, entry: Entry, entries: list[Entry], fps: float, split: str):
    """The prepared builder of `entry`'s clips, or a one-line ValueError if `split` has none."""
    sources = [s for s in sources_of(scan(folder, entries, fps)[0], entries, entry) if s.split == split]
    if not sources:
        raise ValueError(f"data.mixture entry {entry} has no {split} clips in {folder}: no file nearest its "
                         f"aspect ratio is long enough (scripts/prepare_videos.py lists clips per shape); "
                         f"drop the entry or add such files")
    return builder(data_dir, folder, entry, entries, fps)


def write_folder(folder: str, clips) -> int:
    """Write `clips`, (file name, uint8 video [T, H, W, 3], caption) each, as files of `folder`
    with their captions.csv: a folder as `read_index` and training read it. Returns the count."""
    os.makedirs(folder, exist_ok=True)
    n = 0
    with open(os.path.join(folder, "captions.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "caption"])
        for n, (name, clip, caption) in enumerate(clips, 1):
            video_io.write(os.path.join(folder, name), clip)
            writer.writerow([name, caption])
    return n
