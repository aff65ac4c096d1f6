"""The stack matrix in one boot of the lab VM: kernel, busy-poll, AF_XDP, DPDK, Onload (from ONLOAD_SRC) and RDMA
across the veth (an rxe device per end, created directly: the VM's kernel has rdma_rxe), each row with its
evidence. A short version of `make bench-stacks`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from latlab import vm

from .conftest import REPO, latlab_cmd

REASON = vm.unavailable_reason()
# One VM boot runs every stack (about 5-8 min under TCG); Onload was built by `make onload-vm` beforehand.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1600),
              pytest.mark.skipif(REASON is not None, reason=f"no lab VM: {REASON}")]
ONLOAD_SRC = os.environ.get("ONLOAD_SRC")


@pytest.fixture(scope="module")
def vm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stackvm")
    config = yaml.safe_load((REPO / "configs" / "stacks-vm.yaml").read_text())
    config["pingpong"].update({"protocols": ["udp", "tcp"], "duration_s": 1, "warmup": 500, "timeout_s": 5})
    config["rdma"].update({"tests": ["send", "write"], "iterations": 500, "warmup": 50})
    path = tmp / "stacks.yaml"
    path.write_text(yaml.safe_dump(config))
    out = subprocess.run(latlab_cmd("bench", "--vm", "--config", str(path), "--results", str(tmp / "r"),
                                    "--vm-timeout", "1200"),
                         capture_output=True, text=True, cwd=REPO, timeout=1500, env={**os.environ, "CI": "true"})
    runs = list((tmp / "r").iterdir())
    assert len(runs) == 1, out.stderr[-3000:]
    summary = json.loads((runs[0] / "summary.json").read_text())
    return {"run": runs[0], "summary": summary, "code": out.returncode, "stdout": out.stdout, "stderr": out.stderr,
            "rows": {(c["group"], c["engine"]): c for c in summary["cases"]}}


def _evidence(row: dict) -> dict:
    assert row["complete"], row["note"]
    ev = row["params"]["evidence"]
    assert ev["holds"], row["note"]
    return ev


def test_the_vm_run_is_complete_and_describes_the_vms_kernel(vm_run):
    assert vm_run["code"] == 0, vm_run["stderr"][-3000:]
    assert vm_run["summary"]["complete"], [c["note"] for c in vm_run["summary"]["cases"] if not c["complete"]]
    manifest = json.loads((vm_run["run"] / "manifest.json").read_text())
    assert manifest["host"]["kernel"] == vm.KERNEL_VERSION
    console = (vm_run["run"] / "vm-console.log").read_text()
    assert "stack matrix" in console and "results: " in console  # the guest's own report, kept


def test_every_socket_stack_carries_its_traffic_in_the_vm(vm_run):
    rows = vm_run["rows"]
    assert _evidence(rows[("udp 64B busy-poll", "latlab")])["server_kernel_rx"] > 0
    assert _evidence(rows[("busy-poll: udp 64B blocking", "latlab")])["busy_poll_rx_packets"]["b"] > 0
    assert _evidence(rows[("af_xdp: udp 64B busy-poll", "latlab af_xdp")])["server_kernel_udp_in"] == 0
    assert _evidence(rows[("dpdk: udp 64B busy-poll", "latlab")])["testpmd_rx"] > 0


@pytest.mark.skipif(not ONLOAD_SRC, reason="ONLOAD_SRC not set: no Onload source to build (.ci/run sets it)")
def test_onload_from_source_carries_the_traffic_not_the_kernel(vm_run):
    for proto in ("udp", "tcp"):
        p50 = {}
        for engine in ("latlab", "sockperf"):
            row = vm_run["rows"][(f"onload: {proto} 64B busy-poll", engine)]
            ev = _evidence(row)
            n = row["stats_ns"]["count"]
            # neither end's kernel: a client whose connect Onload handed to the kernel is not an Onload row
            assert ev["server_kernel_in"] <= n // 100 and ev["client_kernel_in"] <= n // 100
            assert ev["stackdump_rx_evs"] >= (n if proto == "udp" else 1)  # TCP: a dump while it ran
            assert "scripts/onload --profile=latency" in row["params"]["launcher"]
            dump = (vm_run["run"] / row["files"][f"onload-{proto}-64-{engine}-stackdump.txt"]).read_text()
            assert "rx_evs" in dump and "server: onload_stackdump --nolock filters" in dump  # the evidence's source
            p50[engine] = row["stats_ns"]["p50"]
        # same stack, same path: the two tools agree within noise (a handed-over sockperf client took 46 ms)
        assert 0.5 < p50["latlab"] / p50["sockperf"] < 2, p50


def test_rdma_crosses_the_veth_between_two_rxe_devices(vm_run):
    rows = vm_run["rows"]
    for test, tool in (("send", "ib_send_lat"), ("write", "ib_write_lat")):
        for engine in ("latlab", tool):
            row = rows[(f"rdma {test} 64B", engine)]
            ev = _evidence(row)
            assert ev["path"] == "wire" and ev["rxb_rx_packets"] >= ev["rxa_tx_packets"] >= 500
            assert "crossed the veth" in row["note"]
        own = rows[(f"rdma {test} 64B", "latlab")]
        assert (own["params"]["device"], own["params"]["server_device"]) == ("rxe0", "rxe1")
        assert own["params"]["transport"].startswith("soft-RoCE (rxe) on this host")  # no VM inside the VM
        # the path the case records is its own (rxe on rxa/rxb in the VM's kernel), not the a/b lab's veth
        path = own["path"]
        assert path["kernel"] == vm.KERNEL_VERSION and path["rdma_devices"] == {"client": "rxe0", "server": "rxe1"}
        assert path["netdevs"] == {"client": "rxa", "server": "rxb"} and "crosses the veth" in path["path"]
    socket_row = rows[("udp 64B busy-poll", "latlab")]
    assert set(socket_row["path"]["hosts"]) == {"a", "b"}  # the socket stacks did run on the a/b lab
    manifest = json.loads((vm_run["run"] / "manifest.json").read_text())
    assert manifest["lab"]["used_by"] == ["pingpong"]


def test_the_vm_matrix_has_six_stacks(vm_run):
    from latlab.report import matrix_rows

    stacks = {r["stack"] for r in matrix_rows(vm_run["summary"]["cases"]) if r["stats_ns"].get("count")}
    want = {"kernel", "busy-poll", "af_xdp", "dpdk", "rdma"} | ({"onload"} if ONLOAD_SRC else set())
    assert want <= stacks
    assert "stack matrix" in vm_run["stdout"]
