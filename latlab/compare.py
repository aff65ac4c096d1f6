"""`latlab compare RUN_A RUN_B`: is B faster than A? Per case in both runs, the change of p50, p99 and p99.9 with
a 95 % bootstrap confidence interval, and a verdict, in the manner of pyperf's `compare_to`.

What is resampled: each case's distribution as its .hlog holds it (every interval histogram summed), not raw
samples. A run keeps no raw samples (millions per case); the HDR histogram keeps every sample at 3 significant
digits (bucket width ≤ 0.1 % of the value), so resampling its buckets by their counts (a multinomial draw) is the
bootstrap of the recorded data, with a resolution far below any change worth a verdict. The runs are independent,
so each is resampled on its own. A change counts only when its interval excludes zero and it is at least
`threshold` percent (default 5 %): the interval holds the sampling noise within each run, which on hundreds of
thousands of samples is a fraction of a percent, not the noise between runs, which on a shared host is several
percent (two runs of one build here: p50 changes up to ±13 %).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latlab import hdr, trials
from latlab.errors import LatlabError
from latlab.report import load_summary
from latlab.stats import percentile_interval

QUANTILES = (("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9))
RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Distribution:
    """A case's recorded latency distribution: bucket values (ns, ascending) and their counts."""

    values: np.ndarray
    counts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def percentile(self, q: float) -> float:
        return float(_percentiles(self.values, self.counts[None, :], q)[0])


@dataclass
class Change:
    """The change of one percentile from A to B, in percent of A, with its bootstrap interval."""

    name: str
    a_ns: float
    b_ns: float
    percent: float
    low: float
    high: float


@dataclass
class CaseComparison:
    group: str
    engine: str
    metric: str
    a_count: int
    b_count: int
    changes: list[Change] = field(default_factory=list)
    verdict: str = ""
    note: str = ""


def read_distribution(*paths: Path) -> Distribution:
    """Every interval histogram of the .hlog files (one per trial), summed."""
    total = hdr.new_histogram()
    for path in paths:
        for interval in hdr.read_intervals(path):
            total.add(interval)
    pairs = [(item.value_iterated_to, item.count_at_value_iterated_to) for item in total.get_recorded_iterator()]
    if not pairs:
        raise LatlabError(f"{', '.join(map(str, paths))} hold no samples")
    values, counts = zip(*pairs, strict=True)
    return Distribution(np.asarray(values, np.int64), np.asarray(counts, np.int64))


def _percentiles(values: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """The q-th percentile of each row of bucket counts, by HdrHistogram's rule (the value at rank q·n/100 rounded
    half up, at least 1), so that a run's own percentiles read back unchanged."""
    cumulative = np.cumsum(counts, axis=1)
    rank = np.maximum(1, (q / 100 * cumulative[:, -1] + 0.5).astype(np.int64))
    index = (cumulative < rank[:, None]).sum(axis=1)
    return values[np.minimum(index, len(values) - 1)]


def bootstrap_change(a: Distribution, b: Distribution, q: float, resamples: int = RESAMPLES,
                     level: float = LEVEL, seed: int = 0) -> tuple[float, float, float]:
    """(change %, low %, high %) of the q-th percentile from a to b; seeded, so a comparison reads the same twice."""
    rng = np.random.default_rng(seed)
    qa, qb = a.percentile(q), b.percentile(q)
    ra = _percentiles(a.values, rng.multinomial(a.total, a.counts / a.total, size=resamples), q)
    rb = _percentiles(b.values, rng.multinomial(b.total, b.counts / b.total, size=resamples), q)
    low, high = percentile_interval(100 * (rb - ra) / ra, level)
    return 100 * (qb - qa) / qa, low, high


def verdict(change: Change, threshold: float) -> str:
    """faster / slower when the interval excludes zero and the change is at least `threshold` %."""
    if change.low > 0 and change.percent >= threshold:
        return "slower"
    if change.high < 0 and -change.percent >= threshold:
        return "faster"
    return "no significant change"


def _key(case: dict[str, Any]) -> tuple[str, str, str]:
    return case["group"], case["engine"], case["metric"]


def _version(run: Path) -> str | None:
    try:
        return json.loads((run / "manifest.json").read_text()).get("latlab_version")
    except (OSError, json.JSONDecodeError):
        return None


def compare_runs(run_a: Path, run_b: Path, threshold: float = 5.0) -> list[CaseComparison]:
    """Every case present in both runs, compared; a case without an interval log gets a note, not a verdict."""
    va, vb = _version(run_a), _version(run_b)
    if va and vb and va != vb:
        raise LatlabError(f"{run_a.name} was made by latlab {va}, {run_b.name} by {vb}: their cases are not "
                          "measured the same way; compare runs of one version")
    raw_a, raw_b = load_summary(run_a), load_summary(run_b)
    trials_a, trials_b = _by_key(raw_a), _by_key(raw_b)
    cases_a = {_key(c): c for c in trials.merged(raw_a)["cases"] if _key(c) in trials_a}
    cases_b = {_key(c): c for c in trials.merged(raw_b)["cases"] if _key(c) in trials_b}
    common = [k for k in cases_a if k in cases_b]
    if not common:
        raise LatlabError(f"{run_a.name} and {run_b.name} have no measured case in common (same group, engine "
                          "and metric)")
    out = []
    for key in common:
        a, b = cases_a[key], cases_b[key]
        row = CaseComparison(*key, a_count=int(a["stats_ns"]["count"]), b_count=int(b["stats_ns"]["count"]))
        hlogs_a = [run_a / c["files"]["hlog"] for c in trials_a[key] if c.get("files", {}).get("hlog")]
        hlogs_b = [run_b / c["files"]["hlog"] for c in trials_b[key] if c.get("files", {}).get("hlog")]
        if len(hlogs_a) < len(trials_a[key]) or len(hlogs_b) < len(trials_b[key]):
            row.verdict = "n/a"
            row.note = "no interval log (.hlog) in both runs: no interval, no verdict"
            out.append(row)
            continue
        try:
            dist_a, dist_b = read_distribution(*hlogs_a), read_distribution(*hlogs_b)
        except (OSError, ValueError, LatlabError) as exc:
            row.verdict = "n/a"
            row.note = f"cannot read the interval log: {exc}"
            out.append(row)
            continue
        for name, q in QUANTILES:
            percent, low, high = bootstrap_change(dist_a, dist_b, q)
            row.changes.append(Change(name, dist_a.percentile(q), dist_b.percentile(q), percent, low, high))
        row.verdict = verdict(row.changes[0], threshold)
        if trials.ranges_overlap(a, b) and row.verdict != "no significant change":
            # the bootstrap sees one run's sampling noise only; repeated trials show the run-to-run noise too
            row.note = (f"the bootstrap says {row.verdict}, but the p50 ranges across trials overlap "
                        f"({len(hlogs_a)} and {len(hlogs_b)} trials): run-to-run variation covers the change")
            row.verdict = "no significant change"
        out.append(row)
    return out


def _by_key(summary: dict[str, Any]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Each measured case's trials (one entry when the run had one)."""
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for case in summary["cases"]:
        if case.get("stats_ns", {}).get("count"):
            out.setdefault(_key(case), []).append(case)
    return out


def regressions(rows: list[CaseComparison], percent: float) -> list[CaseComparison]:
    """Cases whose p50 got slower by more than `percent`, beyond doubt (the interval's lower end above it)."""
    return [r for r in rows if r.changes and r.changes[0].low > percent]


def render(rows: list[CaseComparison], run_a: Path, run_b: Path, threshold: float = 5.0) -> str:
    """Per case: its name, then p50 A → B and the change of p50, p99 and p99.9 with intervals, and the verdict.
    Cases without interval logs are counted on one line, not listed."""
    lines = [f"A = {run_a.name}", f"B = {run_b.name}",
             f"change B vs A in % of A [95 % bootstrap interval]; verdict on p50 (at least {threshold:g} %).",
             "The interval covers the sampling noise within each run, not the noise between runs (other load,",
             "CPU frequency, cache placement): repeat runs of one build to see that spread, and set --threshold",
             "above it.", ""]
    for r in rows:
        if not r.changes:
            continue
        p50 = r.changes[0]
        parts = "  ".join(f"{c.name} {c.percent:+.1f}% [{c.low:+.1f}, {c.high:+.1f}]" for c in r.changes)
        lines += [f"{r.group} · {r.engine}",
                  f"    {p50.a_ns / 1000:.2f} → {p50.b_ns / 1000:.2f} µs   {parts}   {r.verdict}"]
    skipped = [r for r in rows if not r.changes]
    if skipped:
        lines += ["", f"not compared: {len(skipped)} case(s) without an interval log in both runs "
                      f"({', '.join(sorted({r.group for r in skipped})[:4])}{' …' if len(skipped) > 4 else ''})"]
    counts = {v: sum(1 for r in rows if r.verdict == v) for v in ("faster", "slower", "no significant change")}
    lines += ["", ", ".join(f"{n} {v}" for v, n in counts.items())]
    return "\n".join(lines) + "\n"
