"""HDR histograms from raw nanosecond samples, written in HdrHistogram's own formats.

Values are recorded in nanoseconds. `.hgrm` files print values in microseconds (scaling ratio 1000),
as HdrHistogram's percentile output does for latency. `.hlog` interval logs carry one histogram per
interval, timestamped in seconds from the first sample; their max column is in whole microseconds
(max_value_unit_ratio 1000 over nanoseconds).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader, HistogramLogWriter

LOWEST_NS = 1
HIGHEST_NS = 3_600 * 1_000_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9), ("p99.99", 99.99))


def new_histogram() -> HdrHistogram:
    """An empty histogram covering 1 ns to 1 hour at 3 significant digits."""
    return HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)


def _clip(values: Any) -> np.ndarray:
    return np.clip(np.asarray(values, dtype=np.int64), LOWEST_NS, HIGHEST_NS)


def build_histogram(values_ns: Sequence[int] | np.ndarray) -> HdrHistogram:
    """Histogram of the samples (built after the timed loop: equal values are recorded once with a count)."""
    hist = new_histogram()
    values, counts = np.unique(_clip(values_ns), return_counts=True)
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        hist.record_value(value, count)
    return hist


def stats(hist: HdrHistogram) -> dict[str, float]:
    """min, percentiles, max, mean (ns) and count of a histogram."""
    out: dict[str, float] = {"count": hist.get_total_count()}
    if out["count"] == 0:
        return out
    out["min"] = hist.get_min_value()
    for name, pct in PERCENTILES:
        out[name] = hist.get_value_at_percentile(pct)
    out["max"] = hist.get_max_value()
    out["mean"] = hist.get_mean_value()
    return out


def hgrm_text(hist: HdrHistogram) -> str:
    """The percentile distribution (.hgrm) in microseconds."""
    buf = io.BytesIO()
    hist.output_percentile_distribution(buf, 1000.0)
    return buf.getvalue().decode()


def hlog_text(times_ns: Sequence[int] | np.ndarray, values_ns: Sequence[int] | np.ndarray,
              interval_ns: int, comment: str, start_epoch_s: float) -> str:
    """An interval log (.hlog): one histogram per `interval_ns` of sample time, start at the first sample."""
    times = np.asarray(times_ns, dtype=np.int64)
    values = _clip(values_ns)
    buf = io.StringIO()
    writer = HistogramLogWriter(buf)
    writer.output_comment(comment)
    writer.output_log_format_version()
    # HistogramLogWriter.output_start_time is broken in hdrhistogram 0.10.8 (calls datetime.iso_format).
    stamp = datetime.fromtimestamp(start_epoch_s, tz=UTC).isoformat(" ")
    buf.write(f"#[StartTime: {start_epoch_s:f} (seconds since epoch), {stamp}]\n")
    writer.output_legend()
    if len(times):
        start = int(times[0])
        slot = (times - start) // interval_ns
        bounds = np.searchsorted(slot, np.arange(int(slot[-1]) + 2))
        for k in range(len(bounds) - 1):
            lo, hi = bounds[k], bounds[k + 1]
            if lo == hi:
                continue
            hist = build_histogram(values[lo:hi])
            # The writer treats a start of 0 as "unset", so the first interval starts a nanosecond in.
            writer.output_interval_histogram(hist, k * interval_ns / 1e9 or 1e-9, (k + 1) * interval_ns / 1e9,
                                             1000.0)
    return buf.getvalue()


def read_intervals(path: Any) -> list[HdrHistogram]:
    """Every interval histogram of an .hlog, in order; the file is closed after."""
    reader = HistogramLogReader(str(path), new_histogram())
    try:
        out = []
        while (hist := reader.get_next_interval_histogram()) is not None:
            out.append(hist)
        return out
    finally:
        reader.close()
