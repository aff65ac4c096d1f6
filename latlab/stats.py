"""Statistics on raw samples that the report states with their uncertainty."""

from __future__ import annotations

import numpy as np


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
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(np.percentile(a, q) - np.percentile(b, q)), float(low), float(high)
