"""The `venues` benchmark: a smart order router across two exchange simulators, and what latency costs.

Two venues quote the same instrument in step; the slow one adds a response time of its own (held in its loop:
this kernel has no netem) to everyone but a participant colocated with it, who takes its best quote a set time
after seeing it. The router buys a parent order across both each round. Swept over the slow venue's added time,
the rows give the router's parent completion, fill rate, effective price against the consolidated best (fees
included), the shares it missed at the slow venue, tick-to-trade per venue, and the cost of latency: missed
shares and slippage per µs of added response time (least squares over the sweep).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from latlab.config import CpuId, Schema, cpu_choice, ipv4_network, multicast_group, validate
from latlab.errors import ConfigError, LatlabError
from latlab.plugin import RunContext, SectionBenchmark
from latlab.results import ONE_WAY, RTT, CaseResult
from latlab.topology import OWN, BridgeSpec, bridge_lab
from trader.venues_run import PARTICIPANT, ROUTER, VenueSetup, VenuesRun, VenuesSetup, run_venues

COMPLETION = "parent completion"
COMPLETION_TIMESTAMPS = "router CLOCK_REALTIME: the parent's first child sent → its last answer (fill or cancel)"
W2W = "wire-to-wire"
W2W_TIMESTAMPS = ("venue: CLOCK_REALTIME before sendto() of the round's quotes → kernel software receive timestamp "
                  "(SO_TIMESTAMPING) of the router's first order bytes; one process, one clock")
ROUND_TRIP_TIMESTAMPS = "router CLOCK_REALTIME: just before a child's send → its loop reads the venue's Accepted"
CENTS = 100  # price units (1/10,000 $) per cent
HOSTS = ("v1", "v2", "sor", "hft")


class QuoteLevel(Schema):
    """One resting sell a venue posts each round."""

    ticks: Annotated[int, Field(ge=0, le=1000)]           # above the base price, in cents
    shares: Annotated[int, Field(ge=1, le=1_000_000)]


class VenueSection(Schema):
    """`venues.fast` / `venues.slow`: a venue's name, quotes and fees."""

    name: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
    quotes: Annotated[list[QuoteLevel], Field(min_length=1, max_length=16)]
    taker_fee: Annotated[int, Field(ge=-10_000, le=10_000)] = 0   # per share, 1/10,000 $
    maker_fee: Annotated[int, Field(ge=-10_000, le=10_000)] = 0   # charged to the venue's own resting quotes


class VenuesConfig(Schema):
    """The `venues` section as written in the config."""

    network: str = "10.81.0.0/24"
    group: str = "239.77.3.1"                     # the fast venue's feed; the slow one's is the next address
    rounds: Annotated[int, Field(ge=5, le=100_000)] = 200
    interval_ms: Annotated[float, Field(ge=2, le=10_000)] = 20.0
    quote_ms: Annotated[float, Field(ge=1, le=10_000)] = 15.0   # a round's quotes live this long
    parent_shares: Annotated[int, Field(ge=1, le=1_000_000)] = 600
    limit_ticks: Annotated[int, Field(ge=0, le=1000)] = 2       # the parent's limit, cents above the base price
    # the slow venue's added response time, swept
    delays_us: Annotated[list[Annotated[float, Field(ge=0, le=1_000_000)]], Field(min_length=1, max_length=20)] = \
        Field(default_factory=lambda: [0.0, 100.0, 200.0, 400.0, 800.0, 1600.0])
    participant_react_us: Annotated[float, Field(ge=0, le=1_000_000)] = 500.0
    engine: Literal["c", "python"] = "c"
    receive: Literal["busy-poll", "blocking"] = "busy-poll"  # the router's; the venues and the participant block
    router_cpu: CpuId | None = None  # absent: the second CPU (busy-poll) or unpinned (blocking); null: unpinned
    fast: VenueSection = VenueSection(name="FAST", quotes=[QuoteLevel(ticks=1, shares=300),
                                                           QuoteLevel(ticks=2, shares=300)], taker_fee=30)
    slow: VenueSection = VenueSection(name="SLOW", quotes=[QuoteLevel(ticks=0, shares=300),
                                                           QuoteLevel(ticks=2, shares=300)], taker_fee=20)
    password: str | None = None

    @model_validator(mode="after")
    def _fits(self) -> VenuesConfig:
        if self.quote_ms >= self.interval_ms:
            raise ValueError("quote_ms must be below interval_ms (a round's quotes are gone before the next)")
        if max(self.delays_us) / 1000 >= self.quote_ms:
            raise ValueError("every delay in delays_us must be below quote_ms (orders must meet their round)")
        if self.fast.name == self.slow.name:
            raise ValueError("the two venues need different names")
        return self


def configure(data: Mapping[str, Any] | None, path: str = "venues") -> VenuesSetup:
    """Validate the section; every error names its field."""
    section = validate(VenuesConfig, data, path)
    network = ipv4_network(section.network, f"{path}.network")
    if network.num_addresses < len(HOSTS) + 2:
        raise ConfigError(f"{path}.network", f"{network} has no room for {len(HOSTS)} hosts")
    group = multicast_group(section.group, f"{path}.group")
    password = section.password or ""
    if section.password is not None and (not 1 <= len(password) <= 10
                                         or not all(0x21 <= ord(c) < 0x7F for c in password)):
        raise ConfigError(f"{path}.password", "a SoupBinTCP password: 1 to 10 printable ASCII characters")

    busy, named = section.receive == "busy-poll", "router_cpu" in section.model_fields_set
    router_cpu = cpu_choice(section, "router_cpu", 1, path) if busy or named else None

    def venue(v: VenueSection) -> VenueSetup:
        return VenueSetup(v.name, tuple((q.ticks, q.shares) for q in v.quotes), v.taker_fee, v.maker_fee)

    return VenuesSetup(fast=venue(section.fast), slow=venue(section.slow), rounds=section.rounds,
                       interval_ms=section.interval_ms, quote_ms=section.quote_ms,
                       parent_shares=section.parent_shares, limit_ticks=section.limit_ticks,
                       participant_react_us=section.participant_react_us, engine=section.engine,
                       receive=section.receive, router_cpu=router_cpu,
                       group=group,
                       second_group=str(ipaddress.IPv4Address(group) + 1), password=password,
                       delays_us=tuple(section.delays_us), network=str(network))


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    return float(values.mean()) if len(values) else float("nan")


def point_figures(run: VenuesRun, setup: VenuesSetup) -> dict[str, float]:
    """One sweep point: what the router got, missed and paid, per parent."""
    p = run.parents
    sent = p["first_sent_ns"] > 0
    slow = [str(v) for v in p["venues"]].index(setup.slow.name)
    n = max(int(sent.sum()), 1)
    best_slow = min(setup.slow.quotes)[1]
    decided = p["first_sent_ns"][sent] - p["trigger_rx_ns"][sent]
    round_trips = {}
    for venue in (setup.fast.name, setup.slow.name):
        rt = run.order_round_trip(venue)
        if len(rt):
            round_trips[f"order round trip at {venue} p50 µs"] = float(np.percentile(rt, 50)) / 1000
    return {**round_trips,
        "parents": float(sent.sum()),
        "router kernel rx → first child sent p50 µs": float(np.percentile(decided, 50)) / 1000 if len(decided) else 0.0,
        "fill rate %": 100 * float(p["filled"][sent].sum()) / (n * setup.parent_shares),
        f"missed at {setup.slow.name} per parent": float((p["asked"][sent, slow] - p["got"][sent, slow]).sum()) / n,
        "slippage ¢/share": _mean(p["slippage"][sent]) / CENTS,
        "reroutes per parent": float(p["reroutes"][sent].sum()) / n,
        f"participant took of {setup.slow.name}'s best %": 100 * run.taken(setup.slow.name, PARTICIPANT)
        / max(best_slow * setup.rounds, 1),
    }


def _from_router_rx(run: VenuesRun, venue: str) -> np.ndarray:
    """Per round the router answered at `venue`: its order's kernel rx there − the router's kernel rx of the
    packet that completed its view (the latest it decided on before that order): the router's own reaction."""
    r = run.rounds[venue]
    j = [str(u) for u in r["users"]].index(ROUTER)
    order_rx = r["t_rx"][:, j]
    order_rx = order_rx[order_rx > 0]
    trigger = np.sort(run.parents["trigger_rx_ns"][run.parents["trigger_rx_ns"] > 0])
    if not len(trigger) or not len(order_rx):
        return np.zeros(0, np.int64)
    at = np.searchsorted(trigger, order_rx) - 1
    ok = at >= 0
    return (order_rx[ok] - trigger[at[ok]])


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (nan with fewer than two distinct xs or a nan)."""
    if len(set(xs)) < 2 or any(np.isnan(ys)):
        return float("nan")
    return float(np.polyfit(np.array(xs), np.array(ys), 1)[0])


@dataclass
class VenuesCase:
    setup: VenuesSetup

    producer = "trader.venues_run (two exchange simulators, the smart order router, a colocated participant)"
    timestamps = COMPLETION_TIMESTAMPS

    @property
    def title(self) -> str:
        return "venues"

    @property
    def expected_seconds(self) -> float:
        s = self.setup
        return len(s.delays_us) * (s.rounds * s.interval_ms / 1000 + 9)

    def run(self, ctx: RunContext) -> list[CaseResult]:
        s = self.setup
        spec = BridgeSpec(ipaddress.IPv4Network(s.network), HOSTS, dict.fromkeys(HOSTS))
        runs: list[VenuesRun] = []
        complete, why = True, ""
        path: dict[str, Any] = {}
        try:
            with bridge_lab(spec, ctx.tag) as lab:
                path = lab.describe()
                for k, delay in enumerate(s.delays_us):
                    runs.append(run_venues(lab, s, delay, ctx.workdir, f"d{k}"))
        except KeyboardInterrupt:
            complete, why = False, "incomplete: interrupted"
        except LatlabError as exc:
            if not runs:
                raise
            complete, why = False, f"incomplete: {exc}"
        out = self._rows(runs, complete, why)
        for result in out:
            result.path = path
        return out

    def _rows(self, runs: list[VenuesRun], complete: bool, why: str) -> list[CaseResult]:
        s = self.setup
        engine = f"latlab router ({s.engine})"
        params = {"receive": s.receive, "router_cpu": s.router_cpu,
                  "rounds": s.rounds, "interval_ms": s.interval_ms, "quote_ms": s.quote_ms,
                  "parent_shares": s.parent_shares, "limit_ticks": s.limit_ticks, "engine": s.engine,
                  "participant_react_us": s.participant_react_us,
                  "fast": {"name": s.fast.name, "quotes": s.fast.quotes, "taker_fee": s.fast.taker_fee,
                           "maker_fee": s.fast.maker_fee},
                  "slow": {"name": s.slow.name, "quotes": s.slow.quotes, "taker_fee": s.slow.taker_fee,
                           "maker_fee": s.slow.maker_fee}}
        out: list[CaseResult] = []
        points = []
        disagreed = False  # a point whose fills the venues do not confirm: that row, and the rows over all points
        for run in runs:
            figures = point_figures(run, s)
            points.append((run.slow_extra_us, figures))
            confirmed = sum(run.taken(v, ROUTER) for v in (s.fast.name, s.slow.name))
            notes = [f"{s.slow.name} adds {run.slow_extra_us:g} µs to the router's orders (in the venue's loop), "
                     f"not to the colocated participant's"]
            filled = int(run.parents["filled"].sum())
            agreed = confirmed == filled
            disagreed = disagreed or not agreed
            if not agreed:
                notes.append(f"the venues count {confirmed} shares filled, the router {filled}")
            if run.router.log:
                notes.append("router: " + "; ".join(run.router.log[:3]))
            skipped = sum(e.rounds_skipped for e in run.exchanges.values())
            if skipped:
                notes.append(f"{skipped} venue rounds skipped (late on a busy machine)")
            completion = run.parents["completion_ns"][run.parents["completion_ns"] > 0]
            sent = run.parents["first_sent_ns"][run.parents["completion_ns"] > 0]
            out.append(CaseResult(group="venues: smart order router", engine=f"{engine}, {s.slow.name} +"
                                  f"{run.slow_extra_us:g} µs", role="own", metric=COMPLETION,
                                  timestamps=COMPLETION_TIMESTAMPS, samples_ns=completion, send_ns=sent,
                                  figures=figures, note="; ".join(notes), complete=complete and agreed,
                                  params={**params, "slow_extra_us": run.slow_extra_us}))
        complete = complete and not disagreed
        for venue in (s.fast, s.slow):
            parts = [r.tick_to_trade(venue.name) for r in runs]
            samples = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
            sends = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
            reaction = np.concatenate([_from_router_rx(r, venue.name) for r in runs]) if runs else np.zeros(0)
            figures = {"from the router's kernel rx p50 µs": float(np.percentile(reaction, 50)) / 1000} \
                if len(reaction) else {}
            out.append(CaseResult(group=f"venues: tick-to-trade at {venue.name}", engine=engine, role="own",
                                  metric=W2W, timestamps=W2W_TIMESTAMPS, samples_ns=samples, send_ns=sends,
                                  figures=figures, complete=complete, params=params, budget="tick_to_trade",
                                  note=f"all {len(runs)} sweep points; the router decides on both venues' quotes, so "
                                       "a venue's figure includes waiting for the other's"))
        if runs:  # the order round trip at the router's gateway, at the first sweep point (its added time in it)
            first = runs[0]
            for venue in (s.fast, s.slow):
                added = first.slow_extra_us if venue is s.slow else 0.0
                out.append(CaseResult(group=f"venues: order round trip at {venue.name}", engine=engine, role="own",
                                      metric=RTT, timestamps=ROUND_TRIP_TIMESTAMPS,
                                      samples_ns=first.order_round_trip(venue.name), complete=complete,
                                      params={**params, "slow_extra_us": first.slow_extra_us},
                                      budget="order_round_trip",
                                      note=f"the first sweep point: {venue.name} adds {added:g} µs"))
        delays = [d for d, _ in points]
        missed = [f[f"missed at {s.slow.name} per parent"] for _, f in points]
        slip = [f["slippage ¢/share"] for _, f in points]
        cost = {f"missed shares per parent per µs at {s.slow.name}": slope(delays, missed),
                "slippage ¢/share per µs": slope(delays, slip)}
        per_point = "; ".join(f"+{d:g} µs: missed {m:.0f}, slippage {x:.3f} ¢" for d, m, x in
                              zip(delays, missed, slip, strict=True))
        fees = "fees per share: " + "; ".join(
            f"{v.name} taker {v.taker_fee / CENTS:g} ¢, maker {v.maker_fee / CENTS:g} ¢" for v in (s.fast, s.slow))
        out.append(CaseResult(group="venues: cost of latency", engine=f"{s.slow.name} added response time swept",
                              role="context", metric=ONE_WAY, timestamps="least squares over the sweep points",
                              figures=cost, complete=complete, params=params,
                              note=f"{per_point}; {fees}" + (f"; {why}" if why else "")))
        return out


# OWN: its bridge of two venues, the router and the participant, described in each result
BENCHMARK = SectionBenchmark("venues", VenuesConfig, OWN, configure, lambda setup: [VenuesCase(setup)])
