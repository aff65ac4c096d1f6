"""perftest (ib_send_lat, ib_write_lat, ib_read_lat) with raw samples (-H), parsed into nanoseconds.

perftest reports send and write latency as RTT/2 and read latency as RTT (cycle counter, polling).
Its -H list is sorted, so it carries no time order; latlab doubles send/write samples to compare
RTT with RTT and says so in the row.
"""

from __future__ import annotations

import re

import numpy as np

from latlab.errors import LatlabError

TOOLS = {"send": "ib_send_lat", "write": "ib_write_lat", "read": "ib_read_lat"}
HALF_RTT_TESTS = {"send", "write"}
_SAMPLE = re.compile(r"^\s*\d+,\s*([\d.]+)\s*$")
_INF_SAMPLE = re.compile(r"^\s*\d+,\s*(inf|nan)\s*$", re.IGNORECASE)
_SUMMARY = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")


def parse_raw(text: str) -> np.ndarray:
    """The `#, usec` sample lines of -H output, in ns (as perftest reports them: RTT/2 or RTT)."""
    values = [float(m.group(1)) for line in text.splitlines() if (m := _SAMPLE.match(line))]
    broken = sum(1 for line in text.splitlines() if _INF_SAMPLE.match(line))
    if broken:  # its cycle-counter arithmetic failed for those iterations: the run as a whole is not to be trusted
        raise LatlabError(f"perftest printed {broken} of {broken + len(values)} samples as inf/nan")
    if not values:
        raise LatlabError(f"perftest printed no samples: {text.strip()[-300:]!r}")
    return np.round(np.array(values) * 1000).astype(np.int64)


def has_summary(text: str) -> bool:
    """Whether the output holds the summary row (printed once every sample is in)."""
    return any(_SUMMARY.match(line) for line in text.splitlines())


def parse_summary(text: str) -> dict[str, float]:
    """The summary row: bytes, iterations, t_min, t_max, t_typical, t_avg, t_stdev, p99, p99.9 (µs)."""
    names = ("bytes", "iterations", "t_min", "t_max", "t_typical", "t_avg", "t_stdev", "p99", "p99.9")
    for line in reversed(text.splitlines()):
        m = _SUMMARY.match(line)
        if m:
            return {n: float(v) for n, v in zip(names, m.groups(), strict=True)}
    raise LatlabError("perftest printed no summary line")


def argv(test: str, device: str, gid_index: int, size: int, iterations: int, server: str | None) -> list[str]:
    """Server argv when `server` is None, else the client's towards `server`."""
    base = [TOOLS[test], "-d", device, "-x", str(gid_index), "-F", "-s", str(size), "-n", str(iterations), "-H"]
    return base if server is None else [*base, server]
