"""Histogram files: written in HdrHistogram's formats, read back with HdrHistogram_py, compared with the samples."""

from __future__ import annotations

import numpy as np
import pytest
from hdrh.log import HistogramLogReader

from latlab import hdr
from latlab.analysis import read_hgrm, read_hlog


def _samples(n: int = 50_000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = (rng.lognormal(mean=9.5, sigma=0.4, size=n)).astype(np.int64) + 1  # around 13 µs
    values[::250] *= 50  # a tail of 0.4 %, so every percentile lies inside a population
    times = np.cumsum(rng.integers(5_000, 30_000, size=n)).astype(np.int64)
    return times, values


def test_stats_match_raw_samples_within_hdr_precision():
    _, values = _samples()
    st = hdr.stats(hdr.build_histogram(values))
    assert st["count"] == len(values)
    assert st["min"] == pytest.approx(values.min(), rel=1e-3)
    assert st["max"] == pytest.approx(values.max(), rel=1e-3)
    for name, pct in hdr.PERCENTILES:
        # HdrHistogram reports the highest equivalent value of the bucket holding the percentile.
        exact = np.percentile(values, pct, method="inverted_cdf")
        assert st[name] == pytest.approx(exact, rel=2e-3), name


def test_hgrm_round_trip(tmp_path):
    _, values = _samples()
    text = hdr.hgrm_text(hdr.build_histogram(values))
    assert "#[Mean" in text and "Value     Percentile TotalCount" in text
    path = tmp_path / "x.hgrm"
    path.write_text(text)
    dist = read_hgrm(path)
    assert dist.total_count[-1] == len(values)
    assert dist.percentile[-1] == 1.0
    # Values are printed in µs; the 0.5 row holds the histogram's median, close to the raw one.
    # The median lies between the rows that bracket percentile 0.5.
    row = int(np.searchsorted(dist.percentile, 0.5))
    median_us = np.median(values) / 1000
    assert dist.value_us[row - 1] <= median_us * 1.002
    assert dist.value_us[row] >= median_us * 0.998
    assert np.all(np.diff(dist.value_us) >= 0) and np.all(np.diff(dist.total_count) >= 0)


def test_hlog_intervals_read_back_with_hdrhistogram(tmp_path):
    times, values = _samples()
    interval = 100_000_000
    path = tmp_path / "x.hlog"
    path.write_text(hdr.hlog_text(times, values, interval, "test", 1_700_000_000.0))
    reader = HistogramLogReader(str(path), hdr.new_histogram())
    total = hdr.new_histogram()
    intervals = 0
    while (h := reader.get_next_interval_histogram()) is not None:
        total.add(h)
        intervals += 1
    expected_intervals = len(np.unique((times - times[0]) // interval))
    assert intervals == expected_intervals
    assert total.get_total_count() == len(values)
    assert total.get_value_at_percentile(99) == hdr.build_histogram(values).get_value_at_percentile(99)
    timeline = read_hlog(path)
    assert timeline[0].start_s == 0.0
    assert sum(i.count for i in timeline) == len(values)
    assert [round(i.start_s, 3) for i in timeline][:2] == [0.0, 0.1]


def test_values_outside_the_range_are_clipped_not_lost():
    st = hdr.stats(hdr.build_histogram([0, 5, hdr.HIGHEST_NS * 2]))
    assert st["count"] == 3
    assert st["min"] == 1
