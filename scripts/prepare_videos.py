"""Prepare a folder of your own captioned videos and images as clips of a config's shape mixture.

    python scripts/prepare_videos.py --config configs/shapes.py --config.data.folder=my_videos

The folder holds the files and one caption index, `captions.csv` (rows `path,caption`) or
`captions.jsonl` (`{"path": ..., "caption": ...}` per line); see
sora_lite/datasets/video_folder.py for how files become clips (`data.fps`, nearest aspect
ratio, resize and centre crop, the split). The clips are written under the config's
`data.dir` with tensorflow-datasets (array_record), where training with the same
`--config.data.folder` finds them. Prints one line per skipped file and a summary of clips
per shape.
"""

import sys

from ml_collections import config_flags

from sora_lite import cli

_CONFIG = config_flags.DEFINE_config_file("config", "configs/shapes.py", "the config whose data section to cut for")


def main(argv):
    from sora_lite.datasets import video_folder
    from sora_lite.shapes import mixture

    data = _CONFIG.value.data
    if not data.folder:
        raise ValueError("set --config.data.folder to a folder of videos and images with captions.csv or captions.jsonl")
    if not data.fps > 0:
        raise ValueError(f"data.fps must be positive; got {data.fps}")
    files = len(video_folder.read_index(data.folder))
    counts, skipped = video_folder.prepare(data.dir, data.folder, mixture(data), data.fps)
    for line in skipped:
        print(f"prepare_videos.py: warning: {line}", file=sys.stderr)
    print(video_folder.summary(counts, skipped, files))


if __name__ == "__main__":
    cli.run_script(main)
