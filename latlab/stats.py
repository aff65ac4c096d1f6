"""Statistics on raw samples that the report states with their uncertainty."""

from __future__ import annotations

import numpy as np


def percentile_interval(estimates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile-bootstrap interval of `level` over resampled estimates: (low, high)."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(estimates, [tail, 100 - tail])
    return float(low), float(high)


def percentile_difference_ci(a: np.ndarray, b: np.ndarray, q: float = 50, level: float = 0.95,
                             resamples: int = 400, seed: int = 0) -> tuple[float, float, float]:
    """The difference of the q-th percentiles of two independent samples (a − b) and its percentile-bootstrap
    confidence interval: (difference, low, high), in the samples' unit. Seeded, so a run reports the same
    interval every time it is read."""
    if not len(a) or not len(b):
        raise ValueError("both samples need values")
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    for k in range(resamples):
        diffs[k] = np.percentile(rng.choice(a, len(a)), q) - np.percentile(rng.choice(b, len(b)), q)
    low, high = percentile_interval(diffs, level)
    return float(np.percentile(a, q) - np.percentile(b, q)), low, high


def paired_percentile_difference_ci(a: np.ndarray, b: np.ndarray, q: float = 50, level: float = 0.95,
                                    resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """The difference of the q-th percentiles (a − b) of paired samples, a[i] and b[i] measured together (the
    trader and the floor on the two triggers of one pair), and its bootstrap interval with the pairs resampled
    jointly: what the pairs share (the moment's load, the cache state) cancels instead of widening the interval
    as it does when each side is resampled on its own. Returns (difference, low, high); seeded."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b) or not len(a):
        raise ValueError("paired samples need the same, non-zero length")
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    chunk = max(1, 2_000_000 // len(a))  # bound the index matrix's memory
    for start in range(0, resamples, chunk):
        count = min(chunk, resamples - start)
        idx = rng.integers(0, len(a), (count, len(a)))
        diffs[start:start + count] = np.percentile(a[idx], q, axis=1) - np.percentile(b[idx], q, axis=1)
    low, high = percentile_interval(diffs, level)
    return float(np.percentile(a, q) - np.percentile(b, q)), low, high
