"""sockperf and qperf: real runs on loopback parsed into samples; parsers on crafted and damaged output."""

from __future__ import annotations

import numpy as np
import pytest

from latlab.reference import qperf, sockperf
from latlab.topology import LabHost

from .conftest import needs_qperf, needs_sockperf

LOOP_A = LabHost(name="a", address="127.0.0.1", cpu=0)
LOOP_B = LabHost(name="b", address="127.0.0.1", cpu=1)


def test_full_log_parser_takes_rows_and_counts_damaged_ones(tmp_path):
    log = tmp_path / "full.csv"
    log.write_text("\n".join([
        "------------------------------",
        "sockperf: ---> percentile 50.000 =    4.337",
        "packet, txTime(sec), rxTime(sec), latency(usec)",
        "0, 2.422741123, 2.422751422, 5.149",
        "1, 2.5, 2.500000010, 0.005",
        "2, 3.000000000, 0.000000000, 0.000",   # unanswered
        "3, garbage",
        "4, 2.x, 2.y, 1",
        "------------------------------",
    ]) + "\n")
    full = sockperf.parse_full_log(log)
    assert full.rtt_ns.tolist() == [10_299, 10]
    assert full.send_ns.tolist() == [2_422_741_123, 2_500_000_000]
    assert full.malformed == 3


def test_summary_parser():
    text = ("sockperf: [Valid Duration] RunTime=0.550 sec; SentMessages=51331; ReceivedMessages=51330\n"
            "sockperf: # dropped messages = 1; # duplicated messages = 0; # out-of-order messages = 0\n"
            "sockperf: ---> <MAX> observation = 2327.012\n"
            "sockperf: ---> percentile 99.990 =  316.543\nsockperf: ---> percentile 50.000 =    5.054\n"
            "sockperf: ---> <MIN> observation =    3.942\n")
    out = sockperf.parse_summary(text)
    assert out == {"p99.99": 316.543, "p50": 5.054, "max": 2327.012, "min": 3.942, "sent": 51331.0,
                   "received": 51330.0, "dropped": 1.0, "duplicated": 0.0, "out_of_order": 0.0}


@pytest.mark.parametrize(("text", "ns"), [("udp_lat:\n    latency  =  52.7 us\n", 52_700.0),
                                          ("tcp_lat:\n    latency   =  890 ns\n", 890.0),
                                          ("latency = 1.5 ms", 1_500_000.0)])
def test_qperf_parser(text, ns):
    assert qperf.parse_latency_ns(text) == pytest.approx(ns)


def test_qperf_parser_rejects_output_without_a_figure():
    from latlab.errors import LatlabError

    with pytest.raises(LatlabError, match="no latency"):
        qperf.parse_latency_ns("qperf: failed to connect\n")


@needs_sockperf
@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_real_sockperf_full_log_agrees_with_its_own_summary(tmp_path, proto):
    full, summary, complete = sockperf.pingpong(client=LOOP_A, server=LOOP_B, proto=proto, size=64, busy=True,
                                                duration_s=1, port=18411, workdir=tmp_path, tag=proto)
    assert complete and full.malformed == 0
    assert len(full.rtt_ns) == summary["received"]
    # sockperf's printed percentiles are RTT/2 in µs; the log's RTT/2 must give the same median.
    half_rtt_p50_us = np.percentile(full.rtt_ns, 50) / 2 / 1000
    assert half_rtt_p50_us == pytest.approx(summary["p50"], rel=0.02)


@needs_qperf
def test_real_qperf_reports_a_latency(tmp_path):
    half = qperf.latency(client=LOOP_A, server=LOOP_B, proto="udp", size=64, duration_s=1, port=18412,
                         workdir=tmp_path, tag="q")
    assert 100 < half < 10_000_000
