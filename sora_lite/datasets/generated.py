"""The generated data sets' storage: example i of a split of Moving Shapes or Camera Moves is
a pure function `example(split, i, H, W, T)` (moving_shapes.py, camera_moves.py, which import
no tensorflow-datasets), and a tensorflow-datasets builder here stores each size's splits as
raw uint8 tensors in array_record files (no TensorFlow to build or read), each size under its
own builder config.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle as tfds_shuffle

from sora_lite.datasets import camera_moves, moving_shapes

# tfds buffers a split in memory up to this size and spills the rest to disk through
# TensorFlow's file API, which we do not install: hold whole splits in memory instead
# (a 50,000-clip 17x32x32 train split is 2.6 GB while it is written).
tfds_shuffle.MAX_MEM_BUFFER_SIZE = 64 << 30

SPLIT_SIZES = {"validation": 1024, "test_heldout": 512}  # train's size is the config's


@dataclasses.dataclass
class SizeConfig(tfds.core.BuilderConfig):
    frames: int = 17
    height: int = 32
    width: int = 32
    train_size: int = 10_000


def size_config(frames: int, height: int, width: int, train_size: int) -> SizeConfig:
    """A builder config named after its sizes, so each size lives in its own directory."""
    return SizeConfig(name=f"{frames}x{height}x{width}_n{train_size}", frames=frames, height=height, width=width,
                      train_size=train_size)


class GeneratedClips(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Each split's examples `example(split, i, H, W, T)`, i below the split's size. A data set
    subclasses it with its VERSION, `example` and the text FEATURES its examples carry
    besides the video and caption."""

    BUILDER_CONFIGS = [size_config(17, 32, 32, 10_000)]
    FEATURES: tuple[str, ...] = ()

    @staticmethod
    def example(split: str, index: int, height: int, width: int, frames: int) -> dict:
        raise NotImplementedError

    def _info(self):
        c = self.builder_config
        return tfds.core.DatasetInfo(
            builder=self, description=self.__doc__,
            # Examples are already i.i.d. draws, and grain shuffles on read; tfds's own
            # shuffle would spill large splits to disk through TensorFlow's file API.
            disable_shuffling=True,
            features=tfds.features.FeaturesDict({
                "video": tfds.features.Tensor(shape=(c.frames, c.height, c.width, 3), dtype=np.uint8),
                "caption": tfds.features.Text(),
                **{name: tfds.features.Text() for name in self.FEATURES},
            }),
        )

    def _split_generators(self, dl_manager):
        sizes = {"train": self.builder_config.train_size, **SPLIT_SIZES}
        return {split: self._generate_examples(split, n) for split, n in sizes.items()}

    def _generate_examples(self, split, n):
        c = self.builder_config
        for i in range(n):
            yield i, self.example(split, i, c.height, c.width, c.frames)


def prepare(cls, data_dir: str, frames: int, height: int, width: int, train_size: int):
    """The `cls` builder for one size, prepared (generated and written) on first use."""
    b = cls(config=size_config(frames, height, width, train_size), data_dir=data_dir, file_format="array_record")
    b.download_and_prepare()
    return b


class MovingShapes(GeneratedClips):
    """Moving Shapes level 1: one coloured shape moving in a straight line (or, at T = 1, still)."""

    VERSION = tfds.core.Version("2.0.0")  # spec v2: images; combinations independent of T
    FEATURES = ("color", "shape", "direction")
    example = staticmethod(moving_shapes.example)


class CameraMoves(GeneratedClips):
    """Camera Moves v1: a camera panning, zooming or rotating over a real photograph."""

    VERSION = tfds.core.Version("1.0.0")
    FEATURES = ("subject", "move")
    example = staticmethod(camera_moves.example)
