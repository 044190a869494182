"""Tests for the `sora-lite` command, run in-process: files written, and one-line errors."""

import contextlib
import functools
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sora_lite import Pipeline, cli, video


@pytest.fixture(autouse=True)
def _cache_home(tmp_path_factory, monkeypatch):
    # The CLI keeps compiled programs under ~/.cache/sora_lite: point ~ at a tmp dir.
    monkeypatch.setenv("HOME", str(tmp_path_factory.getbasetemp() / "home"))


def _args(tiny_run, out, *extra):
    return ["generate", "a red circle moving left", "--out", str(out), "--frames", "5", "--height", "16",
            "--width", "16", "--steps", "2", "--checkpoint", tiny_run["dit_dir"], *extra]


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_writes_a_video_that_reads_back(tiny_run, tmp_path, capsys, ext):
    out = tmp_path / f"red.{ext}"
    assert cli.main(_args(tiny_run, out, "--seed", "3")) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"wrote {out} (5 frames, 16x16)") and captured.err == ""
    frames = video.read(str(out))
    assert frames.shape == (5, 16, 16, 3) and frames.dtype == "uint8"


@pytest.mark.parametrize("extra,constraint", [
    (["--frames", "6"], "frames must be 1 + 4k"),
    (["--height", "12"], "height and width must be positive multiples of 8"),
    (["--steps", "0"], "steps must be an integer between 1 and 1000; got 0"),
    (["--out", "video.avi"], "unsupported extension '.avi'"),
    (["--out", "video.png"], "a .png holds one frame; got 5 frames"),
    (["--guidance", "nan"], "guidance must be a finite number"),
    (["--checkpoint", "/nonexistent/sora_lite_run"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(tiny_run, tmp_path, capsys, extra, constraint):
    args = _args(tiny_run, tmp_path / "x.gif", *extra)
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("sora-lite: error: ") and constraint in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not os.path.exists(tmp_path / "x.gif")


def test_one_frame_writes_an_image(tiny_run, tmp_path, capsys):
    out = tmp_path / "red.png"
    args = _args(tiny_run, out)
    args[args.index("--frames") + 1] = "1"
    args[1] = "a red circle"
    assert cli.main(args) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} (1 frames, 16x16)")
    assert video.read(str(out)).shape == (1, 16, 16, 3)


def test_a_prompt_with_new_words_says_how_it_was_read(tiny_run, tmp_path, capsys):
    args = _args(tiny_run, tmp_path / "x.gif")
    args[1] = "a crimson orb moving left"
    assert cli.main(args) == 0
    assert capsys.readouterr().out.startswith("read as: a red ball moving left\nwrote ")


def test_empty_prompt(tiny_run, tmp_path, capsys):
    args = _args(tiny_run, tmp_path / "x.gif")
    args[1] = ""
    assert cli.main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sora-lite: error: prompts[0] is empty")


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as e:
        cli.main(["generate"])  # no prompt: argparse's own usage error
    assert e.value.code == 2


def test_words_lists_the_training_vocabulary(capsys):
    assert cli.main(["words"]) == 0
    out = capsys.readouterr().out
    assert "color  red       red, scarlet" in out and "shape  circle" in out and "motion left" in out
    assert "crimson" not in out  # held out: never trained on
    assert cli.main(["words", "--model", "camera"]) == 0
    out = capsys.readouterr().out
    assert "astronaut" in out and "zooms" in out and "circle" not in out
    assert cli.main(["words", "--model", "/nonexistent/sora_lite_run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sora-lite: error: ") and "or a shipped model's name" in err and len(err.splitlines()) == 1


def test_eval_table_gives_each_row_its_95_percent_interval():
    lo, hi = cli.interval(100.0, 36)  # 36 of 36 right: the same model could read 33 of 36 on other seeds
    assert 90.3 < lo < 90.4 and hi == pytest.approx(100.0)
    lo, hi = cli.interval(50.0, 128)
    assert 50 - lo == pytest.approx(hi - 50) and 8.4 < hi - 50 < 8.6
    assert cli.interval(50.0, 16)[1] - 50 > 20  # wider for fewer videos
    table = cli.eval_table({"17x32x32": {"seen": {"accuracy": 50.0, "color": 100.0, "direction": None, "n": 128}},
                            "1x32x32": {"seen": {"accuracy": 100.0, "color": 100.0, "direction": None, "n": 36}}})
    header, video, image = table.splitlines()
    assert header.split()[-2:] == ["95%", "interval"]
    assert video.split()[-1] == "41.5-58.5" and image.split()[-1] == "90.4-100.0" and image.split()[-2] == "-"


def test_frames_as_prompts_commands_write_their_videos(tiny_run, tmp_path, capsys):
    """Each conditioning command reads its inputs (PNG, GIF, MP4) and writes the result."""
    common = ["--steps", "2", "--checkpoint", tiny_run["dit_dir"]]
    image, clip = str(tmp_path / "in.png"), str(tmp_path / "in.mp4")
    assert cli.main(["generate", "a red circle", "--frames", "1", "--out", image, *common]) == 0
    assert cli.main(["generate", "a red circle moving left", "--frames", "5", "--out", clip, *common]) == 0
    capsys.readouterr()
    p = "a red circle moving left"
    runs = {
        "animate": (["animate", image, p, "--frames", "9"], 9),
        "extend": (["extend", clip, p, "--frames", "9", "--backward"], 9),
        "connect": (["connect", image, clip, p, "--frames", "13"], 13),
        "interpolate": (["interpolate", image, clip, image, p, "--frames", "9"], 9),
        "edit": (["edit", clip, "a blue circle moving left", "--strength", "0.5"], 5),
        "story": (["story", p, "a red circle moving right", "--frames", "5"], 10),
    }
    for name, (args, frames) in runs.items():
        out = str(tmp_path / f"{name}.gif")
        assert cli.main([*args, "--out", out, *common]) == 0, capsys.readouterr().err
        assert capsys.readouterr().out.startswith(f"wrote {out} ({frames} frames, 16x16)"), name
        assert video.read(out).shape == (frames, 16, 16, 3)


@pytest.mark.parametrize("make,args,constraint", [
    (lambda d: open(d / "bad.png", "wb").write(b"not an image"), ["animate", "{d}/bad.png", "p"],
     "{d}/bad.png is not a readable image or video"),
    (lambda d: None, ["animate", "{d}/missing.png", "p"], "no such file: {d}/missing.png"),
    (lambda d: None, ["interpolate", "{d}/in.png", "p"], "2 to num_frames=17 keyframes; got 1"),
    (lambda d: None, ["edit", "{d}/in.png", "p", "--strength", "2"], "strength must be in (0, 1]"),
])
def test_frames_as_prompts_bad_input_exits_2_with_one_line(tiny_run, tmp_path, capsys, make, args, constraint):
    common = ["--steps", "2", "--checkpoint", tiny_run["dit_dir"]]
    assert cli.main(["generate", "a red circle", "--frames", "1", "--out", str(tmp_path / "in.png"), *common]) == 0
    make(tmp_path)
    capsys.readouterr()
    assert cli.main([a.format(d=tmp_path) for a in args] + ["--out", str(tmp_path / "o.gif"), *common]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and constraint.format(d=tmp_path) in err, err


@functools.cache
def _loaded(model):
    return _from_pretrained(model)


_from_pretrained = Pipeline.from_pretrained

# Flag values a user might type: good ones (small, so a valid call samples quickly), and not.
VALUES = ["1", "5", "9", "16", "2", "0", "-3", "12", "1.5", "nan", "inf", "-inf", "abc", "", " 5", "+5", "0x10",
          "1e3", "99999999999999999999", "٣", "--", "None"]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(flags=st.lists(st.tuples(st.sampled_from(["--frames", "--height", "--width", "--steps", "--seed", "--guidance"]),
                                st.sampled_from(VALUES)), max_size=4),
       prompt=st.one_of(st.sampled_from(["a red circle moving left", "", " ", "ünïcode ✓ \t", "x" * 500]),
                        st.text(max_size=30)))
def test_any_flags_give_a_video_or_one_line_and_exit_2(tiny_run, tmp_path_factory, monkeypatch, flags, prompt):
    """Whatever values the flags get, `sora-lite generate` writes a video (exit 0) or says what
    is wrong (exit 2: argparse's usage and error, or one `sora-lite: error:` line); never a traceback.
    (The model is loaded once: what is tested is the path from the flags to the pipeline.)"""
    monkeypatch.setattr(Pipeline, "from_pretrained", _loaded)
    out = tmp_path_factory.mktemp("cli") / "v.gif"
    argv = ["generate", prompt, "--out", str(out), "--checkpoint", tiny_run["dit_dir"], "--frames", "5",
            "--height", "16", "--width", "16", "--steps", "1"]
    argv += [x for flag in flags for x in (f"{flag[0]}={flag[1]}",)]  # "=": a value may start with "-"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse's own errors
            code = e.code
    lines = err.getvalue().strip().splitlines()
    if code == 0:
        assert video.read(str(out)).shape[0] == int(dict(flags).get("--frames", "5"))  # the last one counts
    else:
        assert code == 2 and lines and (lines[-1].startswith("sora-lite: error: ") or
                                        lines[-1].startswith("sora-lite generate: error: ")), err.getvalue()
        assert "Traceback" not in err.getvalue()
