"""What a reader should doubt before trusting a run's figures, as pyperf warns: a host that was not ready, a
case whose latency drifted while it ran, a reference tool that was missing, a case that failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from latlab import hdr

DRIFT = 0.25  # early and late p50 of a case differing by more than this share: unstable


def run_warnings(summary: dict[str, Any], run_dir: Path | None) -> list[str]:
    """One line per problem, most important first."""
    out = []
    if run_dir is not None:
        out += host_not_ready(run_dir)
    for case in summary["cases"]:
        name = f"{case['group']} {case['engine']}"
        if case["role"] == "failed":
            out.append(f"{name}: failed: {case.get('note', '')}")
        elif case["role"] == "reference" and "not installed" in case.get("note", ""):
            out.append(f"{name}: reference tool missing: {case['note']}")
        if run_dir is not None and case.get("files", {}).get("hlog"):
            drift = p50_drift(run_dir / case["files"]["hlog"])
            if drift is not None and abs(drift[2]) > DRIFT:
                out.append(f"{name}: unstable: p50 {drift[0] / 1000:.2f} µs in the first third of the run, "
                           f"{drift[1] / 1000:.2f} µs in the last ({drift[2]:+.0%}; warned above ±{DRIFT:.0%})")
    return out


def host_not_ready(run_dir: Path) -> list[str]:
    """The manifest's hostprep section, summarised: how many checks were not ready, and which."""
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return []
    checks = (manifest.get("hostprep") or {}).get("checks") or []
    bad = [c.get("name", "?") for c in checks if c.get("status") == "not ready"]
    if not bad:
        return []
    shown = ", ".join(bad[:6]) + (" …" if len(bad) > 6 else "")
    return [f"host not ready: {len(bad)} of {len(checks)} checks ({shown}); `latlab hostprep check` says why"]


def p50_drift(hlog: Path) -> tuple[float, float, float] | None:
    """(early p50, late p50, late/early − 1) over the first and last third of a case's interval histograms, or
    None with fewer than 6 intervals or an unreadable log."""
    try:
        intervals = hdr.read_intervals(hlog)
    except (OSError, ValueError):
        return None
    if len(intervals) < 6:
        return None
    third = len(intervals) // 3
    early, late = hdr.new_histogram(), hdr.new_histogram()
    for h in intervals[:third]:
        early.add(h)
    for h in intervals[-third:]:
        late.add(h)
    a, b = early.get_value_at_percentile(50), late.get_value_at_percentile(50)
    return (a, b, b / a - 1) if a else None
