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
    try:
        summary = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LatlabError(f"{path} is not a readable summary: {exc}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("cases"), list):
        raise LatlabError(f"{path} is not a latlab summary (no list of cases)")
    return summary


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
            engine = case["engine"] + (f" (trial {case['trial']})" if "trial" in case else "")
            _add_row(table, *run, case["group"], engine, case["metric"],
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


MATRIX_COLUMNS = ("p50", "p99", "p99.9")


def matrix_rows(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stack matrix: each stack's own-engine row per protocol, size and receive mode, with its ratio to the
    kernel's own row of the same protocol, size and receive mode (spinning against spinning, blocking against
    blocking; never across). Rows whose params name no stack are not part of it."""
    own = [c for c in cases if c.get("params", {}).get("stack") and c["role"] in ("own", "skipped")]
    kernel = {(c["params"].get("proto"), c["params"].get("size"), c["params"].get("receive")): c
              for c in own if c["params"]["stack"] == "kernel" and c.get("stats_ns")}
    rows = []
    for c in own:
        p = c["params"]
        key = (p.get("proto"), p.get("size"), p.get("receive"))
        st = c.get("stats_ns", {})
        base = kernel.get(key)
        ratios = {}
        if base and p["stack"] != "kernel" and st:
            ratios = {col: st[col] / base["stats_ns"][col] for col in MATRIX_COLUMNS
                      if st.get(col) and base["stats_ns"].get(col)}
        evidence = p.get("evidence", {})
        rows.append({"stack": p["stack"], "proto": p.get("proto") or p.get("test", ""), "size": p.get("size"),
                     "receive": p.get("receive", ""), "engine": c["engine"], "stats_ns": st,
                     "ratio_to_kernel": ratios, "evidence": evidence.get("holds"), "note": c.get("note", ""),
                     "timestamps": c.get("timestamps", ""), "complete": c.get("complete", True)})
    return rows


def build_matrix(summary: dict[str, Any]) -> Table | None:
    """The stack matrix as a table, or None when the run measured fewer than two stacks."""
    rows = matrix_rows(summary["cases"])
    if len({r["stack"] for r in rows}) < 2:
        return None
    table = Table(title="stack matrix: RTT µs; × kernel = this stack ÷ the kernel in the same receive mode")
    for name in ("stack", "proto", "size", "receive", "engine"):
        table.add_column(name)
    for name in MATRIX_COLUMNS:
        table.add_column(name, justify="right")
    for name in MATRIX_COLUMNS[:2]:
        table.add_column(f"×kernel {name}", justify="right")
    table.add_column("carried by the stack?")
    for r in rows:
        st, ratios = r["stats_ns"], r["ratio_to_kernel"]
        if r["evidence"] is None:
            proof = "kernel (baseline)" if r["stack"] == "kernel" else r["note"][:60]
        else:
            proof = "yes: " + r["note"].removeprefix("evidence: ").split(";")[0] if r["evidence"] else \
                r["note"].split(";")[0]
        _add_row(table, r["stack"], r["proto"], f"{r['size']}B" if r["size"] else "", r["receive"], r["engine"],
                 *[_us(st.get(col)) for col in MATRIX_COLUMNS],
                 *[f"{ratios[col]:.2f}" if col in ratios else "" for col in MATRIX_COLUMNS[:2]], proof)
    return table


def render_matrix(summary: dict[str, Any], width: int = 200) -> str:
    """The stack matrix as plain text, or "" when there is none."""
    table = build_matrix(summary)
    if table is None:
        return ""
    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True, highlight=False, force_jupyter=False).print(table)
    return buf.getvalue()
