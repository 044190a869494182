"""Video files: the same frames make the same file."""

import numpy as np
import pytest

from sora_lite import video
from sora_lite.datasets.moving_shapes import render


@pytest.mark.parametrize("ext", [".mp4", ".gif"])
def test_the_same_video_writes_the_same_bytes_every_time(tmp_path, ext):
    rng = np.random.default_rng(0)
    clip = render("red", "circle", "left", 32, 32, 17, rng)  # [T, H, W, 3]
    clip = np.clip(clip + rng.integers(-20, 20, clip.shape), 0, 255).astype(np.uint8)  # texture, as samples have
    files = set()
    for i in range(30):
        heap = [rng.bytes(int(n)) for n in rng.integers(100, 20000, i % 6)]  # other memory around each write
        video.write(str(tmp_path / f"v{ext}"), clip.copy())
        files.add((tmp_path / f"v{ext}").read_bytes())
        del heap
    assert len(files) == 1
    assert ext != ".mp4" or b"mbtree=0" in files.pop()  # the setting that made it so
