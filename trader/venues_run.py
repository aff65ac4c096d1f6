"""One run of the venues benchmark on a bridge lab: two exchanges in quotes mode (hosts `v1` fast, `v2` slow),
the smart order router (`sor`) on both, and a fast participant (`hft`) colocated at the slow venue.

Both venues quote in step (one `start_ns` on the shared clock); the slow one holds what non-colocated sessions
send for its `extra_response_us`. Everything started here is stopped here; the records come back as arrays.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latlab import helper
from latlab.errors import LatlabError
from latlab.procs import running
from latlab.topology import Lab
from trader.router_run import RouterRunConfig, RouterRunResult, RouterVenue
from trader.t2t_run import lab_password
from venue.exchange import ExchangeConfig, ExchangeResult
from venue.matching import TICK

ROUTER, PARTICIPANT = "SOR", "HFT"
START_MARGIN_S = 6.0  # from the processes' start to the first round: imports, logins and the opening


@dataclass(frozen=True)
class VenueSetup:
    """One venue of the run: its name, its quotes (ticks above the base price, shares) and fees."""

    name: str
    quotes: tuple[tuple[int, int], ...]
    taker_fee: int = 0
    maker_fee: int = 0
    extra_response_us: float = 0.0


@dataclass(frozen=True)
class VenuesSetup:
    fast: VenueSetup
    slow: VenueSetup
    rounds: int
    interval_ms: float
    quote_ms: float
    parent_shares: int
    limit_ticks: int
    participant_react_us: float
    engine: str
    group: str
    second_group: str
    receive: str = "blocking"               # the router's: blocking | busy-poll (pinned to `router_cpu`)
    router_cpu: int | None = None
    base_price: int = 1_000_000
    password: str = ""
    delays_us: tuple[float, ...] = (0.0,)   # the slow venue's added response time, one run each
    network: str = "10.81.0.0/24"


@dataclass
class VenuesRun:
    """What one run recorded: per venue the exchange's rounds, the router's and the participant's parents."""

    slow_extra_us: float
    exchanges: dict[str, ExchangeResult]       # per venue that ended its session (a killed one has none)
    rounds: dict[str, dict[str, np.ndarray]]   # per venue that wrote them: t_send, t_rx, taken, users
    router: RouterRunResult
    parents: dict[str, np.ndarray]
    participant: RouterRunResult
    participant_parents: dict[str, np.ndarray]

    def tick_to_trade(self, venue: str, user: str = ROUTER) -> tuple[np.ndarray, np.ndarray]:
        """Per round `user` answered at `venue`: its first order's kernel rx there − that venue's quote send time
        (ns; the venue's added response time comes after the rx and is not in it). Returns (samples, send times)."""
        r = self.rounds.get(venue)
        if r is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        j = [str(u) for u in r["users"]].index(user)
        rx, sent = r["t_rx"][:, j], r["t_send"]
        ok = (rx > 0) & (sent > 0)
        return (rx - sent)[ok], sent[ok]

    def order_round_trip(self, venue: str) -> np.ndarray:
        """At the router (its gateway): each child's send → the venue's Accepted, for `venue` (ns)."""
        p = self.parents
        j = [str(v) for v in p["venues"]].index(venue)
        ok = (p["child_venue"] == j) & (p["child_acked_ns"] > 0)
        return (p["child_acked_ns"] - p["child_sent_ns"])[ok]

    def taken(self, venue: str, user: str) -> int:
        """Shares of `venue`'s quotes that `user` took, by the venue's own count."""
        r = self.rounds.get(venue)
        if r is None:
            return 0
        users = [str(u) for u in r["users"]]
        return int(r["taken"][:, users.index(user)].sum()) if user in users else 0


def _load(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def run_venues(lab: Lab, setup: VenuesSetup, slow_extra_us: float, workdir: Path, tag: str,
               kill_slow_after_s: float = 0.0) -> VenuesRun:
    """Start both exchanges, the participant, then the router; wait for the exchanges' rounds to end. With
    `kill_slow_after_s`, the slow venue is killed (SIGKILL) that long after its first round: a venue that goes
    away mid-session."""
    password = lab_password(setup.password)
    start_ns = time.time_ns() + int(START_MARGIN_S * 1e9)
    py = [sys.executable, "-m"]
    fast, slow = setup.fast, setup.slow
    plan = ((fast, "v1", setup.group, "LATLABV001", fast.extra_response_us, [ROUTER], []),
            (slow, "v2", setup.second_group, "LATLABV002", slow_extra_us, [ROUTER, PARTICIPANT], [PARTICIPANT]))
    configs: dict[str, ExchangeConfig] = {}
    with contextlib.ExitStack() as stack:
        procs: dict[str, Any] = {}
        for venue, host_name, group, session, extra, users, colocated in plan:
            host = lab.hosts[host_name]
            cfg = ExchangeConfig(iface=host.address, group=group, session=session, users=dict.fromkeys(users, password),
                                 expect=users, mode="quotes", triggers=setup.rounds, interval_ms=setup.interval_ms,
                                 answer_timeout_ms=setup.quote_ms, instruments=5, live_orders=200, background=0,
                                 limit=setup.base_price, quotes=list(venue.quotes), taker_fee=venue.taker_fee,
                                 maker_fee=venue.maker_fee, extra_response_us=extra, colocated=colocated,
                                 start_ns=start_ns, out=str(workdir / f"venue-{tag}-{venue.name}.npz"))
            configs[venue.name] = cfg
            path = workdir / f"venue-{tag}-{venue.name}.json"
            path.write_text(cfg.model_dump_json())
            procs[venue.name] = stack.enter_context(running(
                host.command([*py, "venue.exchange", "--config", str(path)]),
                workdir / f"venue-{tag}-{venue.name}.log", f"venue {venue.name}", ready="READY"))

        def view(venue: VenueSetup, user: str) -> RouterVenue:
            host_name = "v1" if venue is fast else "v2"
            cfg = configs[venue.name]
            return RouterVenue(name=venue.name, exchange=lab.hosts[host_name].address, group=cfg.group, port=cfg.port,
                               soup_port=cfg.soup_port, user=user, password=password, stock=cfg.quote_stock,
                               locate=cfg.quote_locate, taker_fee=venue.taker_fee)

        best_slow = min(slow.quotes)
        takers = (
            ("hft", PARTICIPANT, RouterRunConfig(
                iface=lab.hosts["hft"].address, venues=[view(slow, PARTICIPANT)], shares=best_slow[1],
                limit=setup.base_price + best_slow[0] * TICK, engine=setup.engine, prefix="HF",
                react_after_us=setup.participant_react_us, parents=setup.rounds, max_reroutes=0,
                out=str(workdir / f"participant-{tag}.npz"))),
            ("sor", ROUTER, RouterRunConfig(
                iface=lab.hosts["sor"].address, venues=[view(fast, ROUTER), view(slow, ROUTER)],
                shares=setup.parent_shares, limit=setup.base_price + setup.limit_ticks * TICK, engine=setup.engine,
                prefix="SR", parents=setup.rounds, receive=setup.receive, cpu=setup.router_cpu,
                out=str(workdir / f"router-{tag}.npz"))))
        for host_name, user, cfg in takers:
            path = workdir / f"{host_name}-{tag}.json"
            path.write_text(cfg.model_dump_json())
            procs[user] = stack.enter_context(running(
                lab.hosts[host_name].command([*py, "trader.router_run", "--config", str(path)]),
                workdir / f"{host_name}-{tag}.log", f"router {user}", ready="READY"))
        if kill_slow_after_s:
            time.sleep(max(0.0, (start_ns - time.time_ns()) / 1e9 + kill_slow_after_s))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(procs[slow.name].popen.pid, signal.SIGKILL)
        wait = START_MARGIN_S + setup.rounds * setup.interval_ms / 1000 + 60
        exchanges = {}
        for venue in (fast, slow):
            procs[venue.name].wait(timeout=wait)
            found = helper.result_or_none(procs[venue.name].output(), ExchangeResult, f"venue {venue.name}")
            if found is not None:
                exchanges[venue.name] = found
        answers = {}
        for user in (ROUTER, PARTICIPANT):
            try:
                procs[user].wait(timeout=20)
            except Exception:
                procs[user].stop()
            answers[user] = helper.result(procs[user].output(), RouterRunResult, f"router {user}")
    rounds = {v.name: _load(workdir / f"venue-{tag}-{v.name}.npz") for v in (fast, slow)}
    parents = {user: _load(workdir / f"{name}-{tag}.npz") for user, name in ((ROUTER, "router"),
                                                                            (PARTICIPANT, "participant"))}
    for user, found in parents.items():
        if found is None:
            raise LatlabError(f"router {user} wrote no records: {procs[user].tail()}")
    return VenuesRun(slow_extra_us, exchanges, {k: v for k, v in rounds.items() if v is not None},
                     answers[ROUTER], parents[ROUTER], answers[PARTICIPANT], parents[PARTICIPANT])  # type: ignore[arg-type]
