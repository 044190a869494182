"""The notebooks run top to bottom on CPU (against the shipped default model, or training a tiny one)."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "sora_lite", "assets", "default")


@pytest.mark.parametrize("name,cell,printed", [("quickstart", "score_video(", "correct"),
                                               ("conditioning", "frame_tasks.evaluate(", "correct"),
                                               ("own_videos", "video_folder.prepare(", "files used")])
def test_notebook_runs(monkeypatch, tmp_path, name, cell, printed):
    if not os.path.isdir(DEFAULT_MODEL):
        pytest.skip("default model not shipped")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    monkeypatch.setenv("JAX_PLATFORMS", "cpu")  # the kernel inherits this environment
    monkeypatch.setenv("XLA_FLAGS", os.environ["XLA_FLAGS"].replace("device_count=8", "device_count=1"))  # one device
    nb = nbformat.read(os.path.join(ROOT, "notebooks", f"{name}.ipynb"), as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, "\n".join(f"{o.ename}: {o.evalue}" for o in errors)

    cells = [c for c in code if cell in c.source]
    assert cells, f"no cell calls {cell}"
    text = "".join(o.text for c in cells for o in c.outputs if o.output_type == "stream" and o.name == "stdout")
    assert printed in text, f"the {cell} cell printed nothing useful: {text!r}"
