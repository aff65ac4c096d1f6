"""Multicast across namespace hosts on a bridge: fan-out, recovery under injected loss, the bench case."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess

import numpy as np
import pytest
import yaml

from latlab.topology import BridgeSpec, bridge_lab
from udp_multicast.feedrun import FeedSpec, run_feed
from udp_multicast.sources import open_source, stream_digest

from .conftest import REPO, latlab_cmd, needs_netns

pytestmark = needs_netns


@pytest.fixture(scope="module")
def mlab():
    spec = BridgeSpec(ipaddress.IPv4Network("10.78.5.0/24"), ("pub", "s1", "s2", "s3"), {})
    tag = secrets.token_hex(3)
    with bridge_lab(spec, tag) as lab:
        yield lab
    assert not any(tag in n for n in os.listdir("/run/netns"))


def _check_identical(run, n: int) -> None:
    want = stream_digest(open_source("synthetic:40", n), n)
    assert run.publisher.messages == n and run.publisher.sha256
    for sub in run.subscribers:
        assert sub.summary.complete, sub.summary
        assert sub.summary.delivered == n
        assert sub.summary.sha256 == want, f"{sub.name} delivered other bytes"


@pytest.mark.parametrize("engine", ["c", "python"])
def test_fan_out_to_three_subscribers(mlab, tmp_path, engine):
    """Both engines (compiled publisher loop and subscriber path; the Python reference) deliver the same bytes."""
    run = run_feed(mlab, FeedSpec(messages=30_000, rate=30_000, engine=engine), tmp_path, f"fan{engine}")
    _check_identical(run, 30_000)
    assert run.publisher.engine == engine
    assert all(s.summary.engine == engine for s in run.subscribers)
    for sub in run.subscribers:
        assert sub.summary.live_messages == 30_000 and sub.summary.gaps == 0
        assert len(sub.latency_ns) == 30_000 and (sub.latency_ns > 0).all()
        assert (sub.corrected_ns >= sub.latency_ns - 1_000).all()  # intended send ≤ actual send (1 µs slack)
        assert len(sub.kernel_ns) > 0


@pytest.mark.parametrize(("percent", "engine"), [(1.0, "c"), (10.0, "c"), (10.0, "python")])
def test_recovery_under_injected_loss_is_byte_identical(mlab, tmp_path, percent, engine):
    n = 20_000
    run = run_feed(mlab, FeedSpec(messages=n, rate=20_000, loss_percent={"s2": percent, "s3": percent},
                                  engine=engine), tmp_path, f"loss{int(percent)}{engine}")
    _check_identical(run, n)
    for sub in run.subscribers[1:]:
        assert sub.injected_drops > 0, "nftables dropped nothing"
        assert sub.summary.live_messages < n and sub.summary.delivered_from_retransmission > 0
        assert sub.summary.gaps > 0 and len(sub.recovery_ns) > 0
    assert run.subscribers[0].summary.live_messages == n
    assert run.rerequest.answered > 0
    tables = subprocess.run(mlab.hosts["s2"].command(["nft", "list", "tables"]), capture_output=True, text=True)
    assert "latlab_loss" not in tables.stdout, "the loss table is removed after the run"


def test_compiled_publisher_packs_like_the_reference(mlab, tmp_path):
    """As fast as it can, each engine fills every packet (34 × 42-byte blocks in 1,472 B) but the last."""
    n, per = 10_000, (1472 - 20) // 42
    for engine in ("c", "python"):
        run = run_feed(mlab, FeedSpec(messages=n, rate=0, engine=engine), tmp_path, f"pack{engine}")
        _check_identical(run, n)
        records = np.load(tmp_path / f"pub-pack{engine}.npz")
        assert records["count"][:-1].tolist() == [per] * (n // per) and records["count"][-1] == n % per
        assert (np.diff(records["first_seq"]) == per).all() and (np.diff(records["send_mono_ns"]) >= 0).all()


def test_end_of_session_when_the_tail_is_lost(mlab, tmp_path):
    """Heavy loss on a short feed: the last messages are often lost too and come back by re-request."""
    run = run_feed(mlab, FeedSpec(messages=500, rate=5_000, loss_percent={"s1": 30.0}), tmp_path, "tail")
    _check_identical(run, 500)


def test_conflated_mode_measures_staleness(mlab, tmp_path):
    run = run_feed(mlab, FeedSpec(messages=10_000, rate=20_000, mode="conflated", packet_rate=300, instruments=40),
                   tmp_path, "conf")
    assert run.publisher.messages < run.publisher.updates  # conflation sends fewer states than updates
    for sub in run.subscribers:
        assert sub.summary.complete and len(sub.staleness_ns) == run.publisher.messages
        assert (sub.staleness_ns > 0).all()


def test_bench_multicast_case_reports_sweep_reference_and_staleness(tmp_path):
    config = tmp_path / "mc.yaml"
    config.write_text(yaml.safe_dump({
        "lab": {"hosts": {"a": {"address": "10.77.7.1/24"}, "b": {"address": "10.77.7.2/24"}}},
        "multicast": {"subscribers": 3, "network": "10.78.6.0/24", "sweep_rates": [20_000, 60_000],
                      "step_seconds": 0.3, "conflated_packet_rate": 500}}))
    out = subprocess.run(latlab_cmd("bench", "--config", str(config), "--results", str(tmp_path / "r")),
                         capture_output=True, text=True, cwd=REPO, timeout=300, env={**os.environ, "CI": "true"})
    assert out.returncode == 0, out.stderr
    [run] = list((tmp_path / "r").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    engines = {(c["group"], c["engine"]): c for c in summary["cases"]}
    assert ("mcast sweep", "latlab 20,000/s") in engines
    subs = [c for (g, e), c in engines.items() if e.startswith("latlab sub")]
    assert len(subs) == 3 and all(c["metric"] == "one-way" and c["stats_ns"]["count"] > 0 for c in subs)
    assert all("corrected" in c for c in subs)
    top = [c for (g, e), c in engines.items() if g == "mcast top rate"]
    assert {c["engine"] for c in top} == {"latlab publisher", "sockperf throughput"}
    assert any(c["metric"] == "staleness" and c["stats_ns"]["count"] > 0 for c in summary["cases"])
    assert "latlab/sockperf pkt/s" in " ".join(out.stdout.split())  # the figure's footnote, however wrapped
    assert "= publisher top rate" in out.stdout  # the multicast headline
    # multicast builds its own bridge: no a/b veth lab was built for it, and each case names the bridge
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["lab"]["hosts"] == {} and manifest["lab"]["used_by"] == []
    assert all(c["path"]["kind"] == "4 netns hosts on a Linux bridge" for c in summary["cases"])
    assert {"pub", "sub1", "sub2", "sub3"} <= set(summary["cases"][0]["path"]["hosts"])
