"""Prepare a folder of your own captioned videos and images as clips of a config's shape mixture.

    python scripts/prepare_videos.py --folder my_videos --config configs/shapes.py --fps 8

The folder holds the files and one caption index, `captions.csv` (rows `path,caption`) or
`captions.jsonl` (`{"path": ..., "caption": ...}` per line); see
sora_lite/datasets/video_folder.py for how files become clips (frame rate, nearest aspect
ratio, resize and centre crop, the split). The clips are written under the config's
`data.dir` with tensorflow-datasets (array_record). Prints one line per skipped file and a
summary of clips per shape.
"""

import sys

from absl import flags
from ml_collections import config_flags

from sora_lite import cli

_CONFIG = config_flags.DEFINE_config_file("config", "configs/shapes.py", "the config whose data.mixture to cut for")
_FOLDER = flags.DEFINE_string("folder", None, "the folder of videos, images and captions.csv / captions.jsonl")
_FPS = flags.DEFINE_float("fps", 8.0, "frames per second the videos are resampled to")


def main(argv):
    from sora_lite.datasets import video_folder
    from sora_lite.shapes import mixture

    if not _FOLDER.value:
        raise ValueError("--folder is required: a folder of videos and images with captions.csv or captions.jsonl")
    if not _FPS.value > 0:
        raise ValueError(f"--fps must be positive; got {_FPS.value}")
    cfg = _CONFIG.value
    files = len(video_folder.read_index(_FOLDER.value))
    counts, skipped = video_folder.prepare(cfg.data.dir, _FOLDER.value, mixture(cfg.data), _FPS.value)
    for line in skipped:
        print(f"prepare_videos.py: warning: {line}", file=sys.stderr)
    print(video_folder.summary(counts, skipped, files))


if __name__ == "__main__":
    cli.run_script(main)
