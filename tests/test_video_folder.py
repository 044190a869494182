"""Tests for sora_lite.datasets.video_folder: a folder of one's own videos becomes clips of the
mixture's shapes; bad files are skipped with one line each and counted."""

import functools
import os
import subprocess
import sys
from fractions import Fraction

import av
import jax
import numpy as np
import pytest
from PIL import Image

from sora_lite import video
from sora_lite.datasets import video_folder as V
from sora_lite.datasets.moving_shapes import render
from sora_lite.shapes import Entry

ONE = jax.devices()[:1]  # training here runs on one device: 8 fake ones compile and save slower

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRIES = [Entry(9, 16, 16, 2.0), Entry(9, 16, 24), Entry(5, 24, 16), Entry(1, 16, 16)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Good MP4 / GIF / PNG files of three aspect ratios, and every kind of bad file."""
    d = tmp_path_factory.mktemp("own_videos")
    rng = np.random.default_rng(0)
    video.write(str(d / "wide.mp4"), render("red", "circle", "left", 36, 64, 20, rng), fps=8)  # 2 clips of 9
    video.write(str(d / "tall.gif"), render("blue", "square", "up", 64, 40, 11, rng), fps=8)  # 2 clips of 5
    video.write(str(d / "fast.mp4"), render("green", "triangle", "down", 40, 40, 36, rng), fps=16)  # 18 at 8 fps
    video.write(str(d / "still.png"), render("cyan", "circle", None, 50, 60, 1, rng))
    video.write(str(d / "short.gif"), render("red", "circle", "left", 32, 32, 2, rng), fps=8)
    data = (d / "wide.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (d / "notes.mp4").write_text("just some text")
    (d / "empty.mp4").write_bytes(b"")
    rows = [("wide.mp4", "a red circle moving left"), ("tall.gif", "a blue square moving up"),
            ("fast.mp4", "a green triangle moving down"), ("still.png", "a cyan circle"),
            ("short.gif", "a red circle"), ("truncated.mp4", "cut"), ("notes.mp4", "text"), ("empty.mp4", "none")]
    (d / "captions.csv").write_text("path,caption\n" + "".join(f"{p},{c}\n" for p, c in rows))
    return str(d)


def test_good_files_become_clips_of_the_nearest_shape_and_bad_ones_are_counted(folder, tmp_path):
    counts, skipped = V.prepare(str(tmp_path), folder, ENTRIES, fps=8)
    total = {shape: c["train"] + c["validation"] for shape, c in counts.items()}
    # wide (16:9) -> 9x16x24: 2 clips; fast (square, 18 frames at 8 fps) -> 9x16x16: 2; tall -> 5x24x16: 2;
    # the image (6:5) -> 1x16x16.
    assert total == {"9x16x16": 2, "9x16x24": 2, "5x24x16": 2, "1x16x16": 1}
    assert skipped == ["skipped short.gif: is too short: 2 frames at 8 fps; its shapes need 9",
                       "skipped truncated.mp4: is not a readable image or video (InvalidDataError)",
                       "skipped notes.mp4: is not a readable image or video (InvalidDataError)",
                       "skipped empty.mp4: is not a readable image or video (InvalidDataError)"]
    assert V.summary(counts, skipped, 8).startswith("4 of 8 files used, 4 skipped; clips per shape")
    b = V.builder(str(tmp_path), folder, ENTRIES[1], ENTRIES, fps=8)
    split = next(iter(b.info.splits))
    clip = b.as_data_source(split)[0]
    assert clip["video"].shape == (9, 16, 24, 3) and clip["video"].dtype == np.uint8
    assert clip["caption"].decode() == "a red circle moving left"
    # The red circle survives decoding, resampling, resizing and cropping.
    red = (clip["video"][..., 0] > 150) & (clip["video"][..., 1] < 100)
    assert red.any(axis=(1, 2)).all()


def test_resampling_to_the_target_rate(folder):
    assert len(video.decode(os.path.join(folder, "fast.mp4"), 8)) == 18  # 36 frames at 16 fps
    assert len(video.decode(os.path.join(folder, "fast.mp4"), 16)) == 36
    assert len(video.decode(os.path.join(folder, "still.png"), 8)) == 1
    # Fitting while decoding (a long video keeps only its fitted frames) equals fitting after.
    wide = os.path.join(folder, "wide.mp4")
    np.testing.assert_array_equal(video.decode(wide, 8, (16, 24)), video.fit(video.decode(wide, 8), 16, 24))
    assert video.probe(wide, 8) == (20, 36, 64)


def test_rotated_phone_videos_and_photos_are_read_upright(tmp_path):
    """A display matrix (phone videos) or an EXIF orientation (photos) turns the stored pixels:
    a landscape-stored portrait video is a portrait video, and goes to the portrait shape."""
    frame = np.zeros((32, 48, 3), np.uint8)  # stored landscape, red in the top-left corner
    frame[:8, :8] = (255, 0, 0)
    path = str(tmp_path / "phone.mp4")
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.set_display_rotation(90)  # shown turned 90 degrees counterclockwise
        for _ in range(12):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    photo = Image.fromarray(frame)
    exif = photo.getexif()
    exif[0x0112] = 6  # EXIF orientation 6: shown turned 90 degrees clockwise
    photo.save(tmp_path / "photo.jpg", exif=exif)
    red = lambda x: (x[..., 0] > 150) & (x[..., 1] < 100)  # noqa: E731
    video_frames = video.decode(path, 8)
    assert video_frames.shape == (12, 48, 32, 3) and red(video_frames[0, -8:, :8]).all()  # bottom-left
    image = video.decode(str(tmp_path / "photo.jpg"), 8)
    assert image.shape == (1, 48, 32, 3) and red(image[0, :8, -8:]).all()  # top-right
    np.testing.assert_array_equal(video.read(str(tmp_path / "photo.jpg")), image)  # the CLI's input files too
    assert video.probe(path, 8) == (12, 48, 32)
    assert V.nearest_entries(ENTRIES, 48, 32, image=False) == [Entry(5, 24, 16)]


def test_anamorphic_videos_are_read_at_their_display_aspect_ratio(tmp_path):
    """Pixels twice as wide as tall (a sample aspect ratio of 2, as DV and DVD store wide
    video): 32x32 stored pixels show as 32x64, and go to the wide shape."""
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[:, :8] = (255, 0, 0)  # the left quarter red
    path = str(tmp_path / "anamorphic.mp4")
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2, 1)
        for _ in range(12):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    assert video.probe(path, 8) == (12, 32, 64)
    frames = video.decode(path, 8)
    red = (frames[..., 0] > 150) & (frames[..., 1] < 100)
    assert frames.shape == (12, 32, 64, 3) and red[:, :, :14].all() and not red[:, :, 18:].any()
    np.testing.assert_array_equal(video.read(path), frames)
    assert V.nearest_entries(ENTRIES, 32, 64, image=False) == [Entry(9, 16, 24)]


def test_an_animated_png_is_a_video_and_a_still_one_an_image(tmp_path):
    frames = np.zeros((12, 16, 24, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(12)[:, None, None] * 20  # redder every frame
    path = str(tmp_path / "moving.png")
    with av.open(path, "w", format="apng") as container:
        stream = container.add_stream("apng", rate=8)
        stream.width, stream.height, stream.pix_fmt = 24, 16, "rgb24"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    assert video.probe(path, 8) == (12, 16, 24)
    np.testing.assert_array_equal(video.decode(path, 8), frames)
    video.write(str(tmp_path / "still.png"), frames[:1])
    assert video.probe(str(tmp_path / "still.png"), 8) == (1, 16, 24)


def test_a_file_with_sound_alone_is_named_as_such(tmp_path):
    path = str(tmp_path / "voice.m4a")
    with av.open(path, "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(ValueError, match="^has no video or image stream$"):
        video.probe(path, 8)
    with pytest.raises(ValueError, match="voice.m4a has no video or image stream; use a PNG"):
        video.read(path)


def test_index_errors_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        V.read_index(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="needs exactly one caption index"):
        V.read_index(str(tmp_path))
    (tmp_path / "captions.csv").write_text("a.mp4,one,two\n")
    with pytest.raises(ValueError, match="line 1: expected 2 columns path,caption .*; got 3"):
        V.read_index(str(tmp_path))
    # A header names the columns (Open-Sora's `text`, extra columns ignored), also after blank lines;
    # a spreadsheet's BOM is no column.
    (tmp_path / "captions.csv").write_text("\ufeff\npath,num_frames,text\na.mp4,34,\"a cat, sitting\"\n\nb.png,1,a dog\n\n",
                                           encoding="utf-8")
    assert V.read_index(str(tmp_path)) == [("a.mp4", "a cat, sitting"), ("b.png", "a dog")]
    (tmp_path / "captions.csv").write_text("caption,path\nx,a.mp4\ny\n")
    with pytest.raises(ValueError, match="line 3: expected the header's columns; got 1"):
        V.read_index(str(tmp_path))
    (tmp_path / "captions.csv").unlink()
    (tmp_path / "captions.jsonl").write_text('{"path": "a.mp4", "text": "x"}\n')
    assert V.read_index(str(tmp_path)) == [("a.mp4", "x")]
    (tmp_path / "captions.jsonl").write_text('{"path": "a.mp4", "caption": "x"}\n{"path": "b.mp4"}\n')
    with pytest.raises(ValueError, match="line 2: expected"):
        V.read_index(str(tmp_path))


def test_prepare_script_prints_warnings_and_the_summary(folder, tmp_path):
    run = subprocess.run([sys.executable, "scripts/prepare_videos.py", "--config", "configs/tiny.py",
                          f"--config.data.folder={folder}", f"--config.data.dir={tmp_path}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("prepare_videos.py: warning: skipped")]
    assert len(warnings) == 4
    summary, = run.stdout.strip().splitlines()  # tensorflow-datasets' own lines are kept out
    assert summary.startswith("4 of 8 files used, 4 skipped")


def test_fine_tuning_on_a_folder_trains_both_models_from_a_trained_run(tiny_run, folder, tmp_path, capsys):
    """The tiny run fine-tuned on the folder: its autoencoder, then its DiT (only the blocks'
    attention trains), on the folder's clips and captions."""
    from sora_lite import captions, checkpoint, train_autoencoder, train_dit

    cfg = tiny_run["cfg"].copy_and_resolve_references()
    cfg.data.update(folder=folder, fps=8.0, dir=str(tmp_path / "data"), mixture="5x16x16:2,1x16x16:1")
    cfg.ae_train.update(init_from=tiny_run["ae_dir"], steps=2, decoder_steps=1)
    ae_dir, dit_dir = str(tmp_path / "ae"), str(tmp_path / "dit")
    result = train_autoencoder.train_autoencoder(cfg, ae_dir, devices=ONE)
    assert f"initialised from {tiny_run['ae_dir']}" in capsys.readouterr().out
    assert all(set(r) == {"psnr"} for r in result.values())  # no Moving Shapes scoring on one's own clips
    assert [r[0] for r in captions.caption_rows(cfg.data)] == sorted(
        ["a red circle moving left", "a blue square moving up", "a green triangle moving down", "a cyan circle"])
    cfg.train.update(autoencoder=ae_dir, init_from=tiny_run["dit_dir"], steps=2, trainable="blocks/(attn|cross)",
                     eval_at_end=True)
    assert train_dit.train(cfg, dit_dir, devices=ONE) == {}
    assert "no evaluation" in capsys.readouterr().out
    _, _, before = checkpoint.load_arrays(checkpoint.directory(tiny_run["dit_dir"]), ("dit",))
    _, _, after = checkpoint.load_arrays(checkpoint.directory(dit_dir), ("dit",))
    moved = lambda *path: not np.array_equal(  # noqa: E731
        *(np.asarray(functools.reduce(lambda d, k: d[k], path, x["dit"])) for x in (before, after)))
    assert moved("blocks", "attn", "q", "kernel", "value") and moved("blocks", "cross", "kv", "kernel", "value")
    assert not moved("blocks", "mlp_in", "kernel", "value") and not moved("x_embed", "kernel", "value")


@pytest.mark.parametrize("script,flags,message", [
    ("write_clips.py", ["--out", "x", "--dataset", "camera_move"], "argument --dataset: invalid choice: 'camera_move'"),
    ("write_clips.py", ["--out", "x", "--count", "0"], "--count must be at least 1; got 0"),
    ("evaluate.py", ["--dataset", "shapes"], "argument --dataset: invalid choice: 'shapes'"),
])
def test_bad_script_flags_are_one_line(tmp_path, script, flags, message):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), *flags], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert message in run.stderr.strip().splitlines()[-1]
