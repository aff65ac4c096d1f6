"""The comparison table: each case's percentiles, and own/reference ratios within each group."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from latlab.errors import LatlabError
from latlab.runrecord import SUMMARY

COLUMNS = ("min", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean")


def resolve_run(arg: str, results_root: Path) -> Path:
    """A run folder from a path, a run id under results_root, or `latest`."""
    if arg == "latest":
        runs = sorted(p for p in results_root.iterdir() if (p / "manifest.json").exists()) \
            if results_root.is_dir() else []
        if not runs:
            raise LatlabError(f"no runs in {results_root}")
        return runs[-1]
    for candidate in (Path(arg), results_root / arg):
        if candidate.is_dir():
            return candidate
    raise LatlabError(f"no run {arg!r} (looked for a folder of that name and in {results_root})")


def load_summary(run_dir: Path) -> dict[str, Any]:
    """summary.json of a run; a run without one was cut off before it could finish."""
    path = run_dir / SUMMARY
    if not path.exists():
        return {"run_id": run_dir.name, "complete": False,
                "incomplete_reason": "no summary.json: the run was killed before it finished", "cases": []}
    return json.loads(path.read_text())


def ratio_rows(cases: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, float]]]:
    """(group, "own/reference", ratios by column) for each own row against each reference in its group."""
    rows = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for case in cases:
        groups.setdefault(case["group"], []).append(case)
    for group, members in groups.items():
        owns = [c for c in members if c["role"] == "own" and c.get("stats_ns")]
        refs = [c for c in members if c["role"] == "reference" and c.get("stats_ns")]
        for own in owns:
            for ref in refs:
                ratios = {col: own["stats_ns"][col] / ref["stats_ns"][col] for col in COLUMNS
                          if own["stats_ns"].get(col) and ref["stats_ns"].get(col)}
                if ratios:
                    rows.append((group, f"{own['engine']}/{ref['engine']}", ratios))
    return rows


def _figure(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _us(value: float | None) -> str:
    return "" if value is None else f"{value / 1000:.2f}"


def _add_row(table: Table, *cells: str) -> None:
    # Plain Text: notes and names may hold brackets, which rich would otherwise read as markup.
    table.add_row(*(Text(c) for c in cells))


def build_table(summaries: list[dict[str, Any]]) -> Table:
    """A rich Table of one or several runs; figures in microseconds."""
    several = len(summaries) > 1
    table = Table(title="latency (µs); ratio rows are own engine ÷ reference", show_lines=False)
    if several:
        table.add_column("run")
    for name in ("case", "engine", "metric"):
        table.add_column(name)
    for name in COLUMNS:
        table.add_column(name, justify="right")
    table.add_column("samples", justify="right")
    table.add_column("note")
    for summary in summaries:
        run = [summary["run_id"]] if several else []
        if not summary.get("complete", False):
            _add_row(table, *run, "(run incomplete)", "", "", *[""] * len(COLUMNS), "",
                          summary.get("incomplete_reason", ""))
        for case in summary["cases"]:
            st = case.get("stats_ns", {})
            note = case.get("note", "")
            if case.get("figures"):
                shown = "; ".join(f"{k} {_figure(v)}" for k, v in case["figures"].items())
                note = f"{shown}; {note}" if note else shown
            if not case.get("complete", True) and "incomplete" not in note:
                note = ("incomplete; " + note).strip("; ")
            _add_row(table, *run, case["group"], case["engine"], case["metric"],
                          *[_us(st.get(col)) for col in COLUMNS],
                          str(int(st["count"])) if "count" in st else "", note)
            corrected = case.get("corrected")
            if corrected and corrected.get("stats_ns", {}).get("count"):
                cst = corrected["stats_ns"]
                _add_row(table, *run, case["group"], case["engine"] + " (CO-corrected)", case["metric"],
                              *[_us(cst.get(col)) for col in COLUMNS], str(int(cst["count"])),
                              "from intended send times")
        for group, label, ratios in ratio_rows(summary["cases"]):
            _add_row(table, *run, group, label, "ratio",
                          *[f"{ratios[col]:.2f}" if col in ratios else "" for col in COLUMNS], "", "")
    return table


def render(summaries: list[dict[str, Any]], width: int = 200) -> str:
    """The table as plain text (no colour), for logs, notes and tests."""
    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True, highlight=False, force_jupyter=False).print(build_table(summaries))
    return buf.getvalue()
