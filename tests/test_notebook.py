"""The analysis notebook runs on a run the tests made, saves its plots in a folder derived from the run (never
inside it), and shows a CDF per case group."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .conftest import REPO


def test_latency_notebook_executes_and_saves_pngs(bench_run: Path, monkeypatch, tmp_path):
    monkeypatch.setenv("LATLAB_RUN", str(bench_run))
    monkeypatch.setenv("LATLAB_PLOTS", str(tmp_path))
    before = sorted(p.name for p in bench_run.iterdir())
    nb = nbformat.read(REPO / "notebooks" / "latency_analysis.ipynb", as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    assert sorted(p.name for p in bench_run.iterdir()) == before  # the run folder is never written to
    plots = tmp_path / bench_run.name
    names = sorted(p.name for p in plots.iterdir())
    groups = {c["group"] for c in json.loads((bench_run / "summary.json").read_text())["cases"]
              if c.get("files", {}).get("hgrm")}
    assert len([n for n in names if n.startswith("CDF-")]) == len(groups) >= 2  # one CDF per group
    assert "timeline.png" in names and any(n.startswith("percentiles-") for n in names)
    for name in names:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (plots / name).stat().st_size > 10_000
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "÷ref p50" in text and os.uname().release in text
