"""Every command that the README, BENCHMARKS.md, the model card and the config and script
docstrings show runs as written, shrunk to tiny size: `configs/tiny.py` for any config, small
videos and batches, and temporary workdirs, data and outputs. `sora-lite` commands run
exactly as written, on the shipped model. A command added to the docs is picked up here."""

import glob
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from sora_lite import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "BENCHMARKS.md", *sorted(glob.glob("sora_lite/assets/*/MODEL_CARD.md", root_dir=ROOT)),
        "sora_lite/cli.py", *sorted(glob.glob("configs/*.py", root_dir=ROOT)), *sorted(glob.glob("scripts/*.py", root_dir=ROOT)),
        *sorted(glob.glob("notebooks/*.ipynb", root_dir=ROOT))]
# Run elsewhere: the install and the tests (.ci/run), the fixture maker (needs a PyTorch reference env).
NOT_HERE = ("pip install", "python -m pytest", "make_text_fixture.py")


def documented_commands() -> list[str]:
    """Each `python scripts/...` or `sora-lite ...` command line in DOCS, continuations joined."""
    found = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc)) as f:
            text = f.read()
        if doc.endswith(".ipynb"):  # the cells' text
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        text = text.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.strip().lstrip("`").split("`")[0]  # an inline command ends at its closing backtick
            for part in line.split("&&"):
                part = re.sub(r"\s+#.*$", "", part.strip())  # a trailing comment
                part = re.sub(r"\s+", " ", part)
                if re.match(r"^(python scripts/\S+\.py|sora-lite \w+)(\s|$)", part) and "..." not in part \
                        and not any(n in part for n in NOT_HERE) and part not in found:
                    found.append(part)
    return found


ONE_OF = ("--mesh", "--remat")
TINY_FLAGS = {"--frames": "5", "--height": "16", "--width": "16", "--batch": "8", "--steps": "1",
              "--shapes": "5x16x16,1x16x32", "--seeds": "0", "--schedule": "20", "--count": "4"}


def shrink(command: str, tmp: str, data_dir: str) -> list[str]:
    """The command at tiny size: every config -> configs/tiny.py (its data in `data_dir`), every
    workdir and output under `tmp`, sizes and counts small; the rest as written."""
    argv = shlex.split(command)
    if argv[0] == "sora-lite":  # as written, on the shipped model
        return argv
    for flag in ONE_OF:  # a list of settings to compare: its first (each is a compile)
        while argv.count(flag) > 1:
            last = len(argv) - 1 - argv[::-1].index(flag)
            del argv[last:last + 2]
    out = []
    for i, arg in enumerate(argv):
        prev = argv[i - 1] if i else ""
        if prev.isdigit() and argv[i - 2] == "--seeds" and arg.isdigit():  # one seed
            continue
        if arg == "configs/camera.py":  # tiny, on its own data set
            arg = "configs/tiny.py --config.data.name=camera_moves --config.data.mixture=5x16x16"
        elif re.fullmatch(r"configs/\w+\.py", arg):
            arg = "configs/tiny.py"
        elif arg.startswith("--config.dit.size="):
            arg = "--config.dit.size=tiny"
        elif re.match(r"--config\.((train|ae_train)\.(steps|decoder_steps)|data\.train_size)=", arg):  # tiny's own
            continue
        elif arg.startswith("--config.data.mixture="):
            if "configs/camera.py" in argv:  # set with the config above
                continue
            arg = "--config.data.mixture=5x16x16"
        elif prev in TINY_FLAGS:
            arg = "5x16x16" if prev == "--shapes" and "camera" in command else TINY_FLAGS[prev]  # moves need frames
        elif arg.startswith("--config.data.folder="):  # a folder of one's own videos: a few small clips
            arg = f"--config.data.folder={_video_folder(os.path.join(tmp, 'my_videos'))}"
        elif arg.startswith(("--config.train.init_from=", "--config.ae_train.init_from=", "--config.ae_train.base=")):
            # from the tiny run
            key, _, value = arg.partition("=")
            name = ("camera_" if "camera" in value else "") + ("ae" if "ae_train" in key else "dit")
            arg = f"{key}={os.path.join(tmp, name)}"
        elif arg.startswith("--config.train.student_from="):  # a student of the tiny run, distilled on a few pairs
            arg = f"--config.train.student_from={os.path.join(tmp, 'dit')} --config.train.distill_pairs=16"
        elif prev == "--checkpoint" and arg in ("default", "distilled") and group(command) == "shipped_models":
            pass  # a shipped model, as written
        elif prev in ("--workdir", "--checkpoint", "--out") or arg.startswith("--config.train.autoencoder="):
            # workdirs by role: an autoencoder's (another architecture's by its own name), a DiT's
            # (training, evaluating, exporting; a fine-tuning run's own), outputs
            key, _, value = arg.rpartition("=")
            own = os.path.basename(value).removeprefix("camera_")  # "ae_res": an autoencoder of its own
            if value.endswith("_ae"):
                name = "ae"
            elif own.startswith("ae"):
                name = own
            else:
                name = "dit" if prev != "--out" else os.path.basename(value)
            if "camera" in value and (prev != "--out" or own.startswith("ae")):  # the camera model's own workdirs
                name = "camera_" + name
            if prev == "--workdir" and "init_from=" in command:  # a fine-tuning run's own, one per run
                name += "_tuned_" + os.path.basename(value)
            if prev == "--out" and "checkpoints" in value:
                name = "exported"
            arg = (key + "=" if key else "") + os.path.join(tmp, name)
        out += arg.split(" ")
    if argv[0] == "python":
        out[0] = sys.executable
        if "configs/tiny.py" in out:
            out.append(f"--config.data.dir={data_dir}")
        if out[1].endswith("bench_sample.py"):  # the tiny model, and its JSON away from the repository
            out += ["--checkpoint", os.path.join(tmp, "dit")] * ("--checkpoint" not in out) + ["--repeats", "1", "--fresh", "1"]
            out += ["--frames", "5", "--height", "16", "--width", "16"] * ("--frames" not in out)  # the tiny run's
            out += ["--out", os.path.join(tmp, "bench_sample.json")] * ("--out" not in out)
        if out[1].endswith("bench_peer.py"):  # sora_lite's side at tiny size (no peer environment here)
            i = out.index("--peer_python")
            out = out[:i] + out[i + 2:] + ["--cases", "tiny:5x16x16:2", "--steps", "1"]
        if out[1].endswith("evaluate.py") and "--steps" not in out:  # few sampling steps: what runs, not how well
            out += ["--steps", "2"]
        if out[1].startswith("scripts/evaluate") and "--seeds" not in out:  # one seed, as where seeds are given
            out += ["--seeds", "0"]
        if out[1].endswith("evaluate_frames.py"):  # its tasks need 17 frames; two reference clips
            out[out.index("--shapes") + 1] = "17x16x16"
            out += ["--clips", "2"]
    return out


def _video_folder(path: str) -> str:
    """A folder of two captioned clips, as `scripts/prepare_videos.py` reads."""
    import numpy as np

    from sora_lite import video
    from sora_lite.datasets.moving_shapes import render

    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, (color, direction) in {"a.mp4": ("red", "left"), "b.gif": ("blue", "up")}.items():
        video.write(os.path.join(path, name), render(color, "circle", direction, 24, 32, 12, rng))
    with open(os.path.join(path, "captions.csv"), "w") as f:
        f.write("path,caption\na.mp4,a red circle moving left\nb.gif,a blue circle moving up\n")
    return path


def test_every_documented_command_is_recognised():
    commands = documented_commands()
    scripts = {c.split()[1] for c in commands if c.startswith("python")}
    assert {"scripts/train.py", "scripts/train_autoencoder.py", "scripts/evaluate.py", "scripts/export.py",
            "scripts/bench_memory.py", "scripts/bench_train.py", "scripts/bench_sample.py",
            "scripts/bench_mixture.py", "scripts/evaluate_frames.py", "scripts/prepare_videos.py"} <= scripts
    assert any(c.startswith("sora-lite generate") and "--frames 1" in c for c in commands)


def test_ci_runs_the_readme_commands_as_written():
    with open(os.path.join(ROOT, "README.md")) as f:
        first_block = f.read().split("```bash\n", 1)[1].split("```", 1)[0]
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = [line for line in f.read().splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == first_block.strip().splitlines() and len(ci) == 2


def group(command: str) -> str:
    """Which test runs a command: commands that share files (a workdir that one trains and the
    next reads) run in one, in order; the groups run in parallel (pytest-xdist, a file each)."""
    if re.search(r"runs/camera|--checkpoint camera", command):
        return "camera"  # the camera model's chain
    if re.search(r"bench_(memory|mixture|train|peer)\.py", command):
        return "benchmarks"  # of untrained models
    if re.search(r"--workdir |--checkpoint runs/|init_from=|bench_sample\.py|plot_metrics\.py", command):
        return "training"  # the default model's chain, fine-tuning it, and what reads them
    return "shipped_models"  # sora-lite and scripts on the shipped models; data tools


def _order(command: str) -> float:
    """Autoencoders first, then DiTs, then fine-tuning (from a trained DiT), then what reads a
    trained DiT; the docs' order within each (a file that one command writes, the next reads)."""
    if "init_from" in command:
        return 2
    for rank, script in enumerate(("train_autoencoder.py", "scripts/train.py")):
        if script in command:
            return rank
    return 3


def run_group(name: str, data_dir: str, tmp_path, monkeypatch, capsys):
    """Run the documented commands of group `name` at tiny size; one failure lists them all."""
    env = dict(os.environ, HOME=str(tmp_path / "home"), JAX_PLATFORMS="cpu")
    xla_flags = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                         if not f.startswith("--xla_force_host_platform_device_count"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    failures, done = [], set()
    commands = sorted((c for c in documented_commands() if group(c) == name), key=_order)
    assert commands, f"no documented command in group {name}"
    for command in commands:
        argv = shrink(command, str(tmp_path), data_dir)
        key = tuple(sorted(a for i, a in enumerate(argv) if "--out" not in (a, argv[i - 1])
                           and not (argv[i - 1] == "--workdir" and "_tuned_" in a)))
        if key in done:  # e.g. each config's own training command, once at tiny size; a benchmark's other
            # --out; a fine-tuning command run once more from the version before, in its own workdir
            continue
        done.add(key)
        if argv[0] == "sora-lite":  # the entry point itself, in this process (no start-up per command)
            monkeypatch.chdir(tmp_path)
            monkeypatch.setenv("HOME", env["HOME"])
            code = cli.main(argv[1:])
            if code != 0:
                failures.append(f"{command}\n  {capsys.readouterr().err.strip()[-1500:]}")
            continue
        # 8 devices for a mesh (the README's 8-device command), else one: compiles and saves are faster
        devices = 8 if "mesh" in command else 1
        env["XLA_FLAGS"] = f"{xla_flags} --xla_force_host_platform_device_count={devices}"
        run = subprocess.run(argv, cwd=ROOT if argv[1].startswith("scripts/") else tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            failures.append(f"{command}\n  ran as: {shlex.join(argv)}\n  {run.stderr.strip()[-1500:]}")
    assert not failures, "\n\n".join(failures)


def test_documented_commands_on_the_shipped_models_run(data_dir, tmp_path, monkeypatch, capsys):
    run_group("shipped_models", data_dir, tmp_path, monkeypatch, capsys)


# One mistake from each place a script can catch one: absl's flag parsing, the trainer's checks,
# the multi-process set-up (the checks' other messages: test_config_mistakes_fail_before_training).
@pytest.mark.parametrize("flag,message", [
    ("--config.dit.size=M", "unknown DiT size 'M'"),
    ("--config.dit.sise=M", "no such config key: 'sise' Did you mean \"size\""),
    ("--coordinator=127.0.0.1:99999", "--coordinator must be HOST:PORT with a port in 1..65535; got '127.0.0.1:99999'"),
])
def test_config_mistakes_in_a_script_are_one_line(tiny_run, data_dir, tmp_path, flag, message):
    argv = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--config", os.path.join(ROOT, "configs", "tiny.py"),
            "--workdir", str(tmp_path / "w"), f"--config.train.autoencoder={tiny_run['ae_dir']}",
            f"--config.data.dir={data_dir}", flag]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and message in last, run.stderr
    assert not os.path.exists(tmp_path / "w" / "checkpoints")  # said before any training


@pytest.mark.parametrize("key,value,message", [
    ("data.mixture", "5x20x16", "data.mixture entry 5x20x16: height and width must be positive multiples of 8"),
    ("sample.shift", 0.0, "sample.shift must be a number >= 0.001; got 0.0"),
    ("diffusion.motion_weight", -1.0, "diffusion.motion_weight must be a number >= 0; got -1.0"),
    ("sample.refine_above", -1, "sample.refine_above must be an integer >= 0; got -1"),
    ("sample.refine_strength", 0.0, "sample.refine_strength must be a number between 0.001 and 1; got 0.0"),
    ("sample.supersample_below", -2, "sample.supersample_below must be an integer >= 0; got -2"),
])
def test_config_mistakes_fail_before_training(tiny_run, data_dir, tmp_path, key, value, message):
    from conftest import tiny_config
    from sora_lite import train_dit

    cfg = tiny_config(data_dir, tiny_run["ae_dir"])
    section, name = key.split(".")
    cfg[section][name] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        train_dit.train(cfg, str(tmp_path / "w"))
    assert not os.path.exists(tmp_path / "w" / "checkpoints")


def test_a_bad_sampling_setting_in_an_exports_config_is_one_line_and_exports_nothing(tiny_run, tmp_path):
    argv = [sys.executable, os.path.join(ROOT, "scripts", "export.py"), "--workdir", tiny_run["dit_dir"],
            "--out", str(tmp_path / "out"), "--config", os.path.join(ROOT, "configs", "tiny.py"),
            "--config.sample.refine_strength=5"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines()[-1] == \
        "export.py: error: sample.refine_strength must be a number between 0.001 and 1; got 5.0", run.stderr
    assert not os.path.exists(tmp_path / "out")


def test_a_bad_peer_timeout_is_named():
    from sora_lite import coordination

    with pytest.raises(ValueError, match=re.escape("--peer_timeout must be an integer >= 1; got 0")):
        with coordination.processes(None, None, None, 0):
            pass
