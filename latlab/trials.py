"""Repeated trials of a run (`latlab bench --trials N`): each case ran N times, interleaved with the others, and is
reported once, with the spread of its p50 across the trials.

Two runs of one build on these machines differ by up to ±13 % at p50, far more than one run's bootstrap interval
admits: the run-to-run variation is what a comparison has to beat, and only repeats measure it. The interval given
is distribution-free: the lowest and highest p50 of N trials bracket the median trial's p50 with probability
1 − 2 · 0.5^N (75 % for 3 trials, 94 % for 5, 97 % for 6).
"""

from __future__ import annotations

import re
import statistics
from typing import Any

PERCENTILES = ("p50", "p90", "p99", "p99.9", "p99.99", "min", "max", "mean")


def coverage(n: int) -> float:
    """The probability that the range of n trials' p50 brackets the median trial's p50."""
    return 1 - 2 * 0.5 ** n if n >= 2 else 0.0


def key(case: dict[str, Any]) -> tuple[str, str, str, str]:
    return case.get("benchmark", ""), case["group"], case["engine"], case.get("metric", "")


def merged(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with each case's trials folded into one entry: every percentile the median of the trials', the
    sample count their sum, and `trials` holding each trial's p50, their range and its coverage. The files named are
    the first trial's (the figures draw its distribution); each trial's own entry stays in summary.json. A run of
    one trial comes back as it is."""
    if summary.get("trials", 1) <= 1 or summary.get("folded"):
        return summary  # the report and the page fold once; what they call folds no more
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for case in summary["cases"]:
        groups.setdefault(key(case), []).append(case)
    return {**summary, "folded": True, "cases": [_fold(members) for members in groups.values()]}


def _fold(members: list[dict[str, Any]]) -> dict[str, Any]:
    if len(members) == 1:
        return members[0]
    first = members[0]
    measured = [m.get("stats_ns", {}) for m in members if m.get("stats_ns", {}).get("count")]
    stats: dict[str, float] = {}
    if measured:
        stats = {p: statistics.median(s[p] for s in measured) for p in PERCENTILES if all(p in s for s in measured)}
        stats["count"] = sum(s["count"] for s in measured)
    p50s = [s["p50"] for s in measured if "p50" in s]
    notes = _notes([m.get("note", "") for m in members], [m.get("trial", k) for k, m in enumerate(members, 1)])
    folded = {**first, "stats_ns": stats, "complete": all(m.get("complete", True) for m in members),
              "note": notes, "files": first.get("files", {}),
              "trials": {"n": len(members), "measured": len(p50s), "p50_ns": p50s}}
    if len(p50s) >= 2:
        folded["trials"].update({"p50_range_ns": [min(p50s), max(p50s)], "coverage": coverage(len(p50s))})
        trial_note = describe(folded["trials"])
        folded["note"] = "; ".join(n for n in (trial_note, folded["note"]) if n)
    return folded


def _notes(notes: list[str], trials: list[int]) -> str:
    """The trials' notes in one: the first when the others say the same but for their counts, else each one, named
    by the trial it came from."""
    if not any(notes):
        return ""
    if len({re.sub(r"\d[\d,.]*", "#", n) for n in notes}) == 1:
        return notes[0] + (f" (trial {trials[0]}; the other trials alike)" if len(notes) > 1 else "")
    return "; ".join(f"trial {t}: {n}" for t, n in zip(trials, notes, strict=True) if n)


def describe(trials: dict[str, Any]) -> str:
    """One line: the p50 across the trials, its range and what the range covers."""
    p50s = trials["p50_ns"]
    lo, hi = trials["p50_range_ns"]
    mid = statistics.median(p50s)
    return (f"p50 over {len(p50s)} trials: {mid / 1000:.2f} µs, range [{lo / 1000:.2f}, {hi / 1000:.2f}] "
            f"(±{50 * (hi - lo) / mid:.1f} %; brackets the median trial with {100 * trials['coverage']:.0f} %)")


def ranges_overlap(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """Whether two folded cases' p50 ranges across trials overlap; None unless both have a range."""
    ra, rb = a.get("trials", {}).get("p50_range_ns"), b.get("trials", {}).get("p50_range_ns")
    if not ra or not rb:
        return None
    return ra[0] <= rb[1] and rb[0] <= ra[1]
