"""The bootstrap interval of a percentile difference: it covers a known shift and narrows with more samples."""

from __future__ import annotations

import numpy as np
import pytest

from latlab.stats import percentile_difference_ci


def test_interval_covers_a_known_shift_and_narrows_with_samples():
    rng = np.random.default_rng(3)
    widths = []
    for n in (500, 8000):
        a = rng.lognormal(3.5, 0.4, n) + 1.0          # b shifted by exactly 1
        b = rng.lognormal(3.5, 0.4, n)
        diff, low, high = percentile_difference_ci(a, b)
        assert low < diff < high and low < 1.0 < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2                   # about 1/sqrt(16) as wide


def test_same_samples_give_zero_and_a_seeded_interval():
    x = np.arange(1000.0)
    assert percentile_difference_ci(x, x)[0] == 0.0
    assert percentile_difference_ci(x, x[::-1]) == percentile_difference_ci(x, x[::-1])
    with pytest.raises(ValueError):
        percentile_difference_ci(x, np.zeros(0))
