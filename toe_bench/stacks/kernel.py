"""The kernel's own stack, spinning or blocking, and the kernel with SO_BUSY_POLL."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from latlab.netstat import delta, namespace_counters
from latlab.plugin import RunContext
from latlab.results import CaseResult
from latlab.topology import Lab
from toe_bench.engine import SO_BUSY_POLL, EngineResult
from toe_bench.stacks.base import BLOCK, Availability, CaseSpec, Evidence, Stack, ethtool_features, with_evidence

if TYPE_CHECKING:
    from toe_bench.plugin import PingPongParams
    from toe_bench.runs import Runtime

BUSY_POLL_US = 50
BUSY_READ = Path("/proc/sys/net/core/busy_read")


def kernel_received(before: dict, after: dict, proto: str) -> int:
    """Datagrams (UDP) or segments (TCP) the host's kernel took in between two counter readings."""
    d = delta(before, after)
    return d["Udp"].get("InDatagrams", 0) if proto == "udp" else d["Tcp"].get("InSegs", 0)


class KernelStack(Stack):
    """Linux's own UDP/TCP stack: what every other row is compared with."""

    name = "kernel"
    what = "the kernel's UDP/TCP stack (spinning on a non-blocking recv, or blocking)"

    def detect(self, lab: Lab | None = None) -> Availability:
        return Availability(True, "always")

    def runtime(self) -> Runtime:
        from toe_bench.runs import Runtime

        return Runtime()

    @contextlib.contextmanager
    def session(self, ctx: RunContext, spec: CaseSpec) -> Iterator[Runtime]:
        yield self.runtime()

    def measure(self, ctx: RunContext, params: PingPongParams, spec: CaseSpec, engine: str) -> list[CaseResult]:
        from toe_bench.runs import run_engine, run_sockperf

        with self.session(ctx, spec) as runtime:
            before = {h: namespace_counters(ctx.lab.hosts[h]) for h in ("a", "b")}
            if engine == "latlab":
                run = run_engine(ctx, params, spec, runtime, stack=self.name, group=self.group(spec))
                result, client, srv = run.result, run.client, run.server
            else:
                result = run_sockperf(ctx, params, spec, runtime, stack=self.name, group=self.group(spec))
                client, srv = None, None
            after = {h: namespace_counters(ctx.lab.hosts[h]) for h in ("a", "b")}
        return [with_evidence(result, self.evidence(spec, result, before, after, client, srv))]

    def evidence(self, spec: CaseSpec, result: CaseResult, before: dict, after: dict,
                 client: EngineResult | None, srv: EngineResult | None) -> Evidence:
        """The server's kernel took in at least one datagram (segment) per sample."""
        got = kernel_received(before["b"], after["b"], spec.proto)
        n = 0 if result.samples_ns is None else len(result.samples_ns)
        unit = "datagrams" if spec.proto == "udp" else "segments"
        return Evidence(got >= n, {"server_kernel_rx": got, "samples": n},
                        f"server kernel took in {got} {unit} for {n} samples")


class BusyPollStack(KernelStack):
    """The kernel with SO_BUSY_POLL: a blocking receive polls the device's NAPI context instead of sleeping."""

    name = "busy-poll"
    what = (f"the kernel with SO_BUSY_POLL={BUSY_POLL_US} µs on a blocking recv; on veth GRO on and TSO off "
            "on both ends (without a NAPI context busy polling silently does nothing)")

    def detect(self, lab: Lab | None = None) -> Availability:
        # the socket option, not net.core.busy_read: that sysctl exists in the root namespace only
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, BUSY_POLL_US)
            except OSError as exc:
                return Availability(False, f"this kernel has no busy polling (CONFIG_NET_RX_BUSY_POLL): {exc.strerror}")
        return Availability(True)

    def needs(self) -> list[str]:
        return ["CONFIG_NET_RX_BUSY_POLL", "a NAPI context on the receiving device (veth: GRO on, TSO off)"]

    def receive_mode(self, configured: str) -> str:
        return BLOCK  # the point of SO_BUSY_POLL: a blocking socket that spins in the kernel

    @contextlib.contextmanager
    def session(self, ctx: RunContext, spec: CaseSpec) -> Iterator[Runtime]:
        runtime = self.runtime()
        runtime.engine_options = {"busy_poll_us": BUSY_POLL_US}
        with contextlib.ExitStack() as stack:
            for host in ("a", "b"):
                stack.enter_context(ethtool_features(ctx.lab.hosts[host], {"gro": "on", "tso": "off"}))
            # sockperf sets no SO_BUSY_POLL of its own: net.core.busy_read gives every new socket the same value.
            # It is a global setting (writable from the root namespace only), put back after the case.
            stack.enter_context(sysctl_value(BUSY_READ, str(BUSY_POLL_US)))
            yield runtime

    def evidence(self, spec: CaseSpec, result: CaseResult, before: dict, after: dict,
                 client: EngineResult | None, srv: EngineResult | None) -> Evidence:
        """BusyPollRxPackets rose on both ends, and both sockets had a NAPI context."""
        polled = {h: delta(before[h], after[h])["TcpExt"].get("BusyPollRxPackets", 0) for h in ("a", "b")}
        ids = [None if r is None else r.napi_id for r in (client, srv)]
        facts = {"busy_poll_rx_packets": polled, "client_napi_id": ids[0], "server_napi_id": ids[1]}
        napi_ok = all(v != 0 for v in ids if v is not None)
        holds = polled["a"] > 0 and polled["b"] > 0 and napi_ok
        return Evidence(holds, facts, f"BusyPollRxPackets +{polled['a']} (client) +{polled['b']} (server)"
                                      + (f", NAPI ids {ids[0]}/{ids[1]}" if client or srv else ""))


@contextlib.contextmanager
def sysctl_value(path: Path, value: str) -> Iterator[None]:
    """Write a /proc/sys value for the duration and put the old one back."""
    old = path.read_text().strip()
    try:
        if old != value:
            path.write_text(value)
        yield
    finally:
        if old != value:
            path.write_text(old)
