"""latlab's engine and sockperf alternating in segments: the ABBA order, the ports, and the pooled rows."""

from __future__ import annotations

import numpy as np

from latlab.abba import segment_order
from latlab.bench import plan
from latlab.results import RTT, CaseResult
from toe_bench.interleave import InterleavedCase, pool
from toe_bench.plugin import StackCase

GOOD = {"lab": {"hosts": {"a": {"address": "10.77.0.1/24", "cpu": 0}, "b": {"address": "10.77.0.2/24"}}},
        "pingpong": {"sizes": [64], "protocols": ["udp", "tcp"], "references": ["sockperf"], "duration_s": 4,
                     "segments": 4, "port": 17001}}


def _row(engine: str, samples: list[int] | None, *, complete: bool = True, note: str = "",
         holds: bool = True) -> CaseResult:
    arr = None if samples is None else np.array(samples, dtype=np.int64)
    return CaseResult(group="udp 64B busy-poll", engine=engine, role="own", metric=RTT, timestamps="t",
                      samples_ns=arr, send_ns=None if arr is None else arr * 10, complete=complete, note=note,
                      warmup=5, params={"stack": "kernel", "evidence": {"holds": holds, "rx": len(samples or [])}})


def test_segments_alternate_abba():
    assert [segment_order(["latlab", "sockperf"], k) for k in range(4)] == [
        ["latlab", "sockperf"], ["sockperf", "latlab"], ["sockperf", "latlab"], ["latlab", "sockperf"]]


def test_the_plan_makes_one_case_per_cell_with_a_port_per_engine_and_segment():
    [(bench, params)] = plan(GOOD).benchmarks
    cases = bench.cases(params)
    assert [type(c) for c in cases] == [InterleavedCase, InterleavedCase]
    udp, tcp = cases
    ports = {udp._case(e, k).spec.port for e in udp.engines for k in range(4)}
    assert ports == set(range(17001, 17009)) and tcp.spec.port == 17009
    segment = udp._case("latlab", 2)
    assert segment.params.duration_s == 1 and segment.params.count == params.count // 4
    assert isinstance(segment, StackCase) and segment.engine == "latlab"


def test_one_segment_is_the_plain_matrix():
    cfg = {**GOOD, "pingpong": {**GOOD["pingpong"], "segments": 1}}
    [(bench, params)] = plan(cfg).benchmarks
    assert [type(c) for c in bench.cases(params)] == [StackCase] * 4


def test_pool_keeps_time_order_and_every_segments_evidence():
    rows = [_row("latlab", [1, 2], note="evidence: ok"), _row("latlab", [3]), _row("latlab", [4, 5])]
    pooled = pool(rows, ["sockperf"])
    assert pooled.samples_ns.tolist() == [1, 2, 3, 4, 5] and pooled.send_ns.tolist() == [10, 20, 30, 40, 50]
    assert pooled.complete and pooled.warmup == 15 and pooled.params["segments"] == 3
    assert pooled.params["evidence"]["holds"] and len(pooled.params["evidence"]["segments"]) == 3
    assert pooled.note.startswith("3 segments alternating with sockperf (ABBA), pooled; evidence: ok")


def test_a_segment_without_figures_voids_the_pooled_row_and_says_which():
    rows = [_row("latlab", [1]), _row("latlab", None, complete=False, note="failed: sockperf exited 1")]
    pooled = pool(rows, ["sockperf"])
    assert pooled.samples_ns is None and not pooled.complete
    assert pooled.note == "segment 2 of 2: failed: sockperf exited 1"


def test_an_incomplete_segment_makes_the_pooled_row_incomplete():
    rows = [_row("latlab", [1]), _row("latlab", [2], complete=False, note="incomplete: timeout")]
    pooled = pool(rows, ["sockperf"])
    assert not pooled.complete and "segment 2: incomplete: timeout" in pooled.note
    assert pooled.samples_ns.tolist() == [1, 2]


def test_failed_evidence_in_one_segment_fails_the_pooled_evidence():
    pooled = pool([_row("latlab", [1]), _row("latlab", [2], holds=False)], ["sockperf"])
    assert pooled.params["evidence"]["holds"] is False
