"""What a network stack is to the ping-pong matrix: one small class per stack.

A stack says whether it can run here (`detect`, with the reason when it cannot), what it needs from a
host (`needs`, for hostprep), which protocols it carries, which receive mode it measures in, and how a
ping-pong runs under it (`measure`). Every row a stack returns carries its `evidence`: counters read
around the run that show the stack, not the kernel, carried the traffic. A stack whose evidence does
not hold returns its row as "not accelerated", without figures under its name.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from latlab.plugin import RunContext
from latlab.results import RTT, CaseResult
from latlab.topology import Lab, LabHost

if TYPE_CHECKING:
    from toe_bench.plugin import PingPongParams

SPIN = "busy-poll"  # the engine spins on a non-blocking receive
BLOCK = "blocking"


@dataclass(frozen=True)
class Availability:
    """Whether a stack can run on this host; `reason` says why not (or, when it can, what it runs on)."""

    available: bool
    reason: str = ""
    applicable: bool = True  # False: the hardware it needs is not here at all ("not applicable: ...")

    def describe(self, name: str) -> str:
        if self.available:
            return f"{name}: available" + (f" ({self.reason})" if self.reason else "")
        return f"{name}: {'not available' if self.applicable else 'not applicable'}: {self.reason}"


@dataclass
class Evidence:
    """What shows that a stack carried the traffic: named facts, and whether they hold."""

    holds: bool
    facts: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


@dataclass(frozen=True)
class CaseSpec:
    """One cell of the matrix: protocol, payload size, receive mode, and the ports it may use."""

    proto: str
    size: int
    receive: str
    port: int

    @property
    def busy(self) -> bool:
        return self.receive == SPIN


def group_name(stack: str, proto: str, size: int, receive: str) -> str:
    """Rows of one group are one stack on one path: latlab's engine and the native tool under that stack.
    The kernel keeps the plain name it always had."""
    base = f"{proto} {size}B {receive}"
    return base if stack == "kernel" else f"{stack}: {base}"


class Stack:
    """A network stack of the matrix. Subclasses set the class attributes and implement the methods."""

    name = ""
    protocols: tuple[str, ...] = ("udp", "tcp")
    engines: tuple[str, ...] = ("latlab", "sockperf")  # latlab's engine, then the native tool under this stack
    what = ""  # one line for the README, `latlab bench --list` and the report

    def detect(self, lab: Lab | None = None) -> Availability:
        raise NotImplementedError

    def needs(self) -> list[str]:
        """What the stack needs from a host, in words hostprep prints."""
        return []

    def receive_mode(self, configured: str) -> str:
        """The receive mode this stack is measured in, given the configured one."""
        return configured

    def measure(self, ctx: RunContext, params: PingPongParams, spec: CaseSpec, engine: str) -> list[CaseResult]:
        """Run one engine (one of `engines`) on one cell; each row carries its evidence."""
        raise NotImplementedError

    def group(self, spec: CaseSpec) -> str:
        return group_name(self.name, spec.proto, spec.size, spec.receive)

    def row(self, spec: CaseSpec, engine: str, role: str, timestamps: str, **kw: Any) -> CaseResult:
        """A result row of this stack's group, with the stack recorded in its params."""
        params = {"stack": self.name, "proto": spec.proto, "size": spec.size, "receive": spec.receive,
                  **kw.pop("params", {})}
        return CaseResult(group=group_name(self.name, spec.proto, spec.size, spec.receive), engine=engine,
                          role=role, metric=RTT, timestamps=timestamps, params=params, **kw)


def not_accelerated(result: CaseResult, evidence: Evidence) -> CaseResult:
    """The row of a stack that ran but showed no sign of carrying the traffic: no figures under its name."""
    result.samples_ns = None
    result.send_ns = None
    result.corrected_ns = None
    result.complete = False
    result.note = f"not accelerated: {evidence.summary}" + (f"; {result.note}" if result.note else "")
    result.params["evidence"] = {"holds": False, **evidence.facts}
    return result


def with_evidence(result: CaseResult, evidence: Evidence) -> CaseResult:
    """Attach the evidence to a row: its facts in params, its summary in the note; a failed one voids the row."""
    if not evidence.holds:
        return not_accelerated(result, evidence)
    result.params["evidence"] = {"holds": True, **evidence.facts}
    result.note = f"evidence: {evidence.summary}" + (f"; {result.note}" if result.note else "")
    return result


def run_quiet(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def ethtool_features(host: LabHost, features: dict[str, str]) -> Iterator[dict[str, str]]:
    """Set offload features (`ethtool -K`) on the host's lab interface and put back the old values after."""
    before = read_features(host)
    changed = {k: v for k, v in features.items() if before.get(k) != v}
    try:
        if changed:
            args = [x for kv in changed.items() for x in kv]
            out = run_quiet(host.command(["ethtool", "-K", host.ifname, *args]))
            if out.returncode != 0:
                raise OSError(f"ethtool -K {host.ifname} {' '.join(args)}: {out.stderr.strip()}")
        yield before
    finally:
        restore = {k: before[k] for k in changed if k in before}
        if restore:
            run_quiet(host.command(["ethtool", "-K", host.ifname, *[x for kv in restore.items() for x in kv]]))


_FEATURE_NAMES = {"generic-receive-offload": "gro", "tcp-segmentation-offload": "tso",
                  "tx-checksumming": "tx", "rx-checksumming": "rx", "generic-segmentation-offload": "gso"}


def read_features(host: LabHost) -> dict[str, str]:
    """The interface's offloads by ethtool's short names (gro, tso, tx, rx, gso): 'on' or 'off'."""
    out = run_quiet(host.command(["ethtool", "-k", host.ifname])).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        short = _FEATURE_NAMES.get(name.strip())
        if short:
            found[short] = value.split()[0] if value.split() else ""
    return found


@contextlib.contextmanager
def static_neighbour(host: LabHost, peer: LabHost) -> Iterator[str]:
    """A permanent neighbour entry on `host` for `peer`'s address: a raw endpoint on the peer takes every frame,
    ARP included, so the kernel could never resolve it. Removed afterwards."""
    mac = interface_mac(peer)
    out = run_quiet(host.command(["ip", "neigh", "replace", peer.address, "lladdr", mac, "dev", host.ifname,
                                  "nud", "permanent"]))
    if out.returncode != 0:
        raise OSError(f"ip neigh replace {peer.address}: {out.stderr.strip()}")
    try:
        yield mac
    finally:
        run_quiet(host.command(["ip", "neigh", "del", peer.address, "dev", host.ifname]))


def link_info(host: LabHost, *, stats: bool = False) -> dict[str, Any]:
    """`ip -j link show` of the host's lab interface, read inside its namespace (a plain nsenter --net keeps
    the root namespace's /sys, so /sys/class/net there would describe other interfaces)."""
    import json

    out = run_quiet(host.command(["ip", "-j", *(["-s"] if stats else []), "-d", "link", "show", "dev", host.ifname]))
    try:
        return json.loads(out.stdout)[0]
    except (json.JSONDecodeError, IndexError):
        raise OSError(f"ip link show {host.ifname}: {out.stderr.strip() or 'no output'}") from None


def interface_mac(host: LabHost) -> str:
    return link_info(host)["address"]


def xdp_program(host: LabHost) -> dict[str, Any] | None:
    """The XDP program attached to the host's lab interface ({"name", "id", "mode"}), or None."""
    try:
        return xdp_of(link_info(host))
    except OSError:
        return None


def xdp_of(link: dict[str, Any]) -> dict[str, Any] | None:
    """The XDP program in one interface of `ip -j -d link show` output, or None."""
    xdp = link.get("xdp") or {}
    if "prog" not in xdp:
        return None
    modes = {1: "native", 2: "generic", 3: "offload"}
    return {"name": xdp["prog"].get("name"), "id": xdp["prog"].get("id"), "mode": modes.get(xdp.get("mode"), "?")}


def detach_xdp(host: LabHost) -> None:
    """Detach whatever XDP program is left on the host's lab interface (ours: a reflector or testpmd that did not
    get to detach its own), so that the next stack on this veth starts from a bare interface."""
    for mode in ("xdp", "xdpgeneric", "xdpdrv"):
        run_quiet(host.command(["ip", "link", "set", "dev", host.ifname, mode, "off"]))
