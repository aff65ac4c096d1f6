"""The ping-pong engine's two processes: `python -m toe_bench.engine --role server|client ...` (an EngineConfig).

The client pins itself, turns the garbage collector off, preallocates its sample buffers, runs the
timed loop (compiled by default, the pure-Python reference with impl python), then writes the
samples (.npz) and prints one JSON line. A SIGINT or SIGTERM ends the loop early: what was measured
is still written, with status "interrupted".
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from latlab.cpu import gc_paused
from latlab.helper import HelperConfig, HelperResult, say_ready, say_result
from latlab.helper_main import start

RCV_POLL_S = 0.1  # blocking receives wake this often to look at deadlines and signals
SO_BUSY_POLL = 46  # Linux socket options Python's socket module does not name
SO_INCOMING_NAPI_ID = 56
COMMAND = [sys.executable, "-m", "toe_bench.engine"]  # the engine as a process: COMMAND + an EngineConfig's argv()


class EngineConfig(HelperConfig):
    """One side of latlab's ping-pong engine."""

    role: Literal["client", "server"]
    proto: Literal["udp", "tcp"]
    host: str = Field(description="server address (client: connect to, server: bind)")
    port: int = Field(ge=0, le=65535, description="server: 0 picks a free port (said in READY)")
    cpu: int | None = None
    busy: bool = Field(False, description="busy-poll receive (else block)")
    impl: Literal["c", "python"] = "c"
    busy_poll_us: int = Field(0, ge=0, description="SO_BUSY_POLL on the socket (µs; 0: off)")
    size: int = Field(64, ge=16)
    warmup: int = Field(1000, ge=0)
    count: int = Field(100_000, ge=1, description="measured samples at most")
    duration: float = Field(0.0, ge=0, description="stop measuring after this many s (0: none)")
    rate: float = Field(0.0, ge=0, description="open loop: messages/s (0: closed loop)")
    timeout: float = Field(2.0, gt=0, description="no echo for this long ends the run")
    idle_timeout: float = Field(30.0, gt=0, description="server: exit after this long idle")
    out: Path | None = Field(None, description="client: samples file (.npz)")

    @model_validator(mode="after")
    def _client_has_its_file(self) -> EngineConfig:
        if self.role == "client" and self.out is None:
            raise ValueError("the client needs out (its samples file)")
        return self


class EngineResult(HelperResult):
    """What one side did: the client's samples are in its `out` file."""

    status: str
    errno: int = 0
    error: str = ""
    napi_id: int = 0
    measured: int = 0  # client
    warmup: int = 0
    impl: str = ""
    busy_poll_us: int = 0
    echoed: int = 0  # server


def loops(impl: str) -> ModuleType:
    """The module holding client_loop/server_loop: the compiled one or the Python reference."""
    if impl == "python":
        from toe_bench import pingpong_py

        return pingpong_py
    from toe_bench import _pingpong

    return _pingpong


def _set_rcvtimeo(sock: socket.socket, seconds: float) -> None:
    sec = int(seconds)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", sec, int((seconds - sec) * 1e6)))



def set_busy_poll(sock: socket.socket, usec: int) -> None:
    """SO_BUSY_POLL: a receive on this socket polls the device's NAPI context for up to `usec` µs first."""
    if usec:
        sock.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, usec)


def napi_id(sock: socket.socket) -> int:
    """SO_INCOMING_NAPI_ID of the last packet received: 0 means no NAPI context, so busy polling cannot work."""
    try:
        return sock.getsockopt(socket.SOL_SOCKET, SO_INCOMING_NAPI_ID)
    except OSError:
        return 0


def connect(proto: str, host: str, port: int, timeout: float) -> socket.socket:
    """A connected UDP or TCP (TCP_NODELAY) socket; TCP retries until `timeout`."""
    if proto == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect((host, port))
        return sock
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect((host, port))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def run_client(cfg: EngineConfig) -> EngineResult:
    """Measure; write samples to cfg.out; return the status record."""
    sock = connect(cfg.proto, cfg.host, cfg.port, cfg.timeout)
    set_busy_poll(sock, cfg.busy_poll_us)
    _set_rcvtimeo(sock, RCV_POLL_S)
    period_ns = int(1e9 / cfg.rate) if cfg.rate > 0 else 0
    count = cfg.count
    send_ns = np.zeros(count, dtype=np.int64)
    rtt_ns = np.zeros(count, dtype=np.int64)
    corrected_ns = np.zeros(count, dtype=np.int64) if period_ns else None
    # Touch every page now so the timed loop takes no page faults.
    for buf in (send_ns, rtt_ns, corrected_ns):
        if buf is not None:
            buf.fill(0)
    impl = loops(cfg.impl)
    with gc_paused():
        measured, warmed, status, err = impl.client_loop(
            sock.fileno(), cfg.proto == "tcp", cfg.size, cfg.warmup, count, int(cfg.duration * 1e9),
            cfg.busy, period_ns, int(cfg.timeout * 1e9), send_ns, rtt_ns, corrected_ns)
    incoming_napi = napi_id(sock)
    sock.close()
    arrays = {"send_ns": send_ns[:measured], "rtt_ns": rtt_ns[:measured]}
    if corrected_ns is not None:
        arrays["corrected_ns"] = corrected_ns[:measured]
    assert cfg.out is not None  # the config's validator
    tmp = Path(str(cfg.out) + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, cfg.out)
    return EngineResult(measured=measured, warmup=warmed, status=status, errno=err,
                        error=os.strerror(err) if err else "", impl=cfg.impl, napi_id=incoming_napi,
                        busy_poll_us=cfg.busy_poll_us)


def run_server(cfg: EngineConfig) -> EngineResult:
    """Echo until the peer closes, it goes idle, or a signal arrives."""
    kind = socket.SOCK_STREAM if cfg.proto == "tcp" else socket.SOCK_DGRAM
    lsock = socket.socket(socket.AF_INET, kind)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((cfg.host, cfg.port))
    if cfg.proto == "tcp":
        lsock.listen(1)
        lsock.settimeout(cfg.idle_timeout)
        say_ready(port=lsock.getsockname()[1])
        try:
            sock, _ = lsock.accept()
        except TimeoutError:
            return EngineResult(status="idle")
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lsock.close()
    else:
        sock = lsock
        say_ready(port=lsock.getsockname()[1])
    set_busy_poll(sock, cfg.busy_poll_us)
    _set_rcvtimeo(sock, RCV_POLL_S)
    with gc_paused():
        echoed, status, err = loops(cfg.impl).server_loop(sock.fileno(), cfg.proto == "tcp",
                                                           int(cfg.idle_timeout * 1e9), cfg.busy)
    incoming_napi = napi_id(sock)
    sock.close()
    return EngineResult(echoed=echoed, status=status, errno=err, napi_id=incoming_napi)


def main(argv: list[str] | None = None) -> int:
    cfg = start(EngineConfig, "python -m toe_bench.engine", argv)  # pinned to cfg.cpu from here on
    try:
        record = run_client(cfg) if cfg.role == "client" else run_server(cfg)
    except KeyboardInterrupt:
        record = EngineResult(status="interrupted")
    say_result(record)
    return 0 if record.status in ("ok", "closed", "idle", "interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
