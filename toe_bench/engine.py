"""The ping-pong engine's two processes: `python -m toe_bench.engine server|client ...`.

The client pins itself, turns the garbage collector off, preallocates its sample buffers, runs the
timed loop (compiled by default, the pure-Python reference with --impl python), then writes the
samples (.npz) and prints one JSON line. A SIGINT or SIGTERM ends the loop early: what was measured
is still written, with status "interrupted".
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from latlab.cpu import gc_paused, pin
from latlab.helper import say_ready, say_result
from latlab.signals import stop_on_signals

RCV_POLL_S = 0.1  # blocking receives wake this often to look at deadlines and signals
SO_BUSY_POLL = 46  # Linux socket options Python's socket module does not name
SO_INCOMING_NAPI_ID = 56


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


def run_client(args: argparse.Namespace) -> dict[str, object]:
    """Measure; write samples to args.out; return the status record."""
    if args.cpu is not None:
        pin(args.cpu)
    sock = connect(args.proto, args.host, args.port, args.timeout)
    set_busy_poll(sock, args.busy_poll_us)
    _set_rcvtimeo(sock, RCV_POLL_S)
    period_ns = int(1e9 / args.rate) if args.rate > 0 else 0
    count = args.count
    send_ns = np.zeros(count, dtype=np.int64)
    rtt_ns = np.zeros(count, dtype=np.int64)
    corrected_ns = np.zeros(count, dtype=np.int64) if period_ns else None
    # Touch every page now so the timed loop takes no page faults.
    for buf in (send_ns, rtt_ns, corrected_ns):
        if buf is not None:
            buf.fill(0)
    impl = loops(args.impl)
    with gc_paused():
        measured, warmed, status, err = impl.client_loop(
            sock.fileno(), args.proto == "tcp", args.size, args.warmup, count, int(args.duration * 1e9),
            args.busy, period_ns, int(args.timeout * 1e9), send_ns, rtt_ns, corrected_ns)
    incoming_napi = napi_id(sock)
    sock.close()
    arrays = {"send_ns": send_ns[:measured], "rtt_ns": rtt_ns[:measured]}
    if corrected_ns is not None:
        arrays["corrected_ns"] = corrected_ns[:measured]
    tmp = Path(str(args.out) + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, args.out)
    return {"measured": measured, "warmup": warmed, "status": status, "errno": err,
            "error": os.strerror(err) if err else "", "impl": args.impl, "napi_id": incoming_napi,
            "busy_poll_us": args.busy_poll_us}


def run_server(args: argparse.Namespace) -> dict[str, object]:
    """Echo until the peer closes, it goes idle, or a signal arrives."""
    if args.cpu is not None:
        pin(args.cpu)
    kind = socket.SOCK_STREAM if args.proto == "tcp" else socket.SOCK_DGRAM
    lsock = socket.socket(socket.AF_INET, kind)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.host, args.port))
    if args.proto == "tcp":
        lsock.listen(1)
        lsock.settimeout(args.idle_timeout)
        say_ready(port=lsock.getsockname()[1])
        try:
            sock, _ = lsock.accept()
        except TimeoutError:
            return {"echoed": 0, "status": "idle", "errno": 0}
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lsock.close()
    else:
        sock = lsock
        say_ready(port=lsock.getsockname()[1])
    set_busy_poll(sock, args.busy_poll_us)
    _set_rcvtimeo(sock, RCV_POLL_S)
    with gc_paused():
        echoed, status, err = loops(args.impl).server_loop(sock.fileno(), args.proto == "tcp",
                                                           int(args.idle_timeout * 1e9), args.busy)
    incoming_napi = napi_id(sock)
    sock.close()
    return {"echoed": echoed, "status": status, "errno": err, "napi_id": incoming_napi}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m toe_bench.engine")
    parser.add_argument("role", choices=("client", "server"))
    parser.add_argument("--proto", choices=("udp", "tcp"), required=True)
    parser.add_argument("--host", required=True, help="server address (client: connect to, server: bind)")
    parser.add_argument("--port", type=int, required=True, help="server: 0 picks a free port (printed)")
    parser.add_argument("--cpu", type=int)
    parser.add_argument("--busy", action="store_true", help="busy-poll receive (else block)")
    parser.add_argument("--impl", choices=("c", "python"), default="c")
    parser.add_argument("--busy-poll-us", type=int, default=0, help="SO_BUSY_POLL on the socket (µs; 0: off)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--count", type=int, default=100_000, help="measured samples at most")
    parser.add_argument("--duration", type=float, default=0.0, help="stop measuring after this many s (0: none)")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: messages/s (0: closed loop)")
    parser.add_argument("--timeout", type=float, default=2.0, help="no echo for this long ends the run")
    parser.add_argument("--idle-timeout", type=float, default=30.0, help="server: exit after this long idle")
    parser.add_argument("--out", type=Path, help="client: samples file (.npz)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    try:
        record = run_client(args) if args.role == "client" else run_server(args)
    except KeyboardInterrupt:
        record = {"status": "interrupted", "measured": 0}
    say_result(record)
    return 0 if record["status"] in ("ok", "closed", "idle", "interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
