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


GEODATAFRAMES = NOTEBOOK.parent / "analyse_geodataframes.ipynb"


def test_geodataframe_notebook_gives_the_runs_gap_report(data_dir, central_outputs, tmp_path,
                                                          monkeypatch):
    """From GeoDataFrames, without a TOML file: the same gap report as ``coverage15 run``."""
    monkeypatch.setenv("COVERAGE15_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COVERAGE15_DATA", str(data_dir))
    notebook = nbformat.read(GEODATAFRAMES, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    statements = sum(len(__import__("ast").parse(cell.source).body) for cell in code[:1])
    assert statements < 15  # the whole job, in under 15 statements
    written = tmp_path / "gap_report.csv"
    notebook.cells.append(nbformat.v4.new_code_cell(
        "from coverage15.outputs.writers import write_csv\n"
        f"write_csv(result.gap_report, {str(written)!r})\n"
        f"write_csv(result.district_report, {str(tmp_path / 'district_report.csv')!r})"))
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(GEODATAFRAMES.parent)}}).execute()
    errors = [out for cell in notebook.cells if cell.cell_type == "code"
              for out in cell.outputs if out.output_type == "error"]
    assert errors == []
    assert written.read_bytes() == (central_outputs / "gap_report.csv").read_bytes()
    assert ((tmp_path / "district_report.csv").read_bytes()
            == (central_outputs / "district_report.csv").read_bytes())
