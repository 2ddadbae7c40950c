"""The quickstart notebook runs top to bottom in a real Jupyter kernel."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def test_quickstart_notebook_executes(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = "".join(
        o.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )
    assert "default/quickstart-model@" in outputs and "<- default/mnist@" in outputs
    assert "words: 3 datum(s) ran, 0 carried over" in outputs
    assert "words: 1 datum(s) ran, 2 carried over" in outputs
    assert "default/report@" in outputs and "<- default/notes@" in outputs
