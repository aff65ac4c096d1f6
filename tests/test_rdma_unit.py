"""RDMA pieces that need no device: GID choice and its errors, perftest parsing, and skipping with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latlab import vm
from latlab.errors import LatlabError
from rdma import devices, perftest


def fake_sysfs(root: Path) -> Path:
    port = root / "rxe0" / "ports" / "1"
    table = {0: ("fe80:0000:0000:0000:0201:02ff:fe03:0405", "IB/RoCE v1", "v0"),
             1: ("0000:0000:0000:0000:0000:ffff:0a09:0001", "RoCE v2", "v0"),
             2: ("0000:0000:0000:0000:0000:ffff:0a08:0001", "RoCE v2", "v9"),
             3: ("0000:0000:0000:0000:0000:0000:0000:0000", "", "")}
    for sub in ("gids", "gid_attrs/types", "gid_attrs/ndevs"):
        (port / sub).mkdir(parents=True)
    for i, (gid, kind, ndev) in table.items():
        (port / "gids" / str(i)).write_text(gid + "\n")
        (port / "gid_attrs" / "types" / str(i)).write_text(kind + "\n")
        (port / "gid_attrs" / "ndevs" / str(i)).write_text(ndev + "\n")
    return root


def test_the_rocev2_ipv4_gid_is_found(tmp_path):
    root = fake_sysfs(tmp_path)
    g = devices.pick_gid("rxe0", root=root)
    assert (g.index, g.ipv4, g.type) == (1, "10.9.0.1", "RoCE v2")
    assert devices.pick_gid("rxe0", netdev="v9", root=root).index == 2
    assert devices.pick_gid("rxe0", index=0, root=root).type == "IB/RoCE v1"
    assert [x.index for x in devices.gids("rxe0", root)] == [0, 1, 2]  # the empty GID is left out


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"device": "mlx5_9"}, "no RDMA device 'mlx5_9'"),
    ({"device": "rxe0", "port": 2}, "no GIDs on port 2"),
    ({"device": "rxe0", "index": 7}, "no GID index 7"),
    ({"device": "rxe0", "netdev": "eth5"}, "no RoCE v2 IPv4 GID on eth5"),
])
def test_a_wrong_device_port_or_gid_lists_what_exists(tmp_path, kwargs, needle):
    root = fake_sysfs(tmp_path)
    with pytest.raises(LatlabError) as err:
        devices.pick_gid(root=root, **kwargs)
    text = str(err.value)
    assert needle in text
    assert "rxe0" in text and "gid 1: 0000:0000:0000:0000:0000:ffff:0a09:0001 RoCE v2 v0" in text


PERFTEST = """
 #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]  (header, cut)
#, usec
1, 38.9072
2, 38.9524
3, 310.642
---------------------------------------------------------------------------------------
 #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]  (header, cut)
 2       300          38.91          335.45       40.59    	       48.19       	35.80  		298.16  		335.45
"""


def test_perftest_raw_samples_and_summary():
    assert perftest.parse_raw(PERFTEST).tolist() == [38907, 38952, 310642]
    summary = perftest.parse_summary(PERFTEST)
    assert summary["t_typical"] == 40.59 and summary["p99.9"] == 335.45 and summary["iterations"] == 300
    with pytest.raises(LatlabError, match="no samples"):
        perftest.parse_raw("Couldn't connect to 10.9.0.1:18515\n")
    assert perftest.argv("read", "rxe0", 1, 64, 100, "10.9.0.1")[0] == "ib_read_lat"


def test_a_perftest_run_with_inf_samples_is_refused_not_thinned():
    with pytest.raises(LatlabError, match="2 of 3 samples as inf/nan"):
        perftest.parse_raw("1, 2.5\n2, inf\n3, inf\n")
    assert perftest.has_summary(PERFTEST) and not perftest.has_summary("1, 2.5\n")


def test_a_perftest_side_that_hangs_after_its_summary_is_killed_and_its_result_kept(monkeypatch):
    """Under TCG, rxe's teardown sometimes never returns after perftest printed everything: the side is
    killed TEARDOWN_GRACE_S after its summary and says so; one with no summary by the timeout is a failure."""
    import time

    from rdma import inside

    monkeypatch.setattr(inside, "TEARDOWN_GRACE_S", 0.3)
    summary_row = " 64 5000 1.0 2.0 1.5 1.5 0.1 2.0 2.0"
    hung = inside.Printing(["sh", "-c", f"printf '1, 1.5\\n{summary_row}\\n'; exec sleep 60"])
    start = time.monotonic()
    assert hung.finish(timeout=30) == inside.HUNG_AT_TEARDOWN and time.monotonic() - start < 10
    assert hung.proc.poll() is not None and perftest.parse_raw(hung.text).tolist() == [1500]
    silent = inside.Printing(["sleep", "60"])
    assert silent.finish(timeout=0.5) is None and silent.proc.poll() is not None
    done = inside.Printing(["sh", "-c", "echo '1, 1.5'"])
    assert done.finish(timeout=30) == 0 and done.text == "1, 1.5\n"


def test_no_device_and_no_vm_gives_a_row_with_the_reason(monkeypatch, tmp_path):
    import threading

    from latlab.plugin import RunContext
    from latlab.topology import Lab
    from rdma import plugin

    monkeypatch.setattr(devices, "devices", lambda root=devices.SYSFS: [])
    monkeypatch.setattr(vm.shutil, "which", lambda name: None)
    reason = vm.unavailable_reason()
    assert "qemu-system-x86" in reason and "make setup-rdma" in reason
    case = plugin.RdmaCase(plugin.configure({}))
    ctx = RunContext(lab=Lab("none", {}, 1500), workdir=tmp_path, stop=threading.Event(), quiet=True, tag="unit00")
    [row] = case.run(ctx)
    assert not row.complete and row.note.startswith("skipped: no RDMA device here") and "qemu" in row.note
    assert not list(Path("/var/tmp").glob("latlab-rdma-unit00-*"))


def test_samples_are_doubled_only_for_half_rtt_tools():
    assert {"send", "write"} == perftest.HALF_RTT_TESTS
    assert np.array_equal(perftest.parse_raw("1, 1.5\n") * 2, np.array([3000]))


def test_the_vm_kernel_is_the_pin_while_apt_has_it_else_what_the_metapackage_names():
    """Real apt-cache on this machine: the pin resolves to itself; a pin that left the archive resolves to
    the kernel linux-image-amd64 depends on; with neither, the pin stays and says so."""
    import shutil

    from latlab import vm_kernel

    if not shutil.which("apt-cache") or not vm_kernel.metapackage_kernel():
        pytest.skip("apt-cache has no lists here")
    pin = vm_kernel.pinned()
    if vm_kernel.fetchable(pin):
        assert vm_kernel.resolve(pin) == (pin, "pinned (latlab/VM_KERNEL_VERSION)")
    gone = "6.1.0-0-amd64"                        # an ABI that was never in the archive
    version, why = vm_kernel.resolve(gone)
    assert version == vm_kernel.metapackage_kernel() and version != gone and "no longer" in why
    kept, why = vm_kernel.resolve(gone, "no-such-metapackage")
    assert kept == gone and why.startswith("pinned;")
    assert vm_kernel.chosen() == vm.KERNEL_VERSION


def test_each_rdma_result_describes_the_vm_kernel_devices_and_veth_it_ran_on(tmp_path):
    import json

    from rdma import plugin

    (tmp_path / "inside.json").write_text(json.dumps({
        "kernel": "6.1.0-56-amd64", "path": "wire", "device": "rxe0", "server_device": "rxe1", "netdev": "rxa",
        "server_netdev": "rxb", "error": "RuntimeError: stopped early"}))
    case = plugin.RdmaCase(plugin.configure({}))
    [row] = case._results(tmp_path, f"soft-RoCE (rxe) in a TCG VM, kernel {vm.KERNEL_VERSION}", {})
    assert not row.complete and row.note == "RuntimeError: stopped early"
    assert row.path["vm"]["kernel"] == vm.KERNEL_VERSION and row.path["kernel"] == "6.1.0-56-amd64"
    assert row.path["rdma_devices"] == {"client": "rxe0", "server": "rxe1"}
    assert row.path["netdevs"] == {"client": "rxa", "server": "rxb"} and "crosses the veth" in row.path["path"]
    assert "vm" not in plugin.rdma_path("RDMA device mlx5_0 on this host", {"device": "mlx5_0"})


def test_each_test_name_has_its_traffic_class_and_a_typo_is_refused():
    from rdma.verbs import TESTS, TRAFFIC, Options, ReadTraffic, UDTraffic, VerbsError, traffic_of

    assert set(TESTS) == {*TRAFFIC, "cm"}  # cm: RC SEND set up through rdma_cm (rdma/cm.py)
    assert isinstance(traffic_of(Options(test="ud")), UDTraffic) and traffic_of(Options(test="ud")).ud
    read = traffic_of(Options(test="read"))
    assert isinstance(read, ReadTraffic) and not read.answers and read.opcode == "IBV_WR_RDMA_READ"
    with pytest.raises(VerbsError, match="unknown test 'sned': one of send, ud, write, read"):
        traffic_of(Options(test="sned"))


def test_segments_alternate_abba_and_each_side_is_pooled_in_time_order(monkeypatch, tmp_path):
    """The orchestration of `segments`: latlab and perftest alternate ABBA per test, the iterations split evenly;
    latlab's two processes start once per test and run its segments one by one; its segments are concatenated in
    run order, counts summed; a failed segment fails its side's row."""
    import argparse

    from rdma import inside

    order: list[tuple[str, str, int]] = []
    clock = iter(range(1_000_000))

    class FakePaced:
        """latlab's two processes, started once per test, run segment by segment."""

        def __init__(self, args, host, test, segments):
            self.args, self.test, self.segments = args, test, segments
            order.append(("start", test, segments))

        def samples(self, segment):
            return args.out / f"c-{self.test}" / f"{self.test}.seg{segment}.npz"

        def segment(self, segment, n):
            order.append(("latlab", self.test, n))
            self.samples(segment).parent.mkdir(exist_ok=True)
            sent = np.array([next(clock) for _ in range(n)])
            np.savez(self.samples(segment), rtt_ns=sent * 10, send_ns=sent)
            status = "error" if (self.test, segment) == ("read", 2) else "ok"
            return {"test": self.test, "segment": segment, "status": status,
                    "error": "boom" if status == "error" else "", "measured": n, "warmup": 3,
                    "wire": {"rxa_tx_packets": n, "rxb_rx_packets": n}}

        def close(self):
            order.append(("close", self.test, 0))
            return {k: {"test": self.test, "segment": k, "answered": 5 + k} for k in range(self.segments)}

    def fake_perftest(args, host, gid, server_gid, test, iterations, npz):
        order.append(("perftest", test, iterations))
        np.savez(args.out / npz, samples_ns=np.full(iterations, len(order)))
        return {"test": test, "status": "ok", "summary_us": {"iterations": iterations}, "wire": None}

    monkeypatch.setattr(inside, "PacedDrivers", FakePaced)
    monkeypatch.setattr(inside, "_perftest_attempts", fake_perftest)
    args = argparse.Namespace(out=tmp_path, tests="send,read", iterations=10, segments=4)
    own, tools = inside.run_side_by_side(args, "10.9.0.2", 1, 1)
    assert [(who, n) for who, test, n in order if test == "send"] == [
        ("start", 4), ("latlab", 3), ("perftest", 3), ("perftest", 3), ("latlab", 3), ("perftest", 2), ("latlab", 2),
        ("latlab", 2), ("perftest", 2), ("close", 0)]
    send, read = own
    assert send["status"] == "ok" and send["measured"] == 10 and send["segments"] == 4
    assert send["warmup"] == 12 and send["server"]["answered"] == 5 + 6 + 7 + 8 and send["wire"]["rxa_tx_packets"] == 10
    pooled = np.load(tmp_path / "c" / "send.npz")
    assert len(pooled["rtt_ns"]) == 10 and np.all(np.diff(pooled["send_ns"]) > 0)  # run order kept
    assert read["status"] == "error" and read["error"] == "boom"
    assert tools[0]["status"] == "ok" and len(np.load(tmp_path / "perftest-send.npz")["samples_ns"]) == 10
    assert [s["iterations"] for s in tools[0]["summary_us"]] == [3, 3, 2, 2]
    assert inside._split(5, 10) == [1] * 5 and inside._split(10_000, 4) == [2500] * 4


@pytest.mark.parametrize(("stdin", "status", "needle"), [
    ("", "stopped", "the parent ended the run before segment 0 of 3"),
    ("many\n", "error", "segment 0: invalid literal for int()"),
])
def test_a_paced_client_waits_for_its_parent_and_stops_cleanly_without_it(tmp_path, stdin, status, needle):
    """A segmented client starts a segment only when its parent says how many iterations: end of input stops it
    with a result that says so (and exit 1), a line that is no count is refused; no device is touched first."""
    import subprocess
    import sys

    from latlab import helper
    from rdma.driver import VerbsResult

    done = subprocess.run([sys.executable, "-m", "rdma.driver", "--role", "client", "--device", "nosuchdev",
                           "--tests", "read", "--segments", "3", "--out", str(tmp_path)],
                          input=stdin, capture_output=True, text=True, timeout=60)
    [first, *_] = helper.results(done.stdout, VerbsResult, "rdma driver")
    assert done.returncode == 1 and first.status == status and needle in first.error and first.segment == 0
