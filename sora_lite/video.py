"""Writing and reading video files with PyAV (FFmpeg inside the wheel): .mp4 (H.264) and .gif,
and .png for a 1-frame video (an image)."""

import os

import av
import numpy as np


def to_model(video_uint8: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] -> float32 in [-1, 1], the range the autoencoder works in."""
    return video_uint8.astype(np.float32) / 127.5 - 1.0


def to_uint8(video) -> np.ndarray:
    return np.clip(np.round((np.asarray(video, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def from_sampler(video) -> np.ndarray:
    """A sampled video (float, [-1, 1]) as uint8, or a one-line FloatingPointError if it is not finite."""
    video = np.asarray(video)
    if not np.isfinite(video).all():
        raise FloatingPointError("the generated video has NaN/Inf values: the checkpoint's weights are "
                                 "not finite; use an earlier checkpoint")
    return to_uint8(video)


def check_extension(path: str, frames: int | None):
    """A one-line ValueError unless `path` can hold a video of `frames` frames (None: any)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".mp4", ".gif", ".png"):
        raise ValueError(f"unsupported extension {ext!r} for {path}: use .mp4 or .gif (.png for one frame)")
    if ext == ".png" and frames not in (None, 1):
        raise ValueError(f"a .png holds one frame; got {frames} frames: use --frames 1, or .mp4 / .gif")


def write(path: str, video: np.ndarray, fps: int = 8):
    """Write uint8 [T, H, W, 3] to `path`; the container follows the extension."""
    video = np.asarray(video, np.uint8)
    check_extension(path, len(video))
    ext = os.path.splitext(path)[1].lower()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with av.open(path, "w", format="image2" if ext == ".png" else None) as out:
        if ext == ".png":
            stream = out.add_stream("png")
            stream.pix_fmt = "rgb24"
        elif ext == ".gif":
            stream = out.add_stream("gif", rate=fps)
            stream.pix_fmt = "rgb8"
        else:
            stream = out.add_stream("libx264", rate=fps)
            stream.pix_fmt = "yuv420p"
            # With x264's macroblock-tree rate control the same frames came out as other pixels
            # from run to run (by up to 11 levels), even on one thread; without it, one output.
            stream.options = {"crf": "12", "x264-params": "mbtree=0"}
        stream.height, stream.width = video.shape[1:3]
        for frame in video:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())


def read(path: str) -> np.ndarray:
    """uint8 [T, H, W, 3] of every frame in a video or image file (MP4, GIF, PNG, JPEG, ...),
    upright as a player shows it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with av.open(path) as f:
            frames = [upright(frame) for frame in f.decode(video=0)]
    except IndexError:  # PyAV's answer to decode(video=0) of a file without one (audio alone)
        raise ValueError(f"{path} has no video or image stream; use a PNG, JPEG, GIF or MP4 file") from None
    except av.FFmpegError as e:
        raise ValueError(f"cannot read {path} as an image or video ({type(e).__name__}); "
                         "use a PNG, JPEG, GIF or MP4 file") from None
    if not frames:
        raise ValueError(f"{path} holds no frames; use a PNG, JPEG, GIF or MP4 file")
    return np.stack(frames)


def upright(frame: av.VideoFrame) -> np.ndarray:
    """uint8 [H, W, 3]: a decoded frame's pixels turned as its display matrix says (a phone
    video's rotation, a photo's EXIF orientation; PyAV gives the counterclockwise angle)."""
    return np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), k=round(frame.rotation / 90) % 4))
