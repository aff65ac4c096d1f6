"""latlab's AF_XDP endpoint as a process: `python -m toe_bench.afxdp_engine reflector|client ...`.

The reflector answers UDP frames to its port on an interface's queue; the client runs the timed ping-pong
against a reflector's MAC and address. Both print `READY` once the XSK socket is bound, and one JSON line
at the end: the status, the mode the kernel accepted (native/generic, copy/zero-copy), the socket's own
counters, and (client) where the samples were written.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from latlab.cpu import gc_paused, pin
from latlab.helper import say_ready, say_result
from latlab.signals import stop_on_signals


def mac_bytes(text: str) -> bytes:
    """b'\\x02...' from 'aa:bb:cc:dd:ee:ff'; a malformed MAC is a ValueError naming it."""
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)


def attached_program(ifname: str) -> dict[str, object] | None:
    """The XDP program on the interface now, as `ip` reports it from this namespace."""
    from toe_bench.stacks.base import xdp_of

    out = subprocess.run(["ip", "-j", "-d", "link", "show", "dev", ifname], capture_output=True, text=True,
                         timeout=30)
    try:
        return xdp_of(json.loads(out.stdout)[0])
    except (json.JSONDecodeError, IndexError):
        return None


def ip_u32(address: str) -> int:
    """The address as the u32 whose memory layout is network byte order (what the C side copies)."""
    return int.from_bytes(ipaddress.IPv4Address(address).packed, sys.byteorder)


def run(args: argparse.Namespace) -> dict[str, object]:
    from toe_bench import _afxdp

    if args.cpu is not None:
        pin(args.cpu)
    handle = _afxdp.open(args.ifname, args.queue, args.mode == "native", args.zero_copy)
    try:
        mode = {"xdp_mode": args.mode, "bind": "zero-copy" if _afxdp.zero_copy(handle) else "copy",
                "ifname": args.ifname, "queue": args.queue, "xdp_program": attached_program(args.ifname)}
        say_ready()
        record: dict[str, object] = {**mode}
        with gc_paused():
            if args.role == "reflector":
                record["status"] = _afxdp.reflect(handle, args.port, args.clear_sockperf_flag,
                                                  int(args.idle_timeout * 1e9))
            else:
                send_ns = np.zeros(args.count, dtype=np.int64)
                rtt_ns = np.zeros(args.count, dtype=np.int64)
                measured, warmed, status = _afxdp.pingpong(
                    handle, mac_bytes(args.src_mac), mac_bytes(args.peer_mac), ip_u32(args.src),
                    ip_u32(args.dst), args.src_port, args.port, args.size, args.warmup, args.count,
                    int(args.duration * 1e9), int(args.timeout * 1e9), send_ns, rtt_ns)
                tmp = Path(str(args.out) + ".tmp.npz")
                np.savez(tmp, send_ns=send_ns[:measured], rtt_ns=rtt_ns[:measured])
                os.replace(tmp, args.out)
                record.update({"status": status, "measured": measured, "warmup": warmed})
        record["counters"] = _afxdp.counters(handle)
        return record
    finally:
        _afxdp.close(handle)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m toe_bench.afxdp_engine")
    p.add_argument("role", choices=("reflector", "client"))
    p.add_argument("--ifname", required=True)
    p.add_argument("--queue", type=int, default=0)
    p.add_argument("--mode", choices=("native", "generic"), default="native")
    p.add_argument("--zero-copy", action="store_true", help="try zero-copy first (falls back to copy)")
    p.add_argument("--port", type=int, required=True, help="the reflector's UDP port")
    p.add_argument("--cpu", type=int)
    p.add_argument("--clear-sockperf-flag", action="store_true", help="reflector: answer sockperf clients")
    p.add_argument("--idle-timeout", type=float, default=30.0)
    p.add_argument("--src", help="client: own IPv4 address")
    p.add_argument("--dst", help="client: the reflector's IPv4 address")
    p.add_argument("--src-mac", help="client: own MAC (the interface's)")
    p.add_argument("--peer-mac", help="client: the reflector's MAC")
    p.add_argument("--src-port", type=int, default=40000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--duration", type=float, default=0.0)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.role == "client" and not (args.src and args.dst and args.src_mac and args.peer_mac and args.out):
        p.error("the client needs --src, --dst, --src-mac, --peer-mac and --out")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    try:
        record = run(args)
    except KeyboardInterrupt:
        record = {"status": "interrupted", "measured": 0}
    except (OSError, ValueError) as exc:
        record = {"status": "error", "error": str(exc)}
    say_result(record)
    return 0 if record["status"] in ("ok", "idle", "interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
