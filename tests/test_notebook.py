"""notebooks/quickstart.ipynb runs top to bottom on CPU against the shipped default model."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "quickstart.ipynb")
DEFAULT_MODEL = os.path.join(ROOT, "sora_lite", "assets", "default")


def test_quickstart_notebook_runs(monkeypatch, tmp_path):
    if not os.path.isdir(DEFAULT_MODEL):
        pytest.skip("default model not shipped")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    monkeypatch.setenv("JAX_PLATFORMS", "cpu")  # the kernel inherits this environment
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, "\n".join(f"{o.ename}: {o.evalue}" for o in errors)

    scoring = [c for c in code if "score_video(" in c.source]
    assert scoring, "no scoring cell"
    printed = "".join(o.text for c in scoring for o in c.outputs
                      if o.output_type == "stream" and o.name == "stdout")
    assert "correct" in printed, f"the scoring cell printed nothing useful: {printed!r}"
