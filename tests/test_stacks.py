"""The stack matrix on the host's namespace lab: each stack's detect(), bad stack names, and one bench of kernel,
busy-poll, AF_XDP (native and generic) and DPDK asserting the evidence that each stack carried the traffic."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from latlab.errors import ConfigError
from latlab.results import RTT, CaseResult
from toe_bench import plugin, stacks
from toe_bench.stacks.base import Evidence, with_evidence
from toe_bench.stacks.dpdk import parse_forward_stats

from .conftest import NETNS_REASON, REPO, latlab_cmd, started_bench

HOST_STACKS = ("kernel", "busy-poll", "af_xdp", "dpdk")


def test_every_stack_says_whether_it_runs_here_and_why_not():
    found = {name: stacks.get(name).detect() for name in stacks.NAMES}
    assert found["kernel"].available
    for name in ("vma", "xlio"):
        assert not found[name].available and not found[name].applicable
        assert "needs a ConnectX NIC" in found[name].reason
    assert "XLIO also DOCA-Host" in found["xlio"].reason
    assert not found["toe"].available and "Chelsio" in found["toe"].reason
    if NETNS_REASON is None:  # root on this project's machines: the packages are installed by make setup
        for name in HOST_STACKS:
            assert found[name].available, found[name].describe(name)


def test_onload_without_a_source_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("ONLOAD_SRC", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    got = stacks.get("onload").detect()
    assert not got.available
    assert got.describe("onload").startswith("onload: not available: no onload on PATH and ONLOAD_SRC not set")


@pytest.mark.skipif(Path("/proc/modules").exists(), reason="this kernel loads modules: Onload could run here")
def test_onload_source_on_a_kernel_without_modules_points_at_the_vm(monkeypatch, tmp_path):
    monkeypatch.setenv("ONLOAD_SRC", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    got = stacks.get("onload").detect()
    assert not got.available and "cannot load modules" in got.reason and "make bench-stacks" in got.reason


def test_an_onload_case_waits_for_the_last_cases_stacks_and_ends_orphans(monkeypatch, tmp_path):
    """Over AF_XDP a stack created while another still holds the veth cannot attach (its sockets go to the
    kernel): each case first waits for the earlier stacks to go, and kills an orphan that outlives the wait."""
    import threading

    from toe_bench.stacks import onload

    proc = tmp_path / "stacks"
    proc.write_text("3: 812 0 1 2 3\n")
    monkeypatch.setattr(onload, "STACKS", proc)
    monkeypatch.setattr(onload, "SETTLE_S", 5.0)
    stack = onload.OnloadStack()
    threading.Timer(0.5, lambda: proc.write_text("")).start()  # the TIME-WAIT stack goes by itself
    assert stack.settle() == "" and onload.live_stacks() == []

    proc.write_text("3: 812 0 1 2 3\n4: 0 0 1 2 3\n")  # an orphan that does not go
    monkeypatch.setattr(onload, "SETTLE_S", 0.3)
    kills = tmp_path / "kills"
    tool = tmp_path / "bin" / "onload_stackdump"
    tool.parent.mkdir()
    tool.write_text(f"#!/bin/sh\necho \"$@\" >> {kills}\n: > {proc}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}:/usr/bin:/bin")
    note = stack.settle()
    assert kills.read_text().split() == ["-z", "kill"] and onload.live_stacks() == []
    assert note.startswith("2 Onload stack(s) of an earlier case outlived 0 s: `onload_stackdump -z kill`")
    assert "remained" not in note


def test_an_unknown_or_unavailable_stack_is_refused_before_anything_starts():
    with pytest.raises(ConfigError, match=r"pingpong\.stacks: unknown 'sockets'; input should be 'kernel'"):
        plugin.configure({"stacks": ["sockets"]})
    with pytest.raises(ConfigError, match="stacks: vma: not applicable: needs a ConnectX NIC"):
        plugin.configure({"stacks": ["kernel", "vma"]})
    params = plugin.configure({"stacks": ["kernel", "vma"], "skip_unavailable": True})
    cases = plugin.BENCHMARK.cases(params)
    assert cases[0].title == "vma (not available)"
    [row] = cases[0].run(None)
    assert row.role == "skipped" and "needs a ConnectX NIC" in row.note and row.samples_ns is None


def test_the_kernel_is_measured_in_every_receive_mode_another_stack_uses():
    params = plugin.configure({"stacks": ["busy-poll"], "protocols": ["udp"]})
    assert plugin.matrix(params) == [("kernel", "busy-poll"), ("kernel", "blocking"), ("busy-poll", "blocking")]


def test_a_stack_without_evidence_gets_no_figures_under_its_name():
    import numpy as np

    row = CaseResult(group="onload: udp 64B busy-poll", engine="latlab", role="own", metric=RTT, timestamps="t",
                     samples_ns=np.arange(1, 100), send_ns=np.arange(1, 100))
    out = with_evidence(row, Evidence(False, {"stackdump_rx_evs": 0}, "no Onload stack carried it"))
    assert out.samples_ns is None and not out.complete
    assert out.note.startswith("not accelerated: no Onload stack carried it")
    assert out.params["evidence"] == {"holds": False, "stackdump_rx_evs": 0}


def test_the_af_xdp_reflector_answers_udp_to_its_port_and_counts_what_is_not():
    from toe_bench import _afxdp

    payload = b"\x00" * 9 + b"\x03" + b"x" * 6
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                  IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=4000, dport=17001) / payload)
    result, answer = _afxdp.answer(frame, 17001, True)
    back = Ether(bytes(answer))
    assert result == 1
    assert (back.src, back.dst, back[IP].src, back[IP].dst) == ("02:00:00:00:00:02", "02:00:00:00:00:01",
                                                                 "10.0.0.2", "10.0.0.1")
    assert (back[UDP].sport, back[UDP].dport, back[UDP].chksum) == (17001, 4000, 0)
    assert bytes(back[UDP].payload)[9] == 0x02  # sockperf's client flag cleared, the other bits kept
    assert IP(bytes(back[IP])).chksum == Ether(frame)[IP].chksum  # swapping addresses keeps the sum
    assert _afxdp.answer(frame, 17002, True)[0] == 0  # another port: not ours
    assert _afxdp.answer(frame[:30], 17001, True)[0] == -1  # cut inside the IP header: malformed
    assert _afxdp.answer(frame[:12], 17001, True)[0] == 0  # not even an Ethernet header: ignored


def test_testpmd_forward_statistics_are_parsed():
    text = ("  ---------------------- Forward statistics for port 0  ----------------------\n"
            "  RX-packets: 101001         RX-dropped: 0             RX-total: 101001\n"
            "  TX-packets: 101000         TX-dropped: 1             TX-total: 101001\n")
    stats = parse_forward_stats(text)
    assert (stats.rx, stats.rx_dropped, stats.tx, stats.tx_dropped) == (101001, 0, 101000, 1)
    assert parse_forward_stats("EAL: Error - exiting with code: 1") is None


def _leftovers() -> dict[str, object]:
    procs = subprocess.run(["pgrep", "-af", "dpdk-testpmd|toe_bench.afxdp_engine|sockperf"], capture_output=True,
                           text=True).stdout.strip()
    dpdk = sorted(p.name for p in Path("/var/run/dpdk").glob("latlab-*")) if Path("/var/run/dpdk").exists() else []
    xdp = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {"procs": procs, "dpdk": dpdk, "xdp": [line for line in xdp.splitlines() if " xdp" in line]}


def _run_stacks(tmp: Path, **pingpong: object) -> dict:
    section = {"stacks": list(HOST_STACKS), "protocols": ["udp", "tcp"], "sizes": [64, 256], "warmup": 300,
               "count": 100_000, "duration_s": 0.5, "timeout_s": 2.0, "port": 17401, "references": ["sockperf"]}
    section.update(pingpong)
    config = tmp / "stacks.yaml"
    config.write_text(yaml.safe_dump({"lab": {"hosts": {"a": {"address": "10.77.7.1/24", "cpu": 0},
                                                        "b": {"address": "10.77.7.2/24", "cpu": 1}}},
                                      "pingpong": section}))
    busy_read = Path("/proc/sys/net/core/busy_read").read_text()
    out = subprocess.run(latlab_cmd("bench", "--config", str(config), "--results", str(tmp / "r")),
                         capture_output=True, text=True, timeout=400, cwd=REPO, env={**os.environ, "CI": "true"})
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    assert Path("/proc/sys/net/core/busy_read").read_text() == busy_read  # the global knob was put back
    [run] = list((tmp / "r").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    return {"run": run, "summary": summary, "stdout": out.stdout,
            "rows": {(c["group"], c["engine"]): c for c in summary["cases"]}}


@pytest.fixture(scope="module")
def stacks_run(tmp_path_factory):
    if NETNS_REASON:
        pytest.skip(f"netns lab unavailable: {NETNS_REASON}")
    return _run_stacks(tmp_path_factory.mktemp("stacks"))


pytestmark_netns = pytest.mark.skipif(NETNS_REASON is not None, reason=f"netns lab unavailable: {NETNS_REASON}")


@pytestmark_netns
def test_every_host_stack_shows_its_evidence(stacks_run):
    rows, summary = stacks_run["rows"], stacks_run["summary"]
    assert summary["complete"], [c["note"] for c in summary["cases"] if not c["complete"]]
    for proto in ("udp", "tcp"):
        kernel = rows[(f"{proto} 64B busy-poll", "latlab")]
        assert kernel["params"]["evidence"]["server_kernel_rx"] >= kernel["stats_ns"]["count"]
        busy = rows[(f"busy-poll: {proto} 64B blocking", "latlab")]
        ev = busy["params"]["evidence"]
        assert ev["holds"] and ev["busy_poll_rx_packets"]["a"] > 0 and ev["busy_poll_rx_packets"]["b"] > 0
        assert ev["client_napi_id"] and ev["server_napi_id"]
        assert (f"{proto} 64B blocking", "latlab") in rows  # its baseline: the blocking kernel
        assert rows[(f"busy-poll: {proto} 64B blocking", "sockperf")]["params"]["evidence"]["holds"]
    xdp = rows[("af_xdp: udp 64B busy-poll", "latlab af_xdp")]
    ev = xdp["params"]["evidence"]
    assert ev["holds"] and ev["xdp_programs"]["server"]["mode"] == "native"
    assert ev["xdp_programs"]["client"]["name"] == "xsk_def_prog"
    assert ev["reflector_answered"] >= xdp["stats_ns"]["count"] and ev["server_kernel_udp_in"] == 0
    assert ev["client_counters"]["answered"] >= xdp["stats_ns"]["count"]
    assert xdp["params"]["bind"] == "copy"  # veth has no zero-copy
    assert rows[("af_xdp: udp 64B busy-poll", "sockperf")]["params"]["evidence"]["holds"]
    dpdk = rows[("dpdk: udp 64B busy-poll", "latlab")]
    ev = dpdk["params"]["evidence"]
    assert ev["holds"] and ev["testpmd_rx"] >= ev["client_round_trips"] >= dpdk["stats_ns"]["count"]
    assert ev["testpmd_tx"] >= ev["client_round_trips"] and ev["server_kernel_udp_in"] == 0
    assert ("af_xdp: tcp 64B busy-poll", "latlab af_xdp") not in rows  # no TCP over raw AF_XDP


@pytestmark_netns
def test_the_matrix_compares_each_stack_with_the_kernel_in_the_same_mode(stacks_run):
    from latlab.report import matrix_rows

    rows = matrix_rows(stacks_run["summary"]["cases"])
    stacks_seen = {r["stack"] for r in rows}
    assert stacks_seen == set(HOST_STACKS)
    for r in rows:
        if r["stack"] != "kernel":
            assert r["ratio_to_kernel"]["p50"] > 0 and r["evidence"] is True
    assert "stack matrix" in stacks_run["stdout"] and "×kernel p50" in stacks_run["stdout"]


@pytestmark_netns
def test_stacks_leave_nothing_behind(stacks_run):
    assert _leftovers() == {"procs": "", "dpdk": [], "xdp": []}


@pytestmark_netns
def test_af_xdp_in_generic_mode_records_its_mode(tmp_path):
    got = _run_stacks(tmp_path, stacks=["af_xdp"], protocols=["udp"], xdp_mode="generic", references=[])
    row = got["rows"][("af_xdp: udp 64B busy-poll", "latlab af_xdp")]
    assert row["params"]["xdp_mode"] == "generic" and row["params"]["evidence"]["holds"]
    assert row["params"]["evidence"]["xdp_programs"]["server"]["mode"] == "generic"


@pytestmark_netns
def test_the_notebook_draws_one_line_per_stack_against_payload(stacks_run, monkeypatch, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LATLAB_RUN", str(stacks_run["run"]))
    monkeypatch.setenv("LATLAB_PLOTS", str(tmp_path))
    nb = nbformat.read(REPO / "notebooks" / "latency_analysis.ipynb", as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    png = tmp_path / stacks_run["run"].name / "stacks.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "stacks: af_xdp, busy-poll, dpdk, kernel" in text


def test_a_failed_onload_build_keeps_its_log_and_leaves_no_half_build(tmp_path, monkeypatch):
    import tarfile

    from toe_bench import onload_build

    tree = tmp_path / "onload-broken" / "scripts"
    tree.mkdir(parents=True)
    (tree / "onload_build").write_text("#!/bin/sh\necho 'make: *** [driver] Error 2'\nexit 2\n")
    (tree / "onload_build").chmod(0o755)
    (tree.parent / "src/lib/efhw").mkdir(parents=True)
    (tree.parent / "src/lib/efhw/af_xdp.c").write_text("nothing to patch here\n")
    src = tmp_path / "onload.tar.gz"
    with tarfile.open(src, "w:gz") as tar:
        tar.add(tree.parent, arcname="onload-broken")
    monkeypatch.setenv("LATLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(onload_build, "headers_present", lambda kernelver: True)
    log = tmp_path / "run" / "onload-build.log"
    log.parent.mkdir()
    with pytest.raises(onload_build.OnloadBuildError, match="patch exited 1") as err:
        onload_build.build(src, "6.1.0-test", log_to=log)
    assert err.value.log == log and "$ patch -p1" in log.read_text()
    assert onload_build.find_build(src, "6.1.0-test") is None
    leftovers = [p.name for p in (tmp_path / "cache" / "onload").iterdir()]
    assert not any(".building-" in name for name in leftovers), leftovers


@pytestmark_netns
def test_ctrl_c_during_dpdk_stops_testpmd_and_removes_its_files(tmp_path):
    import signal
    import time

    config = tmp_path / "dpdk.yaml"
    config.write_text(yaml.safe_dump({"lab": {"hosts": {"a": {"address": "10.77.6.1/24", "cpu": 0},
                                                        "b": {"address": "10.77.6.2/24", "cpu": 1}}},
                                      "pingpong": {"stacks": ["dpdk"], "protocols": ["udp"], "duration_s": 0.3,
                                                   "warmup": 100, "references": []}}))
    # the kernel baseline runs first; the dpdk case is the last one
    proc, lines, _ = started_bench(config, tmp_path / "r")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _leftovers()["procs"].count("dpdk-testpmd"):
            time.sleep(0.05)
        assert "dpdk-testpmd" in _leftovers()["procs"], "".join(lines)[-2000:]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(lines)[-2000:]
    assert _leftovers() == {"procs": "", "dpdk": [], "xdp": []}
