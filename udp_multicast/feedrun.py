"""One feed run on a bridge lab: re-request server and publisher on host `pub`, subscribers elsewhere.

Latency is one-way, on one clock: the publisher's CLOCK_MONOTONIC just before sendto() and each
subscriber's CLOCK_MONOTONIC just after recvmsg() (same machine, so the same clock). The kernel's
software receive timestamp (CLOCK_REALTIME, SO_TIMESTAMPING) against the publisher's CLOCK_REALTIME
at send gives the wire-to-socket part without the subscriber's wake-up.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latlab import helper
from latlab.loss import dropped, udp_loss
from latlab.procs import Proc, running
from latlab.topology import Lab
from udp_multicast.publisher import PublisherConfig, PublisherResult
from udp_multicast.rerequest import RerequestConfig, RerequestResult
from udp_multicast.subscriber import SubscriberConfig, SubscriberSummary

PUBLISHER_TIMESTAMPS = ("publisher CLOCK_MONOTONIC before sendto() → subscriber CLOCK_MONOTONIC after recvmsg() "
                        "(one machine, one clock)")


@dataclass
class FeedSpec:
    """What to publish and how."""

    group: str = "239.77.0.1"
    port: int = 26477
    session: str = "LATLAB0001"
    source: str = "synthetic:40"
    messages: int = 10_000
    rate: float = 10_000.0
    payload: int = 1472
    loss_percent: dict[str, float] = field(default_factory=dict)
    rerequest: bool = True
    mode: str = "incremental"
    packet_rate: float = 1000.0
    instruments: int = 100
    idle_timeout: float = 5.0
    engine: str = "c"


@dataclass
class SubscriberResult:
    name: str
    summary: SubscriberSummary
    latency_ns: np.ndarray
    corrected_ns: np.ndarray
    kernel_ns: np.ndarray
    send_ns: np.ndarray
    recovery_ns: np.ndarray
    staleness_ns: np.ndarray
    injected_drops: int = 0


@dataclass
class FeedRunResult:
    spec: FeedSpec
    publisher: PublisherResult
    rerequest: RerequestResult
    subscribers: list[SubscriberResult]

    @property
    def live_loss(self) -> int:
        """Messages that some subscriber did not receive live (before recovery)."""
        return max((self.publisher.messages - s.summary.live_messages for s in self.subscribers), default=0)


def run_feed(lab: Lab, spec: FeedSpec, workdir: Path, tag: str) -> FeedRunResult:
    """Run one feed from `pub` to every other host; everything started here is stopped here."""
    py = [sys.executable, "-m"]
    pub = lab.hosts["pub"]
    subs = [h for name, h in lab.hosts.items() if name != "pub"]
    common = {"group": spec.group, "port": spec.port}
    with contextlib.ExitStack() as stack:
        rr_cfg = RerequestConfig(iface=pub.address, payload=spec.payload, idle_timeout=spec.idle_timeout + 10,
                                 **common)
        rr_proc = stack.enter_context(running(
            pub.command([*py, "udp_multicast.rerequest", *rr_cfg.argv()]),
            workdir / f"rerequest-{tag}.log", "re-request server", ready="READY"))
        rr_port = int(helper.ready_fields(rr_proc.output())["port"])
        sub_procs = []
        for host in subs:
            loss = spec.loss_percent.get(host.name, 0.0)
            stack.enter_context(udp_loss(host, spec.port, loss, f"latlab_loss_{tag}_{host.name}"))
            out = workdir / f"sub-{tag}-{host.name}.npz"
            sub_cfg = SubscriberConfig(iface=host.address, name=host.name, engine=spec.engine,
                                       idle_timeout=spec.idle_timeout, out=out,
                                       rerequest=f"{pub.address}:{rr_port}" if spec.rerequest else None,
                                       conflated=spec.mode == "conflated", cpu=host.cpu, **common)
            argv = host.command([*py, "udp_multicast.subscriber", *sub_cfg.argv()])
            proc = stack.enter_context(running(argv, workdir / f"sub-{tag}-{host.name}.log", f"subscriber {host.name}",
                                               ready="READY"))
            sub_procs.append((host, proc, out, loss))
        time.sleep(0.2)  # IGMP joins reach the bridge
        pub_out = workdir / f"pub-{tag}.npz"
        pub_cfg = PublisherConfig(iface=pub.address, session=spec.session, source=spec.source,
                                  messages=spec.messages, rate=spec.rate, payload=spec.payload, mode=spec.mode,
                                  packet_rate=spec.packet_rate, instruments=spec.instruments, engine=spec.engine,
                                  out=pub_out, cpu=pub.cpu, **common)
        pub_proc = Proc(pub.command([*py, "udp_multicast.publisher", *pub_cfg.argv()]), workdir / f"pub-{tag}.log",
                        "publisher")
        try:
            pub_proc.wait(timeout=spec.messages / max(spec.rate, 1.0) + 60)
        finally:
            pub_proc.stop()
        publisher = helper.result(pub_proc.output(), PublisherResult, pub_proc.name)
        results = []
        for host, proc, out, loss in sub_procs:
            try:
                proc.wait(timeout=spec.idle_timeout + 30)
            except Exception:
                proc.stop()
            injected = dropped(host, f"latlab_loss_{tag}_{host.name}") if loss else 0
            results.append(_subscriber_result(host.name, helper.result(proc.output(), SubscriberSummary, proc.name),
                                              out, pub_out, injected))
        rr_proc.stop()
        # stopped by us: a server killed before its RESULT line has none
        rerequest = helper.result_or_none(rr_proc.output(), RerequestResult, rr_proc.name) or RerequestResult()
    return FeedRunResult(spec, publisher, rerequest, results)


def _subscriber_result(name: str, summary: SubscriberSummary, out: Path, pub_out: Path,
                       injected: int) -> SubscriberResult:
    empty = np.zeros(0, np.int64)
    if not out.exists():
        return SubscriberResult(name, summary, empty, empty, empty, empty, empty, empty, injected)
    sub = np.load(out)
    if not pub_out.exists():
        return SubscriberResult(name, summary, empty, empty, empty, empty, sub["recovery_ns"], sub["staleness_ns"],
                                injected)
    pub = np.load(pub_out)
    pub_first = pub["first_seq"]
    idx = np.searchsorted(pub_first, sub["first_seq"])
    ok = (idx < len(pub_first)) & (pub_first[np.minimum(idx, len(pub_first) - 1)] == sub["first_seq"])
    idx, counts = idx[ok], sub["count"][ok]
    packet_latency = sub["t_user_ns"][ok] - pub["send_mono_ns"][idx]
    kernel = sub["t_kernel_real_ns"][ok] - pub["send_real_ns"][idx]
    latency = np.repeat(packet_latency, counts)
    send = np.repeat(pub["send_mono_ns"][idx], counts)
    period = float(pub["period_ns"][0])
    if period > 0:
        firsts = np.repeat(sub["first_seq"][ok], counts)
        offsets = np.arange(len(firsts)) - np.repeat(np.cumsum(counts) - counts, counts)
        intended = pub["t0_ns"][0] + (firsts + offsets - 1) * period
        corrected = np.repeat(sub["t_user_ns"][ok], counts) - intended.astype(np.int64)
    else:
        corrected = latency
    return SubscriberResult(name, summary, latency, corrected, np.repeat(kernel[kernel > 0], counts[kernel > 0]),
                            send, sub["recovery_ns"], sub["staleness_ns"], injected)
