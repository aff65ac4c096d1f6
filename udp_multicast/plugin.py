"""The `multicast` benchmark: MoldUDP64 fan-out on a bridge lab — rate sweep, latency per subscriber at
half the loss-free rate, the publisher's top rate beside sockperf's, and conflated snapshots."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from latlab.config import (
    AnyNumberOf,
    CpuId,
    OneOrMore,
    Port,
    Schema,
    cpu_choice,
    ipv4_network,
    multicast_group,
    validate,
)
from latlab.errors import ConfigError, LatlabError, MissingTool
from latlab.plugin import RunContext, SectionBenchmark
from latlab.reference import sockperf
from latlab.results import ONE_WAY, RTT, CaseResult
from latlab.topology import OWN, BridgeSpec, bridge_lab
from udp_multicast.feedrun import PUBLISHER_TIMESTAMPS, FeedRunResult, FeedSpec, run_feed

KERNEL_TIMESTAMPS = "publisher CLOCK_REALTIME before sendto() → kernel software receive timestamp (SO_TIMESTAMPING)"
STALENESS = "staleness"


@dataclass(frozen=True)
class MulticastParams:
    subscribers: int
    network: ipaddress.IPv4Network
    group: str
    port: int
    message_size: int
    payload: int
    sweep_rates: list[int]
    step_seconds: float
    latency_fraction: float
    conflated_packet_rate: float
    conflated_instruments: int
    publisher_cpu: int | None
    engine: str
    subscriber_cpu: int | None
    references: list[str]


class MulticastConfig(Schema):
    """The `multicast` section as written in the config."""

    subscribers: Annotated[int, Field(ge=1, le=8)] = 3
    network: str = "10.78.0.0/24"
    group: str = "239.77.0.1"
    port: Port = 26477
    message_size: Annotated[int, Field(ge=9, le=1400)] = 40
    payload: Annotated[int, Field(ge=64, le=1472)] = 1472
    sweep_rates: OneOrMore(Annotated[int, Field(ge=1, le=20_000_000)]) = (  # type: ignore[valid-type]
        50_000, 100_000, 200_000, 400_000, 800_000)
    step_seconds: Annotated[float, Field(ge=0.1, le=600)] = 1.0
    latency_fraction: Annotated[float, Field(ge=0.01, le=1)] = 0.5
    conflated_packet_rate: Annotated[float, Field(ge=1, le=1_000_000)] = 2000.0
    conflated_instruments: Annotated[int, Field(ge=1, le=65535)] = 200
    engine: Literal["c", "python"] = "c"
    publisher_cpu: CpuId | None = None  # absent: the first CPU; null: unpinned
    subscriber_cpu: CpuId | None = None  # absent: the second CPU; null: unpinned
    references: AnyNumberOf(Literal["sockperf"]) = ("sockperf",)  # type: ignore[valid-type]


def configure(data: Mapping[str, Any] | None, path: str = "multicast") -> MulticastParams:
    """Validate the section; every error names its field."""
    section = validate(MulticastConfig, data, path)
    if list(section.sweep_rates) != sorted(section.sweep_rates):
        raise ConfigError(f"{path}.sweep_rates", "must rise")
    return MulticastParams(
        subscribers=section.subscribers, network=ipv4_network(section.network, f"{path}.network"),
        group=multicast_group(section.group, f"{path}.group"), port=section.port,
        message_size=section.message_size, payload=section.payload, sweep_rates=list(section.sweep_rates),
        step_seconds=section.step_seconds, latency_fraction=section.latency_fraction,
        conflated_packet_rate=section.conflated_packet_rate, conflated_instruments=section.conflated_instruments,
        engine=section.engine, publisher_cpu=cpu_choice(section, "publisher_cpu", 0, path),
        subscriber_cpu=cpu_choice(section, "subscriber_cpu", 1, path), references=list(section.references))


def _pooled(run: FeedRunResult, attr: str) -> np.ndarray:
    arrays = [getattr(s, attr) for s in run.subscribers if len(getattr(s, attr))]
    return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)


def _loss_fraction(run: FeedRunResult) -> float:
    sent = max(1, run.publisher.messages)
    return run.live_loss / sent


@dataclass
class FanoutCase:
    """Everything multicast, on one bridge lab built for the case and removed after it."""

    params: MulticastParams
    best_packet_rate: float = 0.0  # the highest loss-free packet rate of this run (set by run)

    producer = "udp_multicast.feedrun (publisher and subscribers; sockperf for the top rate)"
    timestamps = KERNEL_TIMESTAMPS

    @property
    def title(self) -> str:
        return f"multicast fan-out to {self.params.subscribers}"

    @property
    def expected_seconds(self) -> float:
        p = self.params
        return len(p.sweep_rates) * (p.step_seconds + 1.5) + 4 * (p.step_seconds + 1.5) + 6

    def run(self, ctx: RunContext) -> list[CaseResult]:
        p = self.params
        names = ("pub", *(f"sub{i + 1}" for i in range(p.subscribers)))
        cpus = {name: p.publisher_cpu if name == "pub" else p.subscriber_cpu for name in names}
        spec = BridgeSpec(p.network, names, cpus)
        results: list[CaseResult] = []
        path: dict[str, Any] = {}
        try:
            with bridge_lab(spec, ctx.tag) as lab:
                path = lab.describe()
                self._run(lab, ctx, results)
        except KeyboardInterrupt:
            results.append(CaseResult(group="mcast", engine="latlab", role="context", metric=ONE_WAY,
                                      timestamps=PUBLISHER_TIMESTAMPS, complete=False, note="incomplete: interrupted"))
        for result in results:
            result.path = result.path or path
        return results

    def _feed(self, lab: Any, ctx: RunContext, rate: float, tag: str, **extra: Any) -> FeedRunResult:
        p = self.params
        messages = max(1000, int(rate * p.step_seconds)) if rate else int(500_000 * p.step_seconds)
        spec = FeedSpec(group=p.group, port=p.port, source=f"synthetic:{p.message_size}", messages=messages,
                        rate=rate, payload=p.payload, engine=p.engine, **extra)
        return run_feed(lab, spec, ctx.workdir, tag)

    def _run(self, lab: Any, ctx: RunContext, out: list[CaseResult]) -> None:
        p = self.params
        loss_free = 0
        self.best_packet_rate = 0.0
        for rate in p.sweep_rates:
            run = self._feed(lab, ctx, rate, f"sweep{rate}")
            loss = _loss_fraction(run)
            if loss == 0:
                self.best_packet_rate = max(self.best_packet_rate, run.publisher.packet_rate)
            out.append(CaseResult(
                group="mcast sweep", engine=f"latlab {rate:,}/s", role="context", metric=ONE_WAY,
                timestamps=PUBLISHER_TIMESTAMPS, samples_ns=_pooled(run, "latency_ns"),
                send_ns=_pooled(run, "send_ns"),
                figures={"msg/s": run.publisher.message_rate, "pkt/s": run.publisher.packet_rate,
                         "loss %": 100 * loss}, params={"rate": rate, "subscribers": p.subscribers}))
            if loss > 0:
                break
            achieved = run.publisher.message_rate
            if achieved < 0.9 * rate:
                # The publisher could not offer this rate: the highest loss-free rate is what it did send.
                loss_free = max(loss_free, int(achieved))
                out[-1].note = f"publisher saturated at {achieved:,.0f} msg/s (offered {rate:,})"
                break
            loss_free = rate
        if not loss_free:
            raise LatlabError(f"loss already at {p.sweep_rates[0]:,} msg/s: lower multicast.sweep_rates")
        target = int(loss_free * p.latency_fraction)
        run = self._feed(lab, ctx, target, "latency")
        group = f"mcast {p.message_size}B @{target:,}/s"
        for sub in run.subscribers:
            out.append(CaseResult(
                group=group, engine=f"latlab {sub.name}", role="own", metric=ONE_WAY, timestamps=PUBLISHER_TIMESTAMPS,
                samples_ns=sub.latency_ns, send_ns=sub.send_ns, corrected_ns=sub.corrected_ns,
                complete=sub.summary.complete,
                figures={"delivered": sub.summary.delivered, "gaps": sub.summary.gaps},
                params={"rate": target, "highest_loss_free_rate": loss_free}, budget="market_data_one_way"))
            out.append(CaseResult(group=group, engine=f"kernel rx {sub.name}", role="context", metric=ONE_WAY,
                                  timestamps=KERNEL_TIMESTAMPS, samples_ns=sub.kernel_ns,
                                  note="to the socket, before the subscriber wakes"))
        self._reference_underload(lab, ctx, group, target, out)
        top = self._feed(lab, ctx, 0, "max")
        if _loss_fraction(top) == 0:
            self.best_packet_rate = max(self.best_packet_rate, top.publisher.packet_rate)
        figures = {"pkt/s": top.publisher.packet_rate, "msg/s": top.publisher.message_rate,
                   "loss %": 100 * _loss_fraction(top), "highest loss-free msg/s": loss_free,
                   "highest loss-free pkt/s": self.best_packet_rate}
        out.append(CaseResult(group="mcast top rate", engine="latlab publisher", role="own", metric=ONE_WAY,
                              timestamps=PUBLISHER_TIMESTAMPS, samples_ns=_pooled(top, "latency_ns"),
                              figures=figures, note=f"{p.payload} B packets, {p.subscribers} subscribers"))
        self._reference_throughput(lab, ctx, top, out)
        self._conflated(lab, ctx, target, run, out)

    def _reference_throughput(self, lab: Any, ctx: RunContext, top: FeedRunResult, out: list[CaseResult]) -> None:
        p = self.params
        if "sockperf" not in p.references:
            return
        subs = [h for n, h in lab.hosts.items() if n != "pub"]
        base = {"group": "mcast top rate", "engine": "sockperf throughput", "role": "reference", "metric": "rate",
                "timestamps": "sockperf's sender message rate (no latency in this mode)"}
        try:
            tp = sockperf.multicast_throughput(sender=lab.hosts["pub"], servers=subs, group=p.group,
                                               port=p.port + 1, size=p.payload, duration_s=max(1.0, p.step_seconds),
                                               workdir=ctx.workdir, tag="tp")
        except MissingTool as exc:
            out.append(CaseResult(**base, complete=False, note=exc.short))
            return
        unpaced = top.publisher.packet_rate / tp.rate if tp.rate else 0.0
        ratio = self.best_packet_rate / tp.rate if tp.rate else 0.0
        received, dropped = sum(tp.received.values()), sum(tp.dropped.values())
        lost = 100 * dropped / (received + dropped) if received + dropped else 0.0
        out.append(CaseResult(
            **base, figures={"pkt/s": tp.rate, "latlab/sockperf pkt/s": ratio, "unpaced run/sockperf": unpaced,
                             "receiver loss %": lost},
            note=f"{p.payload} B datagrams to the same group and {p.subscribers} subscribers, same CPUs; latlab's "
                 "figure is its highest loss-free packet rate in this run (sweep steps and the unpaced run); "
                 "sockperf does not count loss: its receivers' kernels dropped the share given (RcvbufErrors)"))

    def _reference_underload(self, lab: Any, ctx: RunContext, group: str, rate: int, out: list[CaseResult]) -> None:
        p = self.params
        if "sockperf" not in p.references:
            return
        base = {"group": group, "engine": "sockperf under-load", "role": "context", "metric": RTT,
                "timestamps": sockperf.TIMESTAMPS}
        # sockperf sends one message per datagram; latlab packs, so compare at latlab's packet rate.
        packets = max(100, int(rate / max(1, (p.payload - 20) // (p.message_size + 2))))
        try:
            full = sockperf.multicast_underload(sender=lab.hosts["pub"], server=lab.hosts["sub1"], group=p.group,
                                                port=p.port + 2, size=max(p.message_size, 14), rate=packets,
                                                duration_s=max(1.0, p.step_seconds), workdir=ctx.workdir, tag="ul")
        except MissingTool as exc:
            out.append(CaseResult(**base, complete=False, note=exc.short))
            return
        out.append(CaseResult(**base, samples_ns=full.rtt_ns, send_ns=full.send_ns,
                              note=f"RTT: sub1 replies by unicast; {packets:,} datagrams/s; latlab rows are one-way"))

    def _conflated(self, lab: Any, ctx: RunContext, rate: int, incremental: FeedRunResult,
                   out: list[CaseResult]) -> None:
        p = self.params
        run = self._feed(lab, ctx, rate, "conflated", mode="conflated", packet_rate=p.conflated_packet_rate,
                         instruments=p.conflated_instruments)
        group = f"mcast conflated vs incremental @{rate:,}/s"
        out.append(CaseResult(group=group, engine="latlab incremental", role="context", metric=ONE_WAY,
                              timestamps=PUBLISHER_TIMESTAMPS, samples_ns=_pooled(incremental, "latency_ns"),
                              note="every update, latency from send"))
        out.append(CaseResult(
            group=group, engine="latlab conflated", role="context", metric=STALENESS,
            timestamps="age of the newest update in each delivered snapshot: receive time − update time",
            samples_ns=_pooled(run, "staleness_ns"),
            figures={"pkt/s cap": p.conflated_packet_rate, "instruments": p.conflated_instruments,
                     "updates": run.publisher.updates, "snapshots": run.publisher.messages}))


# OWN: its bridge of publisher and subscribers, described in each result
BENCHMARK = SectionBenchmark("multicast", MulticastConfig, OWN, configure, lambda params: [FanoutCase(params)],
                             lambda: {"sockperf": sockperf.version()})
