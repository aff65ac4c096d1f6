"""The analysis notebook runs on a run the tests made and saves its plots beside it."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .conftest import REPO


def test_latency_notebook_executes_and_saves_pngs(bench_run: Path, monkeypatch):
    monkeypatch.setenv("LATLAB_RUN", str(bench_run))
    nb = nbformat.read(REPO / "notebooks" / "latency_analysis.ipynb", as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    plots = bench_run / "plots"
    for name in ("percentiles.png", "cdf.png", "timeline.png"):
        path = plots / name
        assert path.stat().st_size > 10_000, name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "latlab/sockperf" in text and os.uname().release in text
