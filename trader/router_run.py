"""The smart order router as a process: `python -m trader.router_run --config FILE.json`.

It joins every venue's MoldUDP64 feed and logs in to every venue's SoupBinTCP/OUCH port, keeps each venue's
books (`trader.router.Router`, compiled split by default), and when every venue has published fresh quotes on
its instrument (an Add on its locate since the last parent) and no parent is open, it sends a parent order:
IOC children by the router's split, the unfilled rest re-routed as the venues answer (Accepted, Executed,
Canceled, Rejected). A venue whose session drops is marked down; the rest goes elsewhere.

With `receive: busy-poll` its loop never sleeps: no wake-up between a packet and the decision (one spinning
process, so pinned to a core of its own). With one venue and `react_after_us` it is the fast participant of the
venues benchmark: it takes that venue's quotes a set time after they appear.

Per parent it writes (atomically) the decision time, the trigger's kernel receive time, the router's outcome,
and per venue the shares its first children asked for and got; the result line gives the counts.
"""

from __future__ import annotations

import os
import selectors
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from latlab.helper import HelperConfig, HelperResult, say_ready, say_result
from latlab.helper_main import start
from latlab.mcast import kernel_rx_ns, receiver
from latlab.wire import moldudp64, ouch
from trader.router import Child, Router, VenueSpec
from trader.soup_client import SoupClient
from trader.trader_core import OrderTemplate

ADD = ord("A")


class RouterVenue(HelperConfig):
    """One venue as the router reaches it."""

    name: str = Field(min_length=1, max_length=16)
    exchange: str                       # the venue's address
    group: str
    port: int = 26490
    soup_port: int = 26491
    user: str = Field(min_length=1, max_length=6)
    password: str = ""
    stock: str = Field("LLSOR", min_length=1, max_length=8)
    locate: int = Field(ge=1, le=65535)
    taker_fee: int = Field(0, ge=-10_000, le=10_000)


class RouterRunConfig(HelperConfig):
    """The router (or the fast participant) process; written as a JSON file (it holds passwords)."""

    iface: str
    venues: list[RouterVenue] = Field(min_length=1, max_length=8)
    side: Literal["B", "S"] = "B"
    shares: int = Field(600, ge=1, le=1_000_000)   # per parent
    limit: int = Field(ge=1)                      # the parents' limit price
    engine: Literal["c", "python"] = "c"
    prefix: str = Field("SR", min_length=2, max_length=2)
    react_after_us: float = Field(0.0, ge=0, le=1_000_000)  # wait this long after fresh quotes before the parent
    receive: Literal["blocking", "busy-poll"] = "blocking"  # busy-poll: the loop never sleeps (one spinning core)
    max_reroutes: int = Field(3, ge=0, le=100)    # re-routes of a parent's unfilled rest
    parents: int = Field(1000, ge=1, le=1_000_000)  # at most this many, then it only listens
    max_s: float = Field(600.0, gt=0)             # give up after this long
    out: str = "router.npz"
    cpu: int | None = None


class RouterRunResult(HelperResult):
    """What the router did: counts, the feeds' state, what it logged."""

    status: str
    parents: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    feed_gaps: dict[str, int] = Field(default_factory=dict)
    feed_malformed: dict[str, int] = Field(default_factory=dict)
    venues_down: list[str] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)


class RouterProcess:
    """The loop of the module's text, on one selector: feeds, sessions, and the participant's timer."""

    def __init__(self, cfg: RouterRunConfig) -> None:
        self.cfg = cfg
        self.router = Router([VenueSpec(v.name, v.locate, v.taker_fee) for v in cfg.venues], prefix=cfg.prefix,
                             engine=cfg.engine, max_reroutes=cfg.max_reroutes)
        self.sel = selectors.SelectSelector()  # a timeout in µs (epoll's is in whole ms): react_after_us
        self.feeds = [receiver(v.group, v.port, cfg.iface) for v in cfg.venues]
        self.next_seq = [0] * len(cfg.venues)
        self.gaps = [0] * len(cfg.venues)
        self.malformed = [0] * len(cfg.venues)
        self.ended = [False] * len(cfg.venues)
        self.fresh = [False] * len(cfg.venues)
        self.fresh_rx = 0
        self.sessions: list[SoupClient | None] = []
        self.templates = [OrderTemplate.ouch(v.stock, side=cfg.side) for v in cfg.venues]  # OUCH Enter Order, IOC
        for i, v in enumerate(cfg.venues):
            self.sel.register(self.feeds[i], selectors.EVENT_READ, ("feed", i))
            client = SoupClient.connect((v.exchange, v.soup_port), v.user, v.password)
            client.sock.setblocking(False)
            self.sessions.append(client)
            self.sel.register(client.sock, selectors.EVENT_READ, ("session", i))
        self.fire_at = 0.0   # monotonic time of the participant's pending parent (0: none)
        self.active = 0      # the open parent's id (0: none)
        self.rows: list[tuple[int, int, int]] = []  # per parent: (id, decided ns, trigger kernel rx ns)

    # ---- market data

    def _feed(self, i: int) -> None:
        try:
            data, anc, _, _ = self.feeds[i].recvmsg(65536, 256)
        except (BlockingIOError, InterruptedError):
            return
        try:
            packet = moldudp64.decode_packet(data)
        except moldudp64.MoldError:
            self.malformed[i] += 1
            return
        if packet.is_end_of_session:
            self.ended[i] = True
            return
        if packet.is_heartbeat:
            return
        if self.next_seq[i] and packet.sequence != self.next_seq[i]:
            self.gaps[i] += 1
            self.router.log.append(f"feed {self.cfg.venues[i].name}: gap at {self.next_seq[i]} "
                                   f"(got {packet.sequence}); its books may be stale")
        self.next_seq[i] = packet.next_sequence
        self.router.on_market_data(i, bytes(moldudp64.message_blocks(data)))
        locate = self.cfg.venues[i].locate.to_bytes(2, "big")
        if any(m[0] == ADD and m[1:3] == locate for m in packet.messages):
            self.fresh[i] = True
            self.fresh_rx = max(self.fresh_rx, kernel_rx_ns(anc) or time.time_ns())

    # ---- orders

    def _ready_to_decide(self) -> bool:
        up = [i for i in range(len(self.fresh)) if self.router.up[i]]
        return bool(up) and not self.active and all(self.fresh[i] for i in up)

    def _decide(self) -> None:
        self.fresh = [False] * len(self.fresh)
        now = time.time_ns()
        children = self.router.submit(self.cfg.side, self.cfg.shares, self.cfg.limit, now)
        parent = max(self.router.parents)
        self.rows.append((parent, now, self.fresh_rx))
        self.fresh_rx = 0
        if children:
            self.active = parent
        self._send(children)

    def _send(self, children: list[Child]) -> None:
        for child in children:
            session = self.sessions[child.venue]
            try:
                if session is None:
                    raise ConnectionError("session gone")
                frame = self.templates[child.venue].fill(child.token.encode(), child.shares, child.price)
                child.sent_ns = time.time_ns()  # just before the send, as the venues time their quotes
                session.sock.sendall(frame)
                session.last_sent = time.monotonic()
            except (BlockingIOError, OSError) as exc:
                self._venue_lost(child.venue, f"send failed: {exc}")

    def _session(self, i: int) -> None:
        session = self.sessions[i]
        if session is None:
            return
        try:
            packets = session.receive(0.0)
        except (BlockingIOError, InterruptedError):
            return
        except (ConnectionError, OSError, ValueError) as exc:
            self._venue_lost(i, str(exc))
            return
        for packet in packets:
            if packet.type == "S":
                self._answer(packet.payload)
            elif packet.type == "Z":
                self._venue_lost(i, "end of session")
                return

    def _answer(self, payload: bytes) -> None:
        now = time.time_ns()
        try:
            msg = ouch.OUTBOUND.decode(payload)
        except (ValueError, KeyError) as exc:
            self.router.log.append(f"malformed OUCH answer: {exc}")
            return
        token = getattr(msg, "token", "").strip()
        if msg.type == "A":
            self.router.on_ack(token, now)
        elif msg.type == "E":
            self.router.on_fill(token, msg.executed_shares, msg.execution_price, now)
            child = self.router.children.get(token)
            if child is not None and child.filled == child.shares:
                self._send(self.router.on_done(token, now))
        elif msg.type in "CJ":
            if msg.type == "J":
                self.router.log.append(f"child {token} rejected ({msg.reason})")
            self._send(self.router.on_done(token, now))
        self._settle()

    def _venue_lost(self, i: int, why: str) -> None:
        session = self.sessions[i]
        if session is None:
            return
        self.sel.unregister(session.sock)
        session.sock.close()
        self.sessions[i] = None
        self.router.log.append(f"venue {self.cfg.venues[i].name} lost: {why}")
        self._send(self.router.venue_down(i, time.time_ns()))
        self._settle()

    def _settle(self) -> None:
        if self.active and self.router.parents[self.active].done_ns:
            self.active = 0

    # ---- the loop

    def run(self) -> RouterRunResult:
        cfg = self.cfg
        status = "ok"
        deadline = time.monotonic() + cfg.max_s
        busy = cfg.receive == "busy-poll"
        try:
            while not all(ended or not up for ended, up in zip(self.ended, self.router.up, strict=True)):
                now = time.monotonic()
                if now > deadline:
                    status = f"stopped after max_s {cfg.max_s:g} s"
                    break
                if self.fire_at and now >= self.fire_at:
                    self.fire_at = 0.0
                    self._decide()
                timeout = 0.0 if busy else max(0.0, self.fire_at - now) if self.fire_at else 0.2
                for key, _ in self.sel.select(timeout):
                    kind, i = key.data
                    if kind == "feed":
                        self._feed(i)
                    else:
                        self._session(i)
                if self._ready_to_decide() and not self.fire_at and len(self.rows) < cfg.parents:
                    if cfg.react_after_us:
                        self.fire_at = time.monotonic() + cfg.react_after_us / 1e6
                        self.fresh = [False] * len(self.fresh)
                    else:
                        self._decide()
                for i, session in enumerate(self.sessions):
                    if session is not None:
                        try:
                            session.heartbeat_if_idle()
                        except OSError as exc:
                            self._venue_lost(i, f"heartbeat failed: {exc}")
        except KeyboardInterrupt:
            status = "interrupted"
        for session in self.sessions:
            if session is not None:
                session.logout()
        self._save()
        down = [v.name for v, up in zip(cfg.venues, self.router.up, strict=True) if not up]
        names = [v.name for v in cfg.venues]
        return RouterRunResult(status=status, parents=len(self.rows), counts=self.router.counts,
                               feed_gaps=dict(zip(names, self.gaps, strict=True)),
                               feed_malformed=dict(zip(names, self.malformed, strict=True)),
                               venues_down=down, log=self.router.log[:20])

    def _save(self) -> None:
        """Per parent, one row; written to a temporary name, then renamed."""
        n, venues = len(self.rows), len(self.cfg.venues)
        cols = {k: np.zeros(n, np.int64) for k in ("parent", "decided_ns", "trigger_rx_ns", "first_sent_ns",
                                                    "completion_ns", "filled", "unfilled", "unknown", "reroutes",
                                                    "best_at_decision")}
        floats = {k: np.full(n, np.nan) for k in ("effective_price", "slippage")}
        asked, got, filled_at = (np.zeros((n, venues), np.int64) for _ in range(3))
        for r, (pid, decided, rx) in enumerate(self.rows):
            out = self.router.outcome(pid)
            parent = self.router.parents[pid]
            cols["parent"][r], cols["decided_ns"][r], cols["trigger_rx_ns"][r] = pid, decided, rx
            cols["first_sent_ns"][r] = min((c.sent_ns for c in parent.children if c.sent_ns), default=0)
            cols["completion_ns"][r] = out["completion_ns"] or 0
            for k in ("filled", "unfilled", "unknown", "reroutes", "best_at_decision"):
                cols[k][r] = out[k]
            floats["effective_price"][r] = out["effective_price"] if out["filled"] else np.nan
            floats["slippage"][r] = np.nan if out["slippage"] is None else out["slippage"]
            for c in parent.children:
                filled_at[r, c.venue] += c.filled
                if c.wave == 0:  # what the split went for when it decided
                    asked[r, c.venue] += c.shares
                    got[r, c.venue] += c.filled
        kids = [c for c in self.router.children.values() if c.sent_ns]
        child_cols = {"child_venue": np.array([c.venue for c in kids], np.int64),
                      "child_sent_ns": np.array([c.sent_ns for c in kids], np.int64),
                      "child_acked_ns": np.array([c.acked_ns for c in kids], np.int64)}
        tmp = Path(self.cfg.out + ".tmp.npz")
        np.savez(tmp, venues=np.array([v.name for v in self.cfg.venues]), asked=asked, got=got, filled_at=filled_at,
                 **cols, **floats, **child_cols)
        os.replace(tmp, self.cfg.out)


def main(argv: list[str] | None = None) -> int:
    cfg = start(RouterRunConfig, "python -m trader.router_run", argv)
    try:
        process = RouterProcess(cfg)
    except (OSError, ConnectionError) as exc:
        print(f"router: could not start: {exc}", file=sys.stderr)
        return 1
    say_ready()
    say_result(process.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
