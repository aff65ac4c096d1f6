"""The report people read: fits 80/100/200 columns, grouped by benchmark with headlines, warnings first, notes as
footnotes whose marks are never cut, percentiles the sample count cannot resolve left blank; JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from latlab import compact
from latlab.results import RTT, CaseResult
from latlab.runrecord import RunRecord

LONG_NOTE = ("evidence: server kernel rx +0, xsk rx +50,000; a long note that says which counters moved and why the "
             "figures belong to this stack")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run with a stack matrix, a drifting case, a mean-only reference, a missing tool and a small case."""
    rec = RunRecord.create(tmp_path_factory.mktemp("compact"))
    rec.write_json("manifest.json", {"latlab_version": "0.1.0", "hostprep": {"checks": [
        {"name": "cpu governor", "status": "not ready"}, {"name": "irqbalance", "status": "not ready"},
        {"name": "thp", "status": "ready"}]}})
    rng = np.random.default_rng(1)

    def lat(n: int, scale: float = 1.0, drift: float = 0.0) -> np.ndarray:
        v = scale * (3000 + rng.lognormal(6, 0.5, n))
        return (v * (1 + drift * np.linspace(0, 1, n))).astype(np.int64)

    for stack, scale in (("kernel", 1.0), ("busy-poll", 1.0), ("af_xdp", 0.7)):
        group = "udp 64B busy-poll" if stack == "kernel" else f"{stack}: udp 64B busy-poll"
        for engine, role in (("latlab", "own"), ("sockperf", "reference")):
            own = engine == "latlab"
            rec.add(CaseResult(
                group=group, engine=engine, role=role, metric=RTT, timestamps="t",
                samples_ns=lat(50_000, scale, 0.6 if stack == "busy-poll" and own else 0.0),
                send_ns=np.arange(50_000, dtype=np.int64) * 20_000,
                params={"stack": stack, "proto": "udp", "size": 64, "receive": "busy-poll",
                        "evidence": {"holds": True}} if own else {},
                note=LONG_NOTE if stack == "af_xdp" and own else ""), 100_000_000, benchmark="pingpong")
    rec.add(CaseResult(group="udp 64B busy-poll", engine="qperf", role="reference", metric=RTT, timestamps="t",
                       mean_only_ns=5100.0, note="mean only"), 100_000_000, benchmark="pingpong")
    rec.add(CaseResult(group="udp 64B busy-poll", engine="sockperf tcp", role="reference", metric=RTT,
                       timestamps="t", complete=False, note="sockperf not installed: `make setup`"), 100_000_000,
            benchmark="pingpong")
    rec.add(CaseResult(group="tick-to-trade OUCH (busy-poll)", engine="latlab trader (c)", role="own",
                       metric="wire-to-wire", timestamps="t", samples_ns=lat(500, 5.0),
                       figures={"app cost p50 µs": 1.58, "app cost p50 95% CI low µs": 0.42,
                                "app cost p50 95% CI high µs": 2.64}), 100_000_000, benchmark="tick_to_trade")
    rec.finish(complete=True)
    return rec.dir


def _report(run: Path, columns: int, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "latlab.cli", "report", str(run), *args], capture_output=True,
                         text=True, env={**os.environ, "COLUMNS": str(columns)})
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_the_report_fits_the_terminal_and_keeps_every_footnote_mark(run, columns):
    text = _report(run, columns)
    assert max(len(line) for line in text.splitlines()) <= columns
    marks = {m for m in ("[1]", "[2]", "[3]", "[4]") if m in text.split("\nnotes\n")[0]}
    assert marks == {m for m in ("[1]", "[2]", "[3]", "[4]") if f"\n{m} " in text}  # each mark has its note
    if columns == 200:
        assert "latlab trader (c)" in text  # wide enough: no name cut


def test_grouped_by_benchmark_with_headlines_and_warnings_first(run):
    text = _report(run, 100)
    head, _, rest = text.partition("\n\n")
    assert "host not ready: 2 of 3 checks (cpu governor, irqbalance)" in head
    assert "busy-poll: udp 64B busy-poll latlab: unstable:" in head
    assert "reference tool missing: sockperf not installed" in " ".join(head.split())
    assert "too few samples for some percentiles" in " ".join(head.split())
    assert rest.index("pingpong (µs)") < rest.index("tick_to_trade")
    assert "= p50 × kernel (same receive mode, best size): af_xdp 0.70" in rest
    assert "= application cost p50 1.58 µs [95 % 0.42, 2.64]" in rest
    assert "stack matrix" in rest and "~5.10" in rest  # the mean-only reference, marked as such


def test_percentiles_the_count_cannot_resolve_are_blank():
    assert compact.resolvable("p99.9", 1_000) and not compact.resolvable("p99.9", 999)
    assert not compact.resolvable("p99.99", 9_999) and compact.resolvable("p99", 100)


def test_json_rows_follow_their_schema_and_csv_reads_back(run):
    rows = json.loads(_report(run, 100, "--json"))
    number = {"type": ["number", "null"]}
    schema = {"type": "array", "minItems": 1, "items": {
        "type": "object", "additionalProperties": False,
        "required": ["run_id", "benchmark", "group", "engine", "role", "metric", "count", "p50_us", "p99_us",
                     "p99.9_us", "max_us", "mean_us", "reference", "ratio_p50", "complete", "note", "figures"],
        "properties": {"run_id": {"type": "string"}, "benchmark": {"type": "string"}, "group": {"type": "string"},
                       "engine": {"type": "string"}, "role": {"type": "string"}, "metric": {"type": "string"},
                       "count": {"type": "integer", "minimum": 0}, "p50_us": number, "p99_us": number,
                       "p99.9_us": number, "max_us": number, "mean_us": number,
                       "reference": {"type": ["string", "null"]}, "ratio_p50": number,
                       "complete": {"type": "boolean"}, "note": {"type": "string"}, "figures": {"type": "object"}}}}
    jsonschema.validate(rows, schema)
    trader = next(r for r in rows if r["engine"] == "latlab trader (c)")
    assert trader["count"] == 500 and trader["p99_us"] is not None and trader["p99.9_us"] is None
    af_xdp = next(r for r in rows if r["group"].startswith("af_xdp") and r["engine"] == "latlab")
    assert af_xdp["reference"] == "sockperf" and 0.9 < af_xdp["ratio_p50"] < 1.1
    table = list(csv.DictReader(io.StringIO(_report(run, 100, "--csv"))))
    assert len(table) == len(rows) and table[0]["benchmark"] == "pingpong"

