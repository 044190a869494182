"""Writing and reading video files with PyAV (FFmpeg inside the wheel): .mp4 (H.264) and .gif,
and .png for a 1-frame video (an image); any file FFmpeg decodes read as a player shows it
(upright, at its display aspect ratio), and `decode`: resampled to a frame rate and fitted to
a size as it decodes."""

import contextlib
import math
import os
from fractions import Fraction

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
    upright as a player shows it, or a one-line error naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with _readable(), av.open(path) as f:
            frames = [upright(frame, _pixel_aspect(f)) for frame in f.decode(video=0)]
        if not frames:
            raise ValueError("holds no frames")
    except ValueError as e:
        raise ValueError(f"{path} {e}; use a PNG, JPEG, GIF or MP4 file") from None
    return np.stack(frames)


def upright(frame: av.VideoFrame, aspect: Fraction) -> np.ndarray:
    """uint8 [H, W, 3]: a decoded frame's pixels made square (an anamorphic video's pixels are
    `aspect` times as wide as tall: DV, DVD, some cameras) and turned as its display matrix says
    (a phone video's rotation, a photo's EXIF orientation)."""
    width = _square_width(frame.width, aspect)
    rgb = frame.to_ndarray(format="rgb24", width=width, height=frame.height, interpolation="AREA")
    return np.ascontiguousarray(np.rot90(rgb, k=_quarter_turns(frame)))


def _quarter_turns(frame: av.VideoFrame) -> int:
    return round(frame.rotation / 90) % 4  # PyAV gives the counterclockwise angle


def _pixel_aspect(container) -> Fraction:
    """Width / height of the first video stream's pixels: the container's sample aspect ratio,
    else the codec's, else square (FFmpeg's own order; None or 0 is unknown)."""
    if not container.streams.video:
        return Fraction(1)  # decoding says what is wrong
    stream = container.streams.video[0]
    return stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio or Fraction(1)


def _square_width(width: int, aspect: Fraction) -> int:
    return max(1, round(width * aspect))


def decode(path: str, fps: float, size: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 [N, H, W, 3], as a player shows the file (turned, pixels square): an image as one
    frame, a video's frames resampled to `fps` (the frame shown at each time k / fps), each
    fitted to `size` (height, width) if given. Only those frames are kept, so a long HD video
    costs memory for the frames it gives, not for every frame it holds. A one-line ValueError
    (what is wrong, without the path) for a file PyAV cannot decode."""
    frames, last, pixels = [], None, None
    with _readable():
        for frame, aspect in _shown(path, fps):
            if frame is not last:  # a frame shown at several times is converted (and fitted) once
                pixels = upright(frame, aspect)
                pixels = pixels if size is None else fit(pixels[None], *size)[0]
                last = frame
            frames.append(pixels)
    if not frames:
        raise ValueError("holds no frames")
    return np.stack(frames)


def probe(path: str, fps: float) -> tuple[int, int, int]:
    """(N, H, W) of what `decode` gives, converting no frames; the same ValueErrors."""
    n, frame = 0, None
    with _readable():
        for n, (frame, aspect) in enumerate(_shown(path, fps), 1):
            pass
    if not n:
        raise ValueError("holds no frames")
    height, width = frame.height, _square_width(frame.width, aspect)
    return (n, width, height) if _quarter_turns(frame) % 2 else (n, height, width)


@contextlib.contextmanager
def _readable():
    try:
        yield
    except IndexError:  # PyAV's answer to decode(video=0) of a file without one (audio alone)
        raise ValueError("has no video or image stream") from None
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise ValueError(f"is not a readable image or video ({type(e).__name__})") from None


def _shown(path: str, fps: float):
    """(frame, pixel aspect) of the decoded frame shown at each time k / fps from the file's first
    frame, while decoding: a frame is shown from its time until the next frame's, and the last
    one for the mean frame interval (a frame shown at several times is yielded each time). An
    image, or a one-frame video, gives its frame once."""
    with av.open(path) as container:
        aspect = _pixel_aspect(container)
        held = None  # the newest frame
        count, k, t0, t = 0, 0, 0.0, 0.0  # frames seen, the next time's index, first and newest times
        for frame in container.decode(video=0):
            t = frame.time if frame.time is not None else count / fps
            t0 = t if count == 0 else t0
            while held is not None and t0 + k / fps + 1e-6 < t:  # times before this frame show the held one
                yield held, aspect
                k += 1
            held, count = frame, count + 1
        if held is None:
            return
        duration = (t - t0) * count / max(count - 1, 1)  # the last frame lasts one interval too
        for _ in range(k, max(math.floor(duration * fps + 1e-6), 1)):  # one frame: shown once
            yield held, aspect


def fit(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize uint8 [N, h, w, 3] frames to cover height x width, then centre-crop to it."""
    _, h, w, _ = frames.shape
    scale = max(height / h, width / w)
    sh, sw = max(height, round(h * scale)), max(width, round(w * scale))
    out = []
    for frame in frames:
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        out.append(f.reformat(width=sw, height=sh, interpolation="AREA").to_ndarray(format="rgb24"))
    top, left = (sh - height) // 2, (sw - width) // 2
    return np.stack(out)[:, top : top + height, left : left + width]
