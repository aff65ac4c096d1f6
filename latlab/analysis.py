"""Reading runs back for analysis (the notebooks use these): summaries, .hgrm distributions, .hlog timelines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latlab import hdr
from latlab.report import load_summary


@dataclass
class Distribution:
    """One .hgrm: values (µs) at percentiles (0–1), as HdrHistogram prints them."""

    value_us: np.ndarray
    percentile: np.ndarray
    total_count: np.ndarray


def newest_run(results_root: Path) -> Path:
    """The newest run folder (run ids sort by time)."""
    runs = sorted(p for p in Path(results_root).iterdir() if (p / "manifest.json").exists())
    if not runs:
        raise FileNotFoundError(f"no runs in {results_root}")
    return runs[-1]


def load_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, summary) of a run."""
    return json.loads((Path(run_dir) / "manifest.json").read_text()), load_summary(Path(run_dir))


def read_hgrm(path: Path) -> Distribution:
    """Parse the table of a percentile-distribution file (lines of Value, Percentile, TotalCount, 1/(1-p))."""
    values, pcts, counts = [], [], []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) < 3 or line.lstrip().startswith("#"):
            continue
        try:
            value, pct, count = float(parts[0]), float(parts[1]), float(parts[2])
        except ValueError:
            continue
        values.append(value)
        pcts.append(pct)
        counts.append(count)
    return Distribution(np.array(values), np.array(pcts), np.array(counts))


@dataclass
class Interval:
    start_s: float
    length_s: float
    count: int
    p50_us: float
    p99_us: float
    max_us: float


def read_hlog(path: Path) -> list[Interval]:
    """Interval statistics of an .hlog, seconds from the first interval (values recorded in ns, returned in µs)."""
    out: list[Interval] = []
    first: float | None = None
    for hist in hdr.read_intervals(path):
        start = hist.get_start_time_stamp() / 1000.0
        end = hist.get_end_time_stamp() / 1000.0
        first = start if first is None else first
        start, end = start - first, end - first
        out.append(Interval(start, end - start, hist.get_total_count(), hist.get_value_at_percentile(50) / 1e3,
                            hist.get_value_at_percentile(99) / 1e3, hist.get_max_value() / 1e3))
    return out


def nines_ticks(max_nines: int = 5) -> tuple[list[float], list[str]]:
    """Tick positions 1/(1-p) and labels for a log "nines" axis: 0%, 90%, 99%, ... ."""
    positions = [10.0**k for k in range(max_nines + 1)]
    labels = ["0%"] + [f"{100 - 100 / 10**k:g}%" for k in range(1, max_nines + 1)]
    return positions, labels
