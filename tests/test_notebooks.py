"""The analyst notebook runs top to bottom on the real data."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "district_walkthrough.ipynb"


def test_district_notebook_executes(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COVERAGE15_CACHE", str(tmp_path / "cache"))
    # relative to the repository, as the README sets it (the kernel starts in notebooks/)
    monkeypatch.setenv("COVERAGE15_DATA", os.path.relpath(data_dir, NOTEBOOK.parents[1]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = "\n".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
    )
    assert "15.0 min at 4.0 km/h = 1000.0 m" in outputs
    assert "fail at least one rule" in outputs
    assert "淮海中路街道" in outputs
    assert "wrote" in outputs
    errors = [out for cell in notebook.cells if cell.cell_type == "code"
              for out in cell.outputs if out.output_type == "error"]
    assert errors == []
