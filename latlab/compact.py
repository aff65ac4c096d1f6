"""The report a person reads at the end of a run: grouped by benchmark, one line per case, a headline per
benchmark, warnings first, notes as numbered footnotes, and it fits the terminal (80 columns and up).

A percentile is printed only when the sample count can resolve it: q needs at least 1 / (1 − q) samples (p99:
100, p99.9: 1,000, p99.99: 10,000); below that the cell is left blank, and the report says so once.
`latlab report --wide` keeps the full table (report.py); `--json` / `--csv` give `rows()` to machines.
"""

from __future__ import annotations

import csv
import io
import shutil
import textwrap
from pathlib import Path
from typing import Any

from latlab import budgets, trials
from latlab.caveats import run_warnings
from latlab.report import matrix_rows, ratio_rows

COLUMNS = ("p50", "p99", "p99.9", "max")
RESOLVES = {"p50": 2, "p90": 10, "p99": 100, "p99.9": 1_000, "p99.99": 10_000}
NUMBERS = 8 + 1 + 7 + 1 + 7 + 1 + 8 + 1 + 9  # the figure columns and their gaps
UNASSIGNED = "other"


def width() -> int:
    """The terminal's width (COLUMNS when set), at least 80."""
    return max(80, shutil.get_terminal_size((100, 24)).columns)


def resolvable(name: str, count: float) -> bool:
    """Whether `count` samples can resolve percentile `name`."""
    return count >= RESOLVES.get(name, 0)


def rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per measured case (its trials folded into one), for --json and --csv: figures in µs, unresolvable
    percentiles None."""
    summary = trials.merged(summary)
    ratios = _ratios(summary["cases"])
    out = []
    for case in summary["cases"]:
        st = case.get("stats_ns", {})
        count = st.get("count", 0)
        ref = ratios.get((case["group"], case["engine"]))
        out.append({
            "run_id": summary.get("run_id"), "benchmark": case.get("benchmark", UNASSIGNED),
            "group": case["group"], "engine": case["engine"], "role": case["role"], "metric": case["metric"],
            "count": int(count),
            **{f"{c}_us": (st[c] / 1000 if c in st and resolvable(c, count) else None) for c in (*COLUMNS, "mean")},
            "reference": ref[0] if ref else None, "ratio_p50": ref[1] if ref else None,
            "complete": case.get("complete", True), "note": case.get("note", ""),
            "figures": case.get("figures", {}),
            **({"trials": case["trials"]} if "trials" in case else {}),
        })
    return out


def render_csv(summary: dict[str, Any]) -> str:
    buf = io.StringIO()
    table = rows(summary)
    fields = [k for k in table[0] if k != "figures"] if table else []
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def _ratios(cases: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[str, float]]:
    """(group, own engine) → (reference, own p50 ÷ reference p50), for references that have a p50 (the first
    such reference of the group: sockperf before a mean-only qperf)."""
    out: dict[tuple[str, str], tuple[str, float]] = {}
    for group, label, r in ratio_rows(cases):
        own, ref = label.split("/", 1)
        if r.get("p50") and (group, own) not in out:
            out[(group, own)] = (ref, r["p50"])
    return out


class _Notes:
    """Numbered footnotes: each distinct text once."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if not text:
            return ""
        if text not in self.texts:
            self.texts.append(text)
        return f" [{self.texts.index(text) + 1}]"


def _us(ns: float | None) -> str:
    if ns is None:
        return ""
    us = ns / 1000
    return f"{us:,.0f}" if us >= 10_000 else f"{us:.2f}" if us < 100 else f"{us:.1f}"


def _figure(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(1, n - 1)] + "…"


def _note_of(case: dict[str, Any]) -> str:
    parts = []
    if case.get("figures"):
        parts.append("; ".join(f"{k} {_figure(v)}" for k, v in case["figures"].items()))
    if case.get("note"):
        parts.append(case["note"])
    if not case.get("complete", True) and "incomplete" not in case.get("note", "") \
            and "failed" not in case.get("note", "") and case["role"] != "skipped":
        parts.insert(0, "incomplete")
    return "; ".join(parts)


def headline(benchmark: str, cases: list[dict[str, Any]]) -> str:
    """The one line that answers the benchmark's question, or "" when the run does not hold it."""
    if benchmark == "tick_to_trade":
        for c in cases:
            f = c.get("figures", {})
            if "app cost p50 µs" in f and "from kernel rx" not in c["group"]:
                low, high = f["app cost p50 95% CI low µs"], f["app cost p50 95% CI high µs"]
                return (f"application cost p50 {f['app cost p50 µs']:.2f} µs [95 % {low:.2f}, {high:.2f}] over the "
                        f"floor ({c['group']})")
    if benchmark == "multicast":
        for c in cases:
            f = c.get("figures", {})
            if "latlab/sockperf pkt/s" in f:
                return f"publisher top rate {f['latlab/sockperf pkt/s']:.2f} × sockperf's on the same bridge"
        loss_free = [c for c in cases if c["group"] == "mcast sweep" and c.get("figures", {}).get("loss", 1) == 0]
        if loss_free:
            return f"highest loss-free rate in the sweep: {loss_free[-1]['engine'].removeprefix('latlab ')}"
    if benchmark == "pingpong":
        matrix = [r for r in matrix_rows(cases) if r["ratio_to_kernel"].get("p50") and r["engine"].startswith("latlab")]
        if matrix:
            best: dict[str, float] = {}
            for r in matrix:
                best[r["stack"]] = min(best.get(r["stack"], 1e9), r["ratio_to_kernel"]["p50"])
            return "p50 × kernel (same receive mode, best size): " + ", ".join(
                f"{s} {v:.2f}" for s, v in sorted(best.items(), key=lambda kv: kv[1]))
        refs = ratio_rows(cases)
        if refs:
            group, label, r = refs[0]
            return f"latlab ÷ reference p50: {label} {r.get('p50', 0):.2f} ({group})"
    if benchmark == "rdma":
        refs = [(g, label, r) for g, label, r in ratio_rows(cases) if label.startswith("latlab/")]
        if refs:
            return "latlab ÷ perftest p50: " + ", ".join(f"{g.removeprefix('rdma ')} {r.get('p50', 0):.2f}"
                                                         for g, _, r in refs if r.get("p50"))
    return ""


def all_warnings(summary: dict[str, Any], run_dir: Path | None) -> list[str]:
    """The run's caveats (latlab/caveats.py) and the percentile rule, when a case is too small for it."""
    warnings = run_warnings(summary, run_dir) if run_dir is not None else []
    blanked = [c for c in summary["cases"] if c.get("stats_ns", {}).get("count")
               and not all(resolvable(k, c["stats_ns"]["count"]) for k in COLUMNS)]
    if blanked:
        warnings.append(f"{len(blanked)} case(s) have too few samples for some percentiles: left blank "
                        "(p99 needs 100 samples, p99.9 1,000, p99.99 10,000)")
    return warnings


def headlines(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(benchmark, headline) for each benchmark of the run that has one."""
    return [(bench, text) for bench, groups in _by_benchmark(trials.merged(summary)).items()
            if (text := headline(bench, [c for members in groups.values() for c in members]))]


def _by_benchmark(summary: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """benchmark → group → cases, in the order they ran."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for case in summary["cases"]:
        out.setdefault(case.get("benchmark", UNASSIGNED), {}).setdefault(case["group"], []).append(case)
    return out


def render(summary: dict[str, Any], run_dir: Path | None = None, columns: int | None = None,
           warnings: list[str] | None = None) -> str:
    """The compact report of one run, at most `columns` wide; `warnings` when the caller has them already (they
    read every interval log of the run)."""
    cols = columns or width()
    per_trial = trial_lines(summary, cols)
    summary = trials.merged(summary)
    notes = _Notes()
    lines = [_cut(f"run {summary.get('run_id', '?')}: "
                  + ("complete" if summary.get("complete") else
                     f"INCOMPLETE ({summary.get('incomplete_reason') or 'a case failed or is incomplete'})"), cols)]
    if warnings is None:
        warnings = all_warnings(summary, run_dir)
    for w in warnings:
        lines += textwrap.wrap(w, cols, initial_indent="! ", subsequent_indent="  ")
    ratio_of = _ratios(summary["cases"])
    for bench, groups in _by_benchmark(summary).items():
        cases = [c for members in groups.values() for c in members]
        longest = max(len(c["engine"]) for c in cases)  # per benchmark: one long name does not widen the others
        name_w = max(12, min(longest, cols - 4 - 1 - NUMBERS - 22))  # room for "  0.98 sockperf" and a mark
        unit = "one-way µs" if all(c["metric"] == "one-way" for c in cases if c.get("stats_ns")) else "µs"
        lines += ["", _cut(f"{bench} ({unit})".ljust(4 + name_w) + "      p50     p99   p99.9      max"
                           "         n  ÷ref p50", cols)]
        head = headline(bench, cases)
        if head:
            lines += textwrap.wrap(head, cols, initial_indent="  = ", subsequent_indent="    ")
        for group, members in groups.items():
            lines.append(_cut(f"  {group}", cols))
            for case in members:
                lines.append(_case_line(case, case.get("stats_ns", {}), case["engine"], name_w,
                                        ratio_of.get((case["group"], case["engine"])), notes, cols))
                corrected = case.get("corrected", {}).get("stats_ns", {})
                if corrected.get("count"):
                    lines.append(_case_line(case, corrected, "  CO-corrected", name_w, None, notes, cols))
    lines += matrix_lines(summary, cols, notes)
    lines += budgets.report_lines(summary.get("budgets"), cols)
    lines += per_trial
    if notes.texts:
        lines += ["", "notes"]
        for k, text in enumerate(notes.texts, 1):
            lines += textwrap.wrap(text, cols, initial_indent=f"[{k}] ", subsequent_indent="    ")
    return "\n".join(lines) + "\n"


def trial_lines(summary: dict[str, Any], cols: int) -> list[str]:
    """Each trial's own figures, where a claim is made across trials ("≤ 1.0 × the reference in 4 of 5"): every
    own ÷ reference ratio at p50 and p99, and every application cost with its 95 % interval. Nothing for one
    trial."""
    if summary.get("trials", 1) <= 1:
        return []
    by_trial: dict[int, list[dict[str, Any]]] = {}
    for case in summary["cases"]:
        by_trial.setdefault(case.get("trial", 1), []).append(case)
    order = sorted(by_trial)
    ratios: dict[tuple[str, str, str], list[float | None]] = {}
    costs: dict[str, list[tuple[float, float, float] | None]] = {}
    for i, t in enumerate(order):
        tools = [c for c in by_trial[t] if c.get("benchmark") != "tick_to_trade"]  # there the floor is no rival
        for group, label, r in ratio_rows(tools):
            for col in ("p50", "p99"):
                if col in r:
                    ratios.setdefault((group, label, col), [None] * len(order))[i] = r[col]
        for case in by_trial[t]:
            f = case.get("figures", {})
            if "app cost p50 µs" in f:
                costs.setdefault(case["group"], [None] * len(order))[i] = (
                    f["app cost p50 µs"], f["app cost p50 95% CI low µs"], f["app cost p50 95% CI high µs"])
    if not ratios and not costs:
        return []
    lines = ["", _cut(f"per trial (trials {', '.join(map(str, order))}: each trial's own figures)", cols)]
    for (group, label, col), values in ratios.items():
        got = [v for v in values if v is not None]
        text = (f"{group}, {label} {col}: " + " ".join("—" if v is None else f"{v:.2f}" for v in values)
                + f" (≤ 1.00 in {sum(v <= 1.0 for v in got)} of {len(got)})")
        lines += textwrap.wrap(text, cols, initial_indent="  ", subsequent_indent="    ")
    for group, values in costs.items():
        text = f"{group}, application cost p50 µs [95 %]: " + "; ".join(
            "—" if v is None else f"{v[0]:.2f} [{v[1]:.2f}, {v[2]:.2f}]" for v in values)
        lines += textwrap.wrap(text, cols, initial_indent="  ", subsequent_indent="    ")
    return lines


def matrix_lines(summary: dict[str, Any], cols: int, notes: _Notes) -> list[str]:
    """The stack matrix, narrow: each stack's latlab row per protocol, size and receive mode, its ratio to the
    kernel in the same receive mode, and whether the evidence says the stack carried the traffic."""
    rows = [r for r in matrix_rows(summary["cases"]) if r["engine"].startswith("latlab")]
    if len({r["stack"] for r in rows}) < 2:
        return []
    lines = ["", _cut("stack matrix (RTT µs; ×kernel: this stack ÷ the kernel, same receive mode)", cols),
             _cut(f"  {'stack':<10} {'case':<19} {'p50':>7} {'p99':>7} {'×kernel p50':>11} {'p99':>5}  carried?",
                  cols)]
    for r in rows:
        st, ratio = r["stats_ns"], r["ratio_to_kernel"]
        case = f"{r['proto']} {r['size']}B {r['receive']}" if r["size"] else f"{r['proto']} {r['receive']}"
        if r["evidence"] is None:
            carried = "baseline" if r["stack"] == "kernel" else "—"
        else:
            carried = "yes" if r["evidence"] else "NO"
        k50 = f"{ratio['p50']:.2f}" if "p50" in ratio else ""
        k99 = f"{ratio['p99']:.2f}" if "p99" in ratio else ""
        mark = notes.mark(r["note"]) if r["evidence"] is not None or r["stack"] != "kernel" else ""
        lines.append(_cut(f"  {r['stack']:<10} {case:<19} {_us(st.get('p50')):>7} {_us(st.get('p99')):>7} "
                          f"{k50:>11} {k99:>5}  {carried}{mark}", cols))
    return lines


def _case_line(case: dict[str, Any], st: dict[str, Any], engine: str, name_w: int,
               ratio: tuple[str, float] | None, notes: _Notes, cols: int) -> str:
    """One case: its figures, its ratio to the group's reference, and its footnote mark (never cut off)."""
    count = st.get("count", 0)
    cells = [_us(st.get(c)) if c in st and resolvable(c, count) else "" for c in COLUMNS]
    if not count and "mean" in st:
        cells[0] = f"~{_us(st['mean'])}"  # a reference that gives only a mean
    mark = notes.mark(_note_of(case)) if engine == case["engine"] else ""
    name = _cut(engine, name_w)
    if not st and not count:
        return _cut(f"    {name:<{name_w}} {'—':>8}", cols - len(mark)) + mark
    n = f"{int(count):,}" if count else ""
    ref = f"  {ratio[1]:.2f} {ratio[0]}" if ratio else ""
    line = f"    {name:<{name_w}} {cells[0]:>8} {cells[1]:>7} {cells[2]:>7} {cells[3]:>8} {n:>9}{ref}"
    return _cut(line, cols - len(mark)) + mark


def print_run(run_dir: Path) -> None:
    """What a finished run prints: the compact report, where its HTML page is (written now), the folder."""
    from latlab.html_report import write_for_run
    from latlab.report import load_summary

    summary = load_summary(run_dir)
    warnings = all_warnings(summary, run_dir)
    print(render(summary, run_dir, warnings=warnings))
    print(write_for_run(run_dir, summary, warnings))
    print(f"results: {run_dir}  (`latlab report --wide` for every column)")
