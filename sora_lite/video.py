"""Writing and reading video files with PyAV (FFmpeg inside the wheel): .mp4 (H.264) and .gif."""

import os

import av
import numpy as np


def to_model(video_uint8: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] -> float32 in [-1, 1], the range the autoencoder works in."""
    return video_uint8.astype(np.float32) / 127.5 - 1.0


def to_uint8(video) -> np.ndarray:
    return np.clip(np.round((np.asarray(video, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def write(path: str, video: np.ndarray, fps: int = 8):
    """Write uint8 [T, H, W, 3] to `path`; the container follows the extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".mp4", ".gif"):
        raise ValueError(f"unsupported video extension {ext!r} for {path}: use .mp4 or .gif")
    video = np.asarray(video, np.uint8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with av.open(path, "w") as out:
        if ext == ".gif":
            stream = out.add_stream("gif", rate=fps)
            stream.pix_fmt = "rgb8"
        else:
            stream = out.add_stream("libx264", rate=fps)
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "12"}
        stream.height, stream.width = video.shape[1:3]
        for frame in video:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())


def read(path: str) -> np.ndarray:
    """uint8 [T, H, W, 3] of every frame in a video file."""
    with av.open(path) as f:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in f.decode(video=0)])
