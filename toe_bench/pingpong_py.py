"""Pure-Python reference of the compiled ping-pong loops (_pingpong.c): same arguments, same results.

Kept as the oracle for differential tests and as the readable statement of what the engine measures.
"""

from __future__ import annotations

import errno as errno_mod
import socket
import time
from typing import Any

_CHECK_EVERY = 1024
_MAX_MSG = 65536


class _RxFailure(Exception):
    def __init__(self, status: str, err: int = 0) -> None:
        super().__init__(status)
        self.status = status
        self.err = err


def _recv_msg(sock: socket.socket, buf: bytearray, size: int, stream: bool, busy: bool, deadline: int) -> None:
    view = memoryview(buf)
    flags = socket.MSG_DONTWAIT if busy else 0
    got = 0
    spins = 0
    while got < size:
        try:
            n = sock.recv_into(view[got:] if stream else view, size - got if stream else _MAX_MSG, flags)
        except (BlockingIOError, TimeoutError, InterruptedError):
            spins += 1
            if (spins % _CHECK_EVERY == 0 or not busy) and deadline and time.perf_counter_ns() > deadline:
                raise _RxFailure("timeout") from None
            continue
        except OSError as exc:
            raise _RxFailure("error", exc.errno or 0) from None
        if n == 0:
            raise _RxFailure("closed" if stream else "mismatch")
        if not stream:
            if n != size:
                raise _RxFailure("mismatch")
            return
        got += n


def client_loop(fd: int, stream: bool, size: int, warmup: int, count: int, duration_ns: int, busy: bool,
                period_ns: int, timeout_ns: int, send_ns: Any, rtt_ns: Any,
                corrected_ns: Any | None) -> tuple[int, int, str, int]:
    """Reference of _pingpong.client_loop: returns (measured, warmup_done, status, errno)."""
    if not 8 <= size <= _MAX_MSG:
        raise ValueError("size must be between 8 and 65536 bytes")
    for name, buf in (("send_ns", send_ns), ("rtt_ns", rtt_ns), ("corrected_ns", corrected_ns)):
        if buf is not None and len(buf) < count:
            raise ValueError(f"{name} must hold at least {count} int64 items")
    sock = socket.socket(fileno=fd)
    try:
        return _client(sock, stream, size, warmup, count, duration_ns, busy, period_ns, timeout_ns,
                       send_ns, rtt_ns, corrected_ns)
    finally:
        sock.detach()


def _client(sock: socket.socket, stream: bool, size: int, warmup: int, count: int, duration_ns: int,
            busy: bool, period_ns: int, timeout_ns: int, send_ns: Any, rtt_ns: Any,
            corrected_ns: Any | None) -> tuple[int, int, str, int]:
    clock = time.perf_counter_ns
    tx = bytearray(b"\xa5" * size)
    rx = bytearray(_MAX_MSG)
    measured = warmed = 0
    measure_start = 0
    i = 0
    try:
        while measured < count:
            in_warmup = i < warmup
            intended = 0
            if not in_warmup and measure_start == 0:
                measure_start = clock()
            if not in_warmup and period_ns > 0:
                intended = measure_start + measured * period_ns
                while clock() < intended:
                    pass
            tx[0:8] = i.to_bytes(8, "little")
            t0 = clock()
            sock.sendall(tx)
            _recv_msg(sock, rx, size, stream, busy, t0 + timeout_ns if timeout_ns else 0)
            t1 = clock()
            if rx[:size] != tx:
                return measured, warmed, "mismatch", 0
            i += 1
            if in_warmup:
                warmed += 1
                continue
            send_ns[measured] = t0
            rtt_ns[measured] = t1 - t0
            if corrected_ns is not None:
                corrected_ns[measured] = t1 - intended if period_ns > 0 else t1 - t0
            measured += 1
            if duration_ns > 0 and measured % 64 == 0 and t1 - measure_start >= duration_ns:
                break
    except _RxFailure as failure:
        return measured, warmed, failure.status, failure.err
    except KeyboardInterrupt:
        return measured, warmed, "interrupted", 0
    except OSError as exc:
        return measured, warmed, "error", exc.errno or errno_mod.EIO
    return measured, warmed, "ok", 0


def server_loop(fd: int, stream: bool, idle_timeout_ns: int, busy: bool) -> tuple[int, str, int]:
    """Reference of _pingpong.server_loop: returns (echoed, status, errno)."""
    sock = socket.socket(fileno=fd)
    flags = socket.MSG_DONTWAIT if busy else 0
    buf = bytearray(_MAX_MSG)
    view = memoryview(buf)
    echoed = echoed_at_check = 0
    last_traffic = time.perf_counter_ns()
    spins = 0
    connected = False
    try:
        while True:
            try:
                if stream:
                    n = sock.recv_into(buf, _MAX_MSG, flags)
                    if n == 0:
                        return echoed, "closed", 0
                    sock.sendall(view[:n])
                else:
                    if connected:
                        n = sock.recv_into(buf, _MAX_MSG, flags)
                    else:  # the first datagram: serve its sender alone from now on (as the compiled loop does)
                        n, peer = sock.recvfrom_into(buf, _MAX_MSG, flags)
                        sock.connect(peer)
                        connected = True
                    sock.send(view[:n])
                echoed += 1
                continue
            except (BlockingIOError, TimeoutError, InterruptedError):
                pass
            spins += 1
            if busy and spins % _CHECK_EVERY:
                continue
            now = time.perf_counter_ns()
            if echoed != echoed_at_check:
                echoed_at_check = echoed
                last_traffic = now
            elif now - last_traffic > idle_timeout_ns:
                return echoed, "idle", 0
    except KeyboardInterrupt:
        return echoed, "interrupted", 0
    except OSError as exc:
        return echoed, "error", exc.errno or errno_mod.EIO
    finally:
        sock.detach()
