"""latlab's AF_XDP endpoint as a process: `python -m toe_bench.afxdp_engine --role reflector|client ...`
(an AfxdpConfig).

The reflector answers UDP frames to its port on an interface's queue; the client runs the timed ping-pong
against a reflector's MAC and address. Both print `READY` once the XSK socket is bound, and one JSON line
at the end: the status, the mode the kernel accepted (native/generic, copy/zero-copy), the socket's own
counters, and (client) where the samples were written.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from latlab.cpu import gc_paused
from latlab.helper import HelperConfig, HelperResult, say_ready, say_result
from latlab.helper_main import start


class AfxdpConfig(HelperConfig):
    """latlab's AF_XDP reflector or ping-pong client on one interface queue."""

    role: Literal["reflector", "client"]
    ifname: str
    queue: int = Field(0, ge=0)
    mode: Literal["native", "generic"] = "native"
    zero_copy: bool = Field(False, description="try zero-copy first (falls back to copy)")
    port: int = Field(ge=1, le=65535, description="the reflector's UDP port")
    cpu: int | None = None
    clear_sockperf_flag: bool = Field(False, description="reflector: answer sockperf clients")
    idle_timeout: float = Field(30.0, gt=0)
    src: str | None = Field(None, description="client: own IPv4 address")
    dst: str | None = Field(None, description="client: the reflector's IPv4 address")
    src_mac: str | None = Field(None, description="client: own MAC (the interface's)")
    peer_mac: str | None = Field(None, description="client: the reflector's MAC")
    src_port: int = Field(40000, ge=1, le=65535)
    size: int = Field(64, ge=16)
    warmup: int = Field(1000, ge=0)
    count: int = Field(100_000, ge=1)
    duration: float = Field(0.0, ge=0)
    timeout: float = Field(2.0, gt=0)
    out: Path | None = None

    @model_validator(mode="after")
    def _client_has_its_path(self) -> AfxdpConfig:
        if self.role == "client" and not (self.src and self.dst and self.src_mac and self.peer_mac and self.out):
            raise ValueError("the client needs src, dst, src_mac, peer_mac and out")
        return self


class AfxdpResult(HelperResult):
    """What the endpoint did: the mode the kernel accepted, its socket's counters, (client) the samples."""

    status: str
    error: str = ""
    xdp_mode: str = ""
    bind: str = ""
    ifname: str = ""
    queue: int = 0
    xdp_program: dict[str, Any] | None = None
    measured: int = 0
    warmup: int = 0
    counters: dict[str, int] = Field(default_factory=dict)


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


def run(args: AfxdpConfig) -> AfxdpResult:
    from toe_bench import _afxdp

    handle = _afxdp.open(args.ifname, args.queue, args.mode == "native", args.zero_copy)
    try:
        mode = {"xdp_mode": args.mode, "bind": "zero-copy" if _afxdp.zero_copy(handle) else "copy",
                "ifname": args.ifname, "queue": args.queue, "xdp_program": attached_program(args.ifname)}
        say_ready()
        record = AfxdpResult(status="", **mode)
        with gc_paused():
            if args.role == "reflector":
                record.status = _afxdp.reflect(handle, args.port, args.clear_sockperf_flag,
                                               int(args.idle_timeout * 1e9))
            else:
                assert args.src and args.dst and args.src_mac and args.peer_mac and args.out  # the validator's
                send_ns = np.zeros(args.count, dtype=np.int64)
                rtt_ns = np.zeros(args.count, dtype=np.int64)
                measured, warmed, status = _afxdp.pingpong(
                    handle, mac_bytes(args.src_mac), mac_bytes(args.peer_mac), ip_u32(args.src),
                    ip_u32(args.dst), args.src_port, args.port, args.size, args.warmup, args.count,
                    int(args.duration * 1e9), int(args.timeout * 1e9), send_ns, rtt_ns)
                tmp = Path(str(args.out) + ".tmp.npz")
                np.savez(tmp, send_ns=send_ns[:measured], rtt_ns=rtt_ns[:measured])
                os.replace(tmp, args.out)
                record.status, record.measured, record.warmup = status, measured, warmed
        record.counters = _afxdp.counters(handle)
        return record
    finally:
        _afxdp.close(handle)


def main(argv: list[str] | None = None) -> int:
    args = start(AfxdpConfig, "python -m toe_bench.afxdp_engine", argv)  # pinned to args.cpu from here on
    try:
        record = run(args)
    except KeyboardInterrupt:
        record = AfxdpResult(status="interrupted")
    except (OSError, ValueError) as exc:
        record = AfxdpResult(status="error", error=str(exc))
    say_result(record)
    return 0 if record.status in ("ok", "idle", "interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
