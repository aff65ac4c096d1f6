"""The ping-pong engine: the compiled loop against the pure-Python reference, on loopback, real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from latlab import helper
from toe_bench.engine import COMMAND as ENGINE
from toe_bench.engine import EngineResult


class Server:
    """An engine (or any) echo server subprocess on loopback, stopped by the fixture."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith(helper.READY), line
        self.port = int(helper.ready_fields(line)["port"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def servers():
    started: list[Server] = []

    def start(proto: str, impl: str = "c", busy: bool = True, argv: list[str] | None = None) -> Server:
        srv = Server(argv or [*ENGINE, "--role", "server", "--proto", proto, "--host", "127.0.0.1", "--port", "0",
                              "--impl", impl, "--idle-timeout", "20", *(["--busy"] if busy else [])])
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


def client(tmp: Path, proto: str, port: int, *, impl: str = "c", busy: bool = True, size: int = 64,
           warmup: int = 100, count: int = 2000, duration: float = 0.0, rate: float = 0.0,
           timeout: float = 1.0, wait: bool = True) -> tuple[dict, dict[str, np.ndarray]] | subprocess.Popen:
    out = tmp / f"{proto}-{impl}-{time.monotonic_ns()}.npz"
    argv = [*ENGINE, "--role", "client", "--proto", proto, "--host", "127.0.0.1", "--port", str(port), "--impl", impl,
            "--size", str(size), "--warmup", str(warmup), "--count", str(count), "--duration", str(duration),
            "--rate", str(rate), "--timeout", str(timeout), "--out", str(out), *(["--busy"] if busy else [])]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        proc.out = out  # type: ignore[attr-defined]
        return proc
    return finish(proc, out)


def finish(proc: subprocess.Popen, out: Path) -> tuple[dict, dict[str, np.ndarray]]:
    stdout, _stderr = proc.communicate(timeout=60)
    status = helper.result(stdout, EngineResult, "engine client")
    data = dict(np.load(out)) if out.exists() else {}
    return status, data


@pytest.mark.parametrize("proto", ["udp", "tcp"])
@pytest.mark.parametrize("busy", [True, False], ids=["busy-poll", "blocking"])
def test_compiled_and_reference_loops_agree(tmp_path, servers, proto, busy):
    """Same server, same arguments: both implementations measure every round trip and verify every echo."""
    for impl in ("c", "python"):
        srv = servers(proto, impl=impl, busy=busy)  # also crosses: C client ↔ C server, Python ↔ Python
        status, data = client(tmp_path, proto, srv.port, impl=impl, busy=busy, size=200, warmup=150, count=3000)
        assert status.status == "ok", status
        assert status.measured == 3000 and status.warmup == 150
        assert len(data["rtt_ns"]) == 3000 and np.all(data["rtt_ns"] > 0)
        assert np.all(np.diff(data["send_ns"]) > 0), "send times are increasing"
        # Each send happens after the previous echo: spacing is at least the previous RTT.
        assert np.all(np.diff(data["send_ns"]) >= data["rtt_ns"][:-1])


def test_mixed_implementations_interoperate(tmp_path, servers):
    srv = servers("tcp", impl="python")
    status, data = client(tmp_path, "tcp", srv.port, impl="c", count=500, size=1000)
    assert status.status == "ok" and len(data["rtt_ns"]) == 500


@pytest.mark.parametrize("impl", ["c", "python"])
def test_udp_server_serves_its_first_client_alone(tmp_path, servers, impl):
    """The UDP echo connects to its first sender (no route lookup per echo): that client is answered, another
    sender's datagram is not."""
    import socket

    srv = servers("udp", impl=impl)
    status, _ = client(tmp_path, "udp", srv.port, impl=impl, count=200)
    assert status.status == "ok" and status.measured == 200
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.settimeout(0.3)
        other.sendto(b"x" * 64, ("127.0.0.1", srv.port))
        with pytest.raises(TimeoutError):
            other.recv(100)


@pytest.mark.parametrize("impl", ["c", "python"])
def test_duration_bounds_the_run(tmp_path, servers, impl):
    srv = servers("udp")
    start = time.monotonic()
    status, data = client(tmp_path, "udp", srv.port, impl=impl, count=10_000_000, duration=0.3)
    assert status.status == "ok"
    span = (data["send_ns"][-1] - data["send_ns"][0]) / 1e9
    assert 0.25 < span < 0.6
    assert time.monotonic() - start < 15
    assert 0 < status.measured < 10_000_000


@pytest.mark.parametrize("impl", ["c", "python"])
def test_open_loop_keeps_intended_times_and_both_histograms(tmp_path, servers, impl):
    srv = servers("udp")
    rate = 2000.0
    status, data = client(tmp_path, "udp", srv.port, impl=impl, count=400, rate=rate)
    assert status.status == "ok"
    corrected, raw = data["corrected_ns"], data["rtt_ns"]
    assert len(corrected) == len(raw) == 400
    assert np.all(corrected >= raw), "latency from the intended send time is never below the raw latency"
    # Never ahead of schedule: message i leaves no earlier than i periods after the first (a late loop catches
    # up with back-to-back sends, so the spacing itself depends on how busy the machine is).
    period = 1e9 / rate
    ahead = data["send_ns"] - data["send_ns"][0] - np.arange(400) * period
    assert ahead.min() > -period * 0.02


def _received(proto: str) -> int:
    """Datagrams (UDP) or segments (TCP) this namespace's kernel has taken in (/proc/net/snmp)."""
    rows = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    want, field = ("Udp:", "InDatagrams") if proto == "udp" else ("Tcp:", "InSegs")
    names, values = [r for r in rows if r[0] == want]
    return int(values[names.index(field)])


def _wait_for_round_trips(proto: str, since: int, n: int, timeout_s: float = 30.0) -> None:
    """Until about n round trips (two receives each) have crossed loopback since the count `since`."""
    deadline = time.monotonic() + timeout_s
    while _received(proto) - since < 2 * n and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("impl", ["c", "python"])
def test_crashed_peer_times_out_and_keeps_samples(tmp_path, servers, impl):
    srv = servers("udp")
    before = _received("udp")
    proc = client(tmp_path, "udp", srv.port, impl=impl, count=10_000_000, duration=30, timeout=0.5, wait=False)
    _wait_for_round_trips("udp", before, 1000)  # warm-up (100) and then some measured
    srv.proc.kill()
    status, data = finish(proc, proc.out)
    # The peer is gone either way: no echo within the timeout, or the kernel's "connection refused" for UDP.
    assert status.status == "timeout" or (status.status == "error" and status.errno == 111), status
    assert status.measured > 100 and len(data["rtt_ns"]) == status.measured


@pytest.mark.parametrize("impl", ["c", "python"])
def test_sigint_ends_the_loop_and_writes_what_was_measured(tmp_path, servers, impl):
    srv = servers("tcp")
    before = _received("tcp")
    proc = client(tmp_path, "tcp", srv.port, impl=impl, count=10_000_000, duration=30, wait=False)
    _wait_for_round_trips("tcp", before, 1000)
    os.kill(proc.pid, signal.SIGINT)
    status, data = finish(proc, proc.out)
    assert status.status == "interrupted"
    assert status.measured > 100 and len(data["rtt_ns"]) == status.measured


CORRUPTING_SERVER = textwrap.dedent("""
    import json
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    print("READY", json.dumps({"port": s.getsockname()[1]}), flush=True)
    n = 0
    while True:
        data, peer = s.recvfrom(65536)
        n += 1
        if n > 50:
            data = data[:8] + bytes(len(data) - 8)
        s.sendto(data, peer)
""")


@pytest.mark.parametrize("impl", ["c", "python"])
def test_wrong_echo_is_detected(tmp_path, servers, impl):
    srv = servers("udp", argv=[sys.executable, "-c", CORRUPTING_SERVER])
    status, data = client(tmp_path, "udp", srv.port, impl=impl, warmup=10, count=1000)
    assert status.status == "mismatch"
    assert status.measured == 40 and len(data["rtt_ns"]) == 40


def test_bad_sizes_are_refused():
    from toe_bench import _pingpong, pingpong_py

    buf = np.zeros(4, dtype=np.int64)
    for impl in (_pingpong.client_loop, pingpong_py.client_loop):
        with pytest.raises(ValueError, match="size"):
            impl(0, False, 4, 0, 4, 0, True, 0, 0, buf, buf, None)
    with pytest.raises(ValueError, match="int64"):
        _pingpong.client_loop(0, False, 64, 0, 100, 0, True, 0, 0, buf, buf, None)
