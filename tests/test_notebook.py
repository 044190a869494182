"""The notebooks run top to bottom on CPU against the shipped default model."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "sora_lite", "assets", "default")


@pytest.mark.parametrize("name,scoring", [("quickstart", "score_video("), ("conditioning", "frame_tasks.evaluate(")])
def test_notebook_runs(monkeypatch, tmp_path, name, scoring):
    if not os.path.isdir(DEFAULT_MODEL):
        pytest.skip("default model not shipped")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    monkeypatch.setenv("JAX_PLATFORMS", "cpu")  # the kernel inherits this environment
    nb = nbformat.read(os.path.join(ROOT, "notebooks", f"{name}.ipynb"), as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, "\n".join(f"{o.ename}: {o.evalue}" for o in errors)

    cells = [c for c in code if scoring in c.source]
    assert cells, "no scoring cell"
    printed = "".join(o.text for c in cells for o in c.outputs if o.output_type == "stream" and o.name == "stdout")
    assert "correct" in printed, f"the scoring cell printed nothing useful: {printed!r}"
