"""Shared fixtures: a tmp data dir for the tiny Moving Shapes builds and one tiny trained run.

XLA_FLAGS is set before anything imports jax, so the CPU backend exposes 8 devices for
sharding tests (the tests here run on one device unless they build a mesh; DiT training
builds one from `cfg.mesh`, by default data-parallel over all 8). Tests are compile-bound, so
XLA compiles for speed of compiling, here and in every process the tests start: backend
optimisation off (a third less), and fusions compiled by XLA's older CPU emitter instead of its
fusion emitters (half of what is left: the tiny DiT's train step compiles in 6 s, not 13).
Results change only by float rounding.
"""

import os
import sys

os.environ["XLA_FLAGS"] = " ".join(
    f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")
) + " --xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # `configs` is a top-level package next to sora_lite
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402


# The longest files first, in this order (the rest as collected): pytest-xdist hands out whole
# files, and a long one begun last keeps its worker busy after the other is done. The second
# starts the tiny run while the first worker runs commands that do not need it.
LONGEST = ("test_docs_training.py", "test_multiprocess.py", "test_docs_benchmarks.py", "test_notebook.py",
           "test_docs_camera.py", "test_faults.py", "test_docs.py", "test_sharding.py", "test_train.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: LONGEST.index(item.path.name) if item.path.name in LONGEST else len(LONGEST))


def run_root(tmp_path_factory):
    """This test run's folder that all pytest-xdist workers share."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """One persistent compilation cache for the whole run, workers and the scripts they start
    included: the many tiny runs compile the same programs (as a user's reruns do from
    ~/.cache/sora_lite). A size limit makes JAX lock the folder, so concurrent writers are safe;
    but then every write lists the whole folder, so programs compiled in under 0.2 s (one-op
    programs, mostly) are not written, here or by the scripts: with them, small tests took
    several times longer."""
    import jax

    import sora_lite

    # In the environment for the scripts (their sora_lite.enable_compilation_cache reads the first
    # and third, JAX the second); in this process, the same call sets them.
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(run_root(tmp_path_factory) / "jax_cache")
    os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(8 << 30)
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.2"
    jax.config.update("jax_compilation_cache_max_size", 8 << 30)
    sora_lite.enable_compilation_cache()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """Where the tiny Moving Shapes builds go (built on first use, shared by the session)."""
    return str(tmp_path_factory.mktemp("moving_shapes"))


def tiny_config(data_dir: str, ae_dir: str = ""):
    from configs import tiny

    cfg = tiny.get_config()
    cfg.data.dir = data_dir
    cfg.train.autoencoder = ae_dir
    return cfg


@pytest.fixture(scope="session")
def tiny_run(data_dir, tmp_path_factory):
    """Train the tiny autoencoder, then the tiny DiT on its latents, once for the whole test run
    (pytest-xdist workers share it: the first to arrive trains, the others wait and read).

    Returns {"ae_dir", "dit_dir", "cfg", "ae_result"}; tests that mutate a run copy it first.
    """
    import json

    import jax
    from filelock import FileLock

    from sora_lite import train_autoencoder, train_dit

    root = run_root(tmp_path_factory) / "tiny_run"
    ae_dir, dit_dir = str(root / "ae"), str(root / "dit")
    cfg = tiny_config(data_dir, ae_dir)  # this worker's data dir: latents are keyed by content, not place
    with FileLock(str(root) + ".lock"):
        done = root / "ae_result.json"
        if not done.exists():
            one = jax.devices()[:1]  # as fast as it gets here: 8 fake devices' checkpoints take seconds more
            ae_result = train_autoencoder.train_autoencoder(cfg, ae_dir, devices=one)
            train_dit.train(cfg, dit_dir, devices=one)
            done.write_text(json.dumps(ae_result))
    return {"ae_dir": ae_dir, "dit_dir": dit_dir, "cfg": cfg, "ae_result": json.loads(done.read_text())}


@pytest.fixture(scope="session")
def train_script():
    """`command(workdir, *flags)` -> argv running scripts/train.py on configs/tiny.py, and
    `env(devices)` -> the environment for it with that many fake CPU devices per process."""

    def command(workdir, *flags):
        return [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--config",
                os.path.join(ROOT, "configs", "tiny.py"), "--workdir", str(workdir), *flags]

    def env(devices: int):
        e = dict(os.environ)
        e["XLA_FLAGS"] = " ".join(f for f in e.get("XLA_FLAGS", "").split()
                                  if not f.startswith("--xla_force_host_platform_device_count"))
        e["XLA_FLAGS"] += f" --xla_force_host_platform_device_count={devices}"
        e["JAX_PLATFORMS"] = "cpu"
        e["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, e.get("PYTHONPATH")) if p)
        return e

    return command, env
