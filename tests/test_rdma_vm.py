"""The RDMA path end to end on soft-RoCE: boots the VM (no RDMA device here), runs the four verbs tests in the
compiled and the pyverbs engines, the compiled client against a pyverbs server, perftest, and a fault check."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from latlab import vm
from rdma import devices

from .conftest import REPO, latlab_cmd

REASON = None if devices.devices() else vm.unavailable_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=f"no RDMA device and no VM: {REASON}")]
ITERATIONS = 300
SEGMENTS = 2


@pytest.fixture(scope="module")
def rdma_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rdma")
    config = tmp / "rdma.yaml"
    # rxe's loopback (one device): this test holds the verbs engines, pyverbs, rdma_cm and the fault check; the
    # wire path (a device per veth end) is held by test_stack_vm.py
    # two segments: latlab's compiled engine and perftest alternate test by test (ABBA), each side pooled
    config.write_text(yaml.safe_dump({"rdma": {"iterations": ITERATIONS, "warmup": 30, "fault_check": True,
                                               "vm_timeout_s": 330, "path": "loopback", "segments": SEGMENTS}}))
    out = subprocess.run(latlab_cmd("bench", "--config", str(config), "--results", str(tmp / "r")),
                         capture_output=True, text=True, cwd=REPO, timeout=400, env={**os.environ, "CI": "true"})
    assert out.returncode == 0, out.stderr[-2000:]
    [run] = list((tmp / "r").iterdir())
    return run, json.loads((run / "summary.json").read_text()), out.stdout


def test_all_four_verbs_tests_complete_with_payloads_checked(rdma_run):
    run, summary, _ = rdma_run
    rows = {(c["group"], c["engine"]): c for c in summary["cases"]}
    for test in ("send", "write", "read", "ud"):
        for engine in ("latlab", "latlab pyverbs"):
            row = rows[(f"rdma {test} 64B", engine)]
            assert row["complete"], row["note"]
            assert row["figures"]["completions"] == ITERATIONS
            assert row["stats_ns"]["count"] == ITERATIONS
            assert row["params"]["payload_checked"] is True
            segmented = engine == "latlab" and test != "ud"  # the compiled engine beside a perftest tool
            assert row["params"]["segments"] == (SEGMENTS if segmented else 1)
            if test != "read":  # the server answered every ping, each segment's warmup too
                assert row["figures"]["answered"] == ITERATIONS + 30 * (SEGMENTS if segmented else 1)
            assert (run / row["files"]["hgrm"]).exists() and (run / row["files"]["hlog"]).exists()
        assert "compiled client vs pyverbs server: ok" in rows[(f"rdma {test} 64B", "latlab")]["note"]


def test_rdma_cm_connection_setup(rdma_run):
    _, summary, _ = rdma_run
    row = next(c for c in summary["cases"] if c["engine"] == "latlab pyverbs rdma_cm")
    assert row["group"] == "rdma send 64B" and row["complete"], row["note"]
    assert row["figures"]["completions"] == ITERATIONS and row["figures"]["answered"] == ITERATIONS + 30


def test_perftest_runs_on_the_same_device_and_ratios_are_computed(rdma_run):
    run, summary, stdout = rdma_run
    rows = {(c["group"], c["engine"]): c for c in summary["cases"]}
    for test, tool in (("send", "ib_send_lat"), ("write", "ib_write_lat"), ("read", "ib_read_lat")):
        row = rows[(f"rdma {test} 64B", tool)]
        assert row["complete"] and row["stats_ns"]["count"] >= ITERATIONS - 5 * SEGMENTS
        assert row["params"]["segments"] == SEGMENTS and len(row["params"]["perftest_summary_us"]) == SEGMENTS
        assert f"{SEGMENTS} segments alternating with latlab" in row["note"]
        assert ("RTT/2" in row["timestamps"]) == (test != "read")
        assert re.search(rf"latlab +[0-9.]+ .* [0-9.]+ {tool}", stdout)  # its ratio, on latlab's line
        # both time their samples with the TSC, each calibrated its own way: a clock off by a factor would show
        ratio = rows[(f"rdma {test} 64B", "latlab")]["stats_ns"]["p50"] / row["stats_ns"]["p50"]
        assert 0.5 < ratio < 2, f"latlab ÷ {tool} at p50 = {ratio:.2f}"
    own = rows[("rdma send 64B", "latlab")]
    assert "TCG VM" in own["params"]["transport"] and vm.KERNEL_VERSION in own["params"]["transport"]
    assert any(name.endswith("console.log") for name in os.listdir(run))


def test_completion_errors_name_the_status_and_the_work_request(rdma_run):
    _, summary, _ = rdma_run
    faults = [c for c in summary["cases"] if c["group"].startswith("rdma fault check")]
    assert {c["engine"] for c in faults} == {"latlab c", "latlab python"}
    for row in faults:
        assert row["complete"], row["note"]
        client, _, server = row["note"].partition("; server: ")
        assert "remote access error" in client and "status 10" in client and "pong 0" in client
        assert "the peer aborted" in server  # the server was told, stopped waiting, and released its resources


def test_the_manifest_and_each_case_describe_the_path_the_rdma_run_really_took(rdma_run):
    run, summary, _ = rdma_run
    manifest = json.loads((run / "manifest.json").read_text())
    # no benchmark of this run used the core's a/b veth lab: the manifest does not describe one
    assert manifest["lab"]["hosts"] == {} and manifest["lab"]["used_by"] == [] and manifest["nic"] == {}
    for case in summary["cases"]:
        path = case["path"]
        assert path["vm"]["kernel"] == vm.KERNEL_VERSION and "TCG" in path["vm"]["accelerator"]
        assert path["kernel"] == vm.KERNEL_VERSION  # what the guest itself reported
        assert path["rdma_devices"]["client"] == path["rdma_devices"]["server"]  # loopback: one rxe device
        assert path["netdevs"]["client"] and "never crosses the veth" in path["path"]
