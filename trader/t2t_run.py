"""One tick-to-trade run on a bridge lab: the exchange on host `ex`, traders (or the floor) on the others.

Everything started here is stopped here; the exchange's and the traders' records come back as arrays.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latlab import helper
from latlab.procs import running
from latlab.topology import Lab
from trader.trader import TraderConfig, TraderResult
from venue.exchange import ExchangeConfig, ExchangeResult


@dataclass
class TraderSetup:
    """One participant: a trader (or the floor) on a lab host."""

    host: str
    user: str
    prefix: str
    role: str = "trader"
    engine: str = "c"
    protocol: str = "ouch"
    receive: str = "busy-poll"
    risk: dict[str, Any] = field(default_factory=dict)
    store: bool = False
    pin: bool = True
    paired_floor: str = ""   # paired mode: the floor's user on this trader's loop (the exchange has floor_group)


@dataclass
class RunResult:
    users: list[str]
    t_send: np.ndarray          # per trigger, exchange CLOCK_REALTIME before sendto
    t_rx: np.ndarray            # per trigger × user, kernel receive time of the first order bytes (0: none)
    filled: np.ndarray          # per trigger, index of the user that took it (−1: nobody)
    to_floor: np.ndarray        # per trigger, sent to the paired floor (all False without one)
    exchange: ExchangeResult
    traders: dict[str, TraderResult]
    stages: dict[str, np.ndarray]
    acks: dict[str, np.ndarray] = field(default_factory=dict)  # per stage row: when the order's answer was seen

    def order_round_trip(self, user: str) -> tuple[np.ndarray, np.ndarray]:
        """At the trader (its gateway): each order's send → the first answer its loop saw on the session (both
        the trader's CLOCK_REALTIME). Returns (samples ns, the orders' send times)."""
        rows = self.stages.get(user, np.zeros((0, 8), np.int64))
        acks = self.acks.get(user, np.zeros(0, np.int64))[:len(rows)]
        sent = rows[:len(acks), 7]
        seen = (acks > 0) & (sent > 0) & (acks >= sent)
        return (acks - sent)[seen], sent[seen]

    def wire_to_wire(self, user: str) -> np.ndarray:
        """Per answered trigger: the order's kernel receive time − the trigger's send time (ns)."""
        j = self.users.index(user)
        rx = self.t_rx[:, j]
        return (rx - self.t_send)[rx > 0]

    def from_participant_rx(self, user: str) -> tuple[np.ndarray, np.ndarray]:
        """Tick-to-trade seen from the participant: per answered trigger, the order's kernel receive time at the
        exchange − the trigger's kernel receive time at the participant (its first stage row at or after the
        send), so the feed's delivery is left out. Returns (samples ns, the triggers' send times)."""
        j = self.users.index(user)
        rx = self.t_rx[:, j]
        answered = rx > 0
        sent, order_rx = self.t_send[answered], rx[answered]
        rows = self.stages.get(user, np.zeros((0, 8), np.int64))
        kernel_rx = np.sort(rows[rows[:, 0] > 0, 0])
        if not len(kernel_rx):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        at = np.searchsorted(kernel_rx, sent)
        found = at < len(kernel_rx)
        trigger_rx = kernel_rx[np.minimum(at, len(kernel_rx) - 1)]
        ok = found & (trigger_rx < order_rx)
        return (order_rx - trigger_rx)[ok], sent[ok]

    def paired_wire_to_wire(self, user: str, floor: str) -> tuple[np.ndarray, np.ndarray]:
        """Paired mode: per pair of triggers (2k, 2k+1), one to the floor and one to `user` (in either order), the
        user's and the floor's wire-to-wire (ns), for the pairs both answered: samples aligned pair by pair."""
        n = len(self.t_send) // 2 * 2
        if not n:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        send = self.t_send[:n].reshape(-1, 2)
        to_floor = self.to_floor[:n].reshape(-1, 2)
        rx_user = self.t_rx[:n, self.users.index(user)].reshape(-1, 2)
        rx_floor = self.t_rx[:n, self.users.index(floor)].reshape(-1, 2)
        pairs = np.arange(len(send))
        at_floor = to_floor.argmax(axis=1)
        at_user = 1 - at_floor
        ok = ((to_floor.sum(axis=1) == 1) & (rx_user[pairs, at_user] > 0) & (rx_floor[pairs, at_floor] > 0))
        return ((rx_user[pairs, at_user] - send[pairs, at_user])[ok],
                (rx_floor[pairs, at_floor] - send[pairs, at_floor])[ok])

    def answered_send_times(self, user: str) -> np.ndarray:
        """The send times of the triggers `user` answered (the interval log places samples by them)."""
        return self.t_send[self.t_rx[:, self.users.index(user)] > 0]


PASSWORD_ENV = "LATLAB_EXCHANGE_PASSWORD"


def lab_password(configured: str = "") -> str:
    """The password of the lab's own exchange logins: $LATLAB_EXCHANGE_PASSWORD, else the config's
    `tick_to_trade.password`, else a fresh random one for this run (the exchange and its traders are
    started together, so nobody needs to know it)."""
    return os.environ.get(PASSWORD_ENV) or configured or secrets.token_hex(5)  # SoupBinTCP: 10 characters


def run_t2t(lab: Lab, setups: list[TraderSetup], exchange: dict[str, Any], workdir: Path, tag: str) -> RunResult:
    """Start the exchange, then each participant; wait for the exchange to finish its triggers."""
    ex_host = lab.hosts["ex"]
    names = [s.user for s in setups] + [s.paired_floor for s in setups if s.paired_floor]
    exchange = dict(exchange)
    password = lab_password(exchange.pop("password", ""))
    users = dict.fromkeys(names, password)
    ex_cfg = ExchangeConfig(iface=ex_host.address, users=users, expect=names,
                            out=str(workdir / f"exchange-{tag}.npz"), **exchange)
    limit = ex_cfg.limit
    (workdir / f"exchange-{tag}.json").write_text(ex_cfg.model_dump_json())
    py = [sys.executable, "-m"]
    with contextlib.ExitStack() as stack:
        ex_proc = stack.enter_context(running(
            ex_host.command([*py, "venue.exchange", "--config", str(workdir / f"exchange-{tag}.json"),
                             *(["--cpu", str(ex_host.cpu)] if ex_host.cpu is not None else [])]),
            workdir / f"exchange-{tag}.log", "exchange", ready="READY"))
        procs = []
        for s in setups:
            host = lab.hosts[s.host]
            cfg = TraderConfig(iface=host.address, exchange=ex_host.address, group=ex_cfg.group, port=ex_cfg.port,
                               soup_port=ex_cfg.soup_port, fix_port=ex_cfg.fix_port, user=s.user, password=password,
                               role=s.role, engine=s.engine, protocol=s.protocol, receive=s.receive,
                               locate=ex_cfg.trigger_locate, limit=limit, prefix=s.prefix,
                               last_trade=limit, risk=s.risk,
                               store=str(workdir / f"store-{tag}-{s.user}.sqlite") if s.store else "",
                               out=str(workdir / f"trader-{tag}-{s.user}.npz"),
                               floor_group=ex_cfg.floor_group if s.paired_floor else "",
                               floor_user=s.paired_floor or "FLOOR")
            path = workdir / f"trader-{tag}-{s.user}.json"
            path.write_text(cfg.model_dump_json())
            cpu = host.cpu if s.pin else None
            procs.append((s, stack.enter_context(running(
                host.command([*py, "trader.trader", "--config", str(path),
                              *(["--cpu", str(cpu)] if cpu is not None else [])]),
                workdir / f"trader-{tag}-{s.user}.log", f"trader {s.user}", ready="READY"))))
        ex_proc.wait(timeout=ex_cfg.triggers * (ex_cfg.interval_ms + ex_cfg.answer_timeout_ms) / 1000 + 60)
        ex_summary = helper.result(ex_proc.output(), ExchangeResult, "exchange")
        traders, stages, acks = {}, {}, {}
        for s, proc in procs:
            try:
                proc.wait(timeout=20)
            except Exception:
                proc.stop()
            traders[s.user] = helper.result(proc.output(), TraderResult, f"trader {s.user}")
            out = workdir / f"trader-{tag}-{s.user}.npz"
            saved = np.load(out) if out.exists() else {}
            stages[s.user] = saved["stages"] if "stages" in saved else np.zeros((0, 8), np.int64)
            acks[s.user] = saved["acks"] if "acks" in saved else np.zeros(0, np.int64)
            if s.paired_floor:
                stages[s.paired_floor] = saved["floor_stages"] if "floor_stages" in saved else np.zeros((0, 8),
                                                                                                          np.int64)
    rec = np.load(workdir / f"exchange-{tag}.npz")
    return RunResult([str(u) for u in rec["users"]], rec["t_send"], rec["t_rx"], rec["filled"],
                     rec["to_floor"] if "to_floor" in rec else np.zeros(len(rec["t_send"]), bool), ex_summary,
                     traders, stages, acks)
