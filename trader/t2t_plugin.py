"""The `tick_to_trade` benchmark: wire-to-wire on the exchange side for the floor (UDP→TCP reflector)
and the trader, in alternating rounds on one lab; the trader's per-stage costs; and a race between a
full-risk path (slower store) and a minimal one."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from latlab.config import CpuId, Schema, cpu_choice, ipv4_network, multicast_group, validate
from latlab.errors import ConfigError, LatlabError
from latlab.plugin import RunContext, SectionBenchmark
from latlab.results import ONE_WAY, RTT, CaseResult
from latlab.stats import paired_percentile_difference_ci, percentile_difference_ci
from latlab.topology import OWN, BridgeSpec, bridge_lab
from trader.risk import RiskLimits
from trader.t2t_run import RunResult, TraderSetup, run_t2t
from trader.trader_core import STAGE_NAMES

W2W = "wire-to-wire"
W2W_TIMESTAMPS = ("exchange: CLOCK_REALTIME before sendto() of the trigger packet → kernel software receive "
                  "timestamp (SO_TIMESTAMPING) of the order's first bytes; one process, one clock")
FROM_RX = "tick-to-trade from the trader's kernel rx"
FROM_RX_TIMESTAMPS = ("participant: kernel software receive timestamp of the trigger packet → exchange: kernel "
                      "software receive timestamp of the order's first bytes; one host, one clock (the feed's "
                      "delivery left out)")
ROUND_TRIP_TIMESTAMPS = ("trader CLOCK_REALTIME after send() of the order → when its loop finds the exchange's first "
                         "answer readable on the session (user space, one clock)")
STAGE_TIMESTAMPS = "trader CLOCK_REALTIME after each stage; receive starts at the kernel's software rx timestamp"
RACE_GROUP = "tick-to-trade race"
RACE_LABELS = {"FULL": "full risk + sqlite store", "FAST": "minimal risk (quantity only)"}
MINIMAL_RISK = {"max_order_shares": 1000, "max_notional": 1e12, "price_band_bps": 10**9,
                "max_orders_per_second": 100_000}


@dataclass(frozen=True)
class T2TParams:
    network: ipaddress.IPv4Network
    group: str
    triggers: int
    rounds: int
    interval_ms: float
    background: int
    receive: str
    engine: str
    protocol: str
    exchange_cpu: int | None
    trader_cpu: int | None
    risk: dict[str, Any]
    race_triggers: int
    race_receive: str
    floor: str = "paired"
    password: str = ""   # of the lab's exchange logins; empty: $LATLAB_EXCHANGE_PASSWORD or a random one per run

    @property
    def floor_group(self) -> str:
        """The floor's feed group in paired mode: the address after the trader's."""
        return str(ipaddress.IPv4Address(self.group) + 1)


class RiskConfig(Schema):
    """`tick_to_trade.risk`: the trader's pre-trade limits (absent: RiskLimits' defaults)."""

    max_order_shares: Annotated[int, Field(ge=1, le=1_000_000_000)] = 1000
    max_notional: Annotated[float, Field(gt=0, le=1e12)] = 1_000_000.0  # dollars per order
    price_band_bps: Annotated[int, Field(ge=1, le=1_000_000_000)] = 500  # around the last trade
    max_orders_per_second: Annotated[int, Field(ge=1, le=1_000_000)] = 1000


class RaceConfig(Schema):
    """`tick_to_trade.race`: two traders take the same trigger."""

    triggers: Annotated[int, Field(ge=0, le=1_000_000)] = 500
    receive: Literal["busy-poll", "blocking"] = "blocking"


class TickToTradeConfig(Schema):
    """The `tick_to_trade` section as written in the config."""

    network: str = "10.79.0.0/24"
    group: str = "239.77.1.1"
    triggers: Annotated[int, Field(ge=10, le=1_000_000)] = 2000
    rounds: Annotated[int, Field(ge=1, le=10)] = 2
    interval_ms: Annotated[float, Field(ge=0.1, le=10_000)] = 2.0
    background: Annotated[int, Field(ge=0, le=60)] = 4
    receive: Literal["busy-poll", "blocking"] = "busy-poll"
    engine: Literal["c", "python"] = "c"
    protocol: Literal["ouch", "fix"] = "ouch"
    floor: Literal["paired", "process"] | None = None  # absent: paired with engine c, else process
    exchange_cpu: CpuId | None = None  # absent: the first CPU; null: unpinned
    trader_cpu: CpuId | None = None  # absent: the second CPU; null: unpinned
    risk: RiskConfig = RiskConfig()
    race: RaceConfig = RaceConfig()
    password: str | None = None  # absent: $LATLAB_EXCHANGE_PASSWORD or a random one


def configure(data: Mapping[str, Any] | None, path: str = "tick_to_trade") -> T2TParams:
    """Validate the section; every error names its field."""
    section = validate(TickToTradeConfig, data, path)
    risk = section.risk.model_dump(exclude_unset=True)
    try:
        RiskLimits(**risk)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}.risk", str(exc)) from None
    floor = section.floor or ("paired" if section.engine == "c" else "process")
    if floor == "paired" and section.engine != "c":
        raise ConfigError(f"{path}.floor", "paired floor runs on the compiled trader's loop: engine c")
    password = section.password if section.password is not None else ""
    if section.password is not None and (not 1 <= len(password) <= 10
                                         or not all(0x21 <= ord(c) < 0x7F for c in password)):
        raise ConfigError(f"{path}.password", "a SoupBinTCP password: 1 to 10 printable ASCII characters")
    return T2TParams(
        network=ipv4_network(section.network, f"{path}.network"),
        group=multicast_group(section.group, f"{path}.group"), triggers=section.triggers, rounds=section.rounds,
        interval_ms=section.interval_ms, background=section.background, receive=section.receive,
        engine=section.engine, protocol=section.protocol,
        exchange_cpu=cpu_choice(section, "exchange_cpu", 0, path),
        trader_cpu=cpu_choice(section, "trader_cpu", 1, path),
        risk=risk, race_triggers=section.race.triggers, race_receive=section.race.receive, floor=floor,
        password=password)


def _below_own_work(figures: dict[str, float], application: np.ndarray) -> str:
    """A caveat when the app cost's whole 95 % interval (its p50 without one) lies below the trader's own decode →
    encoded p50: the trader does all the floor does and more, so the floor's path must then have cost more outside
    the application ("" otherwise)."""
    cost = figures.get("app cost p50 µs")
    if cost is None or not len(application):
        return ""
    own = float(np.percentile(application, 50)) / 1000
    if figures.get("app cost p50 95% CI high µs", cost) >= own:
        return ""
    return (f"; app cost p50 {cost:.2f} µs is below the trader's own decode → encoded p50 ({own:.2f} µs), its whole "
            "interval too: the floor's path cost more outside the application, so this understates the trader's cost")


def _stage_samples(stages: np.ndarray) -> dict[str, np.ndarray]:
    """Per-stage durations (ns) from the trader's rows, and the whole in-trader time."""
    out = {}
    ok = stages[stages[:, 0] > 0]
    for k in range(1, len(STAGE_NAMES)):
        out[STAGE_NAMES[k]] = ok[:, k] - ok[:, k - 1]
    out["in trader (kernel rx → sent)"] = ok[:, -1] - ok[:, 0]
    out["application (decode → encoded)"] = ok[:, 6] - ok[:, 1]
    return out


def _app_cost(t2t: np.ndarray, floor: np.ndarray,
              pairs: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Application cost = t2t − floor at p50 (with its 95 % bootstrap interval) and p99, in µs. With `pairs`
    (the paired floor: trader and floor samples aligned trigger pair by trigger pair) the interval resamples
    the pairs jointly; otherwise the two sides are independent runs, each resampled on its own."""
    if not len(t2t) or not len(floor):
        return {}
    if pairs is not None and len(pairs[0]) >= 20:
        p50, low, high = paired_percentile_difference_ci(*pairs)
    else:
        p50, low, high = percentile_difference_ci(t2t, floor)
    return {"app cost p50 µs": p50 / 1000, "app cost p50 95% CI low µs": low / 1000,
            "app cost p50 95% CI high µs": high / 1000,
            "app cost p99 µs": float(np.percentile(t2t, 99) - np.percentile(floor, 99)) / 1000}


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray | None]:
    """(samples, send times) of several runs as one pair; no runs: no samples and no send times."""
    if not parts:
        return np.zeros(0, np.int64), None
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@dataclass
class TickToTradeCase:
    params: T2TParams

    producer = "trader.t2t_run (exchange simulator, trader, floor)"
    timestamps = W2W_TIMESTAMPS

    @property
    def title(self) -> str:
        return "tick-to-trade"

    @property
    def expected_seconds(self) -> float:
        p = self.params
        per = p.interval_ms / 1000 + 0.0005
        return 2 * p.rounds * (p.triggers * per + 4) + p.race_triggers * (per + 0.002) + 6

    def run(self, ctx: RunContext) -> list[CaseResult]:
        p = self.params
        cpus = {"ex": p.exchange_cpu, "t1": p.trader_cpu, "t2": p.trader_cpu}
        spec = BridgeSpec(p.network, ("ex", "t1", "t2"), cpus)
        exchange = {"triggers": p.triggers, "interval_ms": p.interval_ms, "background": p.background,
                    "group": p.group, "password": p.password}
        out: list[CaseResult] = []
        floor_runs: list[RunResult] = []
        trader_runs: list[RunResult] = []
        path: dict[str, Any] = {}
        try:
            with bridge_lab(spec, ctx.tag) as lab:
                path = lab.describe()
                for r in range(p.rounds if p.floor == "paired" else 0):
                    paired = run_t2t(lab, [TraderSetup("t1", "TRADER", "AA", engine=p.engine, protocol=p.protocol,
                                                       receive=p.receive, risk=p.risk, paired_floor="FLOOR")],
                                     {**exchange, "triggers": 2 * p.triggers, "floor_group": p.floor_group},
                                     ctx.workdir, f"paired{r}")
                    floor_runs.append(paired)
                    trader_runs.append(paired)
                for r in range(p.rounds if p.floor == "process" else 0):
                    floor_runs.append(run_t2t(lab, [TraderSetup("t1", "FLOOR", "FL", role="floor",
                                                                receive=p.receive)], exchange, ctx.workdir,
                                              f"floor{r}"))
                    trader_runs.append(run_t2t(lab, [TraderSetup("t1", "TRADER", "AA", engine=p.engine,
                                                                 protocol=p.protocol, receive=p.receive,
                                                                 risk=p.risk)], exchange, ctx.workdir,
                                               f"trader{r}"))
                self._report(floor_runs, trader_runs, True, out)
                if p.race_triggers:
                    self._run_race(lab, ctx, exchange, out)
        except KeyboardInterrupt:
            if not out:
                self._report(floor_runs, trader_runs, False, out)
            out.append(CaseResult(group="tick-to-trade", engine="latlab", role="context", metric=W2W,
                                  timestamps=W2W_TIMESTAMPS, complete=False, note="incomplete: interrupted"))
        for result in out:
            result.path = result.path or path
        return out

    def _run_race(self, lab: Any, ctx: RunContext, exchange: dict[str, Any], out: list[CaseResult]) -> None:
        p = self.params
        try:
            race = run_t2t(lab, [
                    TraderSetup("t1", "FULL", "FR", engine=p.engine, receive=p.race_receive, risk=p.risk, store=True,
                            pin=False),
                TraderSetup("t2", "FAST", "MN", engine=p.engine, receive=p.race_receive, risk=MINIMAL_RISK,
                            pin=False)],
                {**exchange, "triggers": p.race_triggers}, ctx.workdir, "race")
        except LatlabError as exc:  # the main figures stand; the race says what went wrong
            out.append(CaseResult(group=RACE_GROUP, engine="race", role="context", metric=W2W,
                                  timestamps=W2W_TIMESTAMPS, complete=False, note=f"race failed: {exc}"))
            return
        self._race(race, out)

    def _report(self, floors: list[RunResult], traders: list[RunResult], complete: bool,
                out: list[CaseResult]) -> None:
        p = self.params
        group = f"tick-to-trade {p.protocol.upper()} ({p.receive})"
        floor, floor_sent = _joined([(r.wire_to_wire("FLOOR"), r.answered_send_times("FLOOR")) for r in floors])
        t2t, t2t_sent = _joined([(r.wire_to_wire("TRADER"), r.answered_send_times("TRADER")) for r in traders])
        stages = np.concatenate([r.stages["TRADER"] for r in traders]) if traders else np.zeros((0, 8), np.int64)
        pairs = None
        if p.floor == "paired" and traders:
            joined = [r.paired_wire_to_wire("TRADER", "FLOOR") for r in traders]
            pairs = (np.concatenate([j[0] for j in joined]), np.concatenate([j[1] for j in joined]))
        figures = _app_cost(t2t, floor, pairs)
        stage_samples = _stage_samples(stages)
        application = stage_samples["application (decode → encoded)"]
        if pairs is not None:
            figures["trigger pairs"] = float(len(pairs[0]))
        stats = [r.traders["TRADER"] for r in traders]
        figures["orders"] = float(sum(s.orders for s in stats))
        figures["fills"] = float(sum(int((r.filled >= 0).sum()) for r in traders))
        rejects: dict[str, int] = {}
        for s in stats:
            for k, v in s.rejects.items():
                rejects[k] = rejects.get(k, 0) + int(v)
        how = ("the floor on the trader's loop, triggers in pairs of alternating order" if p.floor == "paired"
               else "floor and trader processes alternating")
        note = f"{p.rounds} rounds of {p.triggers} triggers each ({how}); engine {p.engine}; app cost = t2t − floor"
        if pairs is not None:
            note += f" (interval: the {len(pairs[0])} trigger pairs resampled jointly)"
        if rejects:
            note += "; risk rejects " + ", ".join(f"{k} {v}" for k, v in sorted(rejects.items()))
        killed = {s.killed for s in stats if s.killed}
        if killed:
            note += "; kill switch: " + "; ".join(sorted(killed))
        note += _below_own_work(figures, application)
        params = {"triggers": p.triggers, "rounds": p.rounds, "floor": p.floor, "interval_ms": p.interval_ms,
                  "background": p.background, "engine": p.engine, "protocol": p.protocol, "receive": p.receive}
        out.append(CaseResult(group=group, engine=f"latlab trader ({p.engine})", role="own", metric=W2W,
                              timestamps=W2W_TIMESTAMPS, samples_ns=t2t, send_ns=t2t_sent, figures=figures, note=note,
                              complete=complete, params=params, budget="tick_to_trade"))
        out.append(CaseResult(group=group, engine="floor (UDP→TCP reflector)", role="reference", metric=W2W,
                              timestamps=W2W_TIMESTAMPS, samples_ns=floor, send_ns=floor_sent, complete=complete,
                              params=params,
                              note="no logic: the same frame for every datagram (compiled, same receive mode"
                                   + (", same loop and core as the trader)" if p.floor == "paired" else ")")))
        # the same, from each participant's own kernel receive time of the trigger: the feed's delivery (exchange
        # send → participant rx) is the network's, not the application's, and is most of the noise
        t2t_rx, t2t_rx_sent = _joined([r.from_participant_rx("TRADER") for r in traders])
        floor_rx, floor_rx_sent = _joined([r.from_participant_rx("FLOOR") for r in floors])
        figures_rx = _app_cost(t2t_rx, floor_rx)
        out.append(CaseResult(group=f"{group} from kernel rx", engine=f"latlab trader ({p.engine})", role="own",
                              metric=FROM_RX, timestamps=FROM_RX_TIMESTAMPS, samples_ns=t2t_rx, send_ns=t2t_rx_sent,
                              figures=figures_rx, complete=complete, params=params,
                              note="app cost = t2t − floor, both from their own kernel rx"
                                   + _below_own_work(figures_rx, application)))
        out.append(CaseResult(group=f"{group} from kernel rx", engine="floor (UDP→TCP reflector)", role="reference",
                              metric=FROM_RX, timestamps=FROM_RX_TIMESTAMPS, samples_ns=floor_rx,
                              send_ns=floor_rx_sent, complete=complete, params=params))
        round_trip, round_trip_sent = _joined([r.order_round_trip("TRADER") for r in traders])
        out.append(CaseResult(group=f"{group} order round trip", engine=f"latlab trader ({p.engine})", role="own",
                              metric=RTT, timestamps=ROUND_TRIP_TIMESTAMPS, samples_ns=round_trip,
                              send_ns=round_trip_sent, complete=complete, params=params, budget="order_round_trip",
                              note="at the trader: the order's send → its loop finds the exchange's answer"))
        for name, samples in stage_samples.items():
            out.append(CaseResult(group=f"{group} stages", engine=f"stage {name}", role="context", metric=ONE_WAY,
                                  timestamps=STAGE_TIMESTAMPS, samples_ns=samples, params=params))
        # the floor's own two stages, for the kernel's share of the difference
        rows = np.concatenate([r.stages["FLOOR"] for r in floors]) if floors else np.zeros((0, 8), np.int64)
        rows = rows[rows[:, 0] > 0]
        for name, samples in (("received", rows[:, 1] - rows[:, 0]), ("sent", rows[:, 7] - rows[:, 1])):
            out.append(CaseResult(group=f"{group} stages", engine=f"floor stage {name}", role="context",
                                  metric=ONE_WAY, timestamps=STAGE_TIMESTAMPS, samples_ns=samples, params=params))

    def _race(self, race: RunResult, out: list[CaseResult]) -> None:
        """Who takes the trigger, against the two paths' wire-to-wire difference."""
        full, minimal = race.users.index("FULL"), race.users.index("FAST")
        both = (race.t_rx[:, full] > 0) & (race.t_rx[:, minimal] > 0)
        delta = (race.t_rx[both, full] - race.t_rx[both, minimal]) / 1000  # µs the full path is behind
        winners = race.filled[both]
        figures: dict[str, float] = {"triggers both answered": float(both.sum())}
        for name, j in (("full", full), ("minimal", minimal)):
            figures[f"{name} wins %"] = 100 * float((winners == j).mean()) if len(winners) else 0.0
        if len(delta):
            figures["Δ p50 µs (full − minimal)"] = float(np.percentile(delta, 50))
            for lo, hi in ((-np.inf, 0), (0, 5), (5, 20), (20, np.inf)):
                sel = (delta >= lo) & (delta < hi)
                if sel.any():
                    figures[f"minimal wins % when Δ in [{lo:g},{hi:g}) µs (n={int(sel.sum())})"] = \
                        100 * float((winners[sel] == minimal).mean())
        group = RACE_GROUP
        note = "IOC orders for one resting order: the first in is filled; the traders are unpinned, blocking"
        for name in ("FULL", "FAST"):
            orders = race.traders[name].orders if name in race.traders else 0
            out.append(CaseResult(group=group, engine=RACE_LABELS[name], role="context", metric=W2W,
                                  timestamps=W2W_TIMESTAMPS, samples_ns=race.wire_to_wire(name),
                                  figures=figures if name == "FAST" else {"orders": float(orders)},
                                  note=note if name == "FAST" else "risk gate and a sqlite position store"))


# OWN: its bridge of exchange and traders, described in each result
BENCHMARK = SectionBenchmark("tick_to_trade", TickToTradeConfig, OWN, configure,
                             lambda params: [TickToTradeCase(params)])
