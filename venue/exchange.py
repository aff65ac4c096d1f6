"""The exchange simulator: `python -m venue.exchange --config FILE.json`.

One process, as STAC-T0's exchange side: it publishes an ITCH 5.0 feed over MoldUDP64 multicast
and takes orders over SoupBinTCP/OUCH 4.2 (and FIX 4.4 on a second port), matching them against
its own book of what it published. In a run it waits for the expected sessions, publishes the
opening book, then `triggers` cycles: one packet of background messages ending with the trigger
(a sell added at the trader's limit on the trigger instrument), the user-space send time taken just
before sendto(); each session's first order after it is timestamped by the kernel on receipt
(SO_TIMESTAMPING, same clock). Wire-to-wire = that receive time − the send time.

Paired mode (`floor_group`): one trigger of each pair goes to the floor instead, on its own group and
MoldUDP64 session: a packet of the same messages (the last background and a trigger that is not in the
book), which only `floor_user` answers. So the trader and the floor are measured trigger by trigger, under
the same conditions. The pairs alternate their order (trader-floor, floor-trader, ...; the seed picks the
first; see `floor_turns`).

Quotes mode (`mode: quotes`, for the smart order router across venues): instead of triggers, `triggers`
rounds, each starting at `start_ns` + i × `interval_ms` on the shared clock (so two venues quote in step).
A round publishes the venue's resting sells (`quotes`: ticks above `limit`, shares) on `quote_stock`,
serves the takers for `answer_timeout_ms`, then withdraws what is left. Per round: the quotes' send time,
each user's first order (kernel rx) and the shares each user took.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import selectors
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from feed_handler.generator import GenParams, generate
from latlab.helper import HelperConfig, HelperResult, say_ready, say_result
from latlab.helper_main import start
from latlab.mcast import (
    SO_TIMESTAMPING,
    SOF_TIMESTAMPING_RX_SOFTWARE,
    SOF_TIMESTAMPING_SOFTWARE,
    kernel_rx_ns,
    sender,
)
from latlab.wire import itch, moldudp64
from latlab.wire.fix_session import FixEnd
from venue.matching import TICK, MatchingBook
from venue.order_entry import FixSession, OuchHandler, Venue
from venue.soup_session import ServerSession, SoupConfig, Stream

TRIGGER_STOCK = "LLTRIG"
NO_ORDER = 0


@dataclass
class _Records:
    """Per trigger: its send time, each user's first order bytes (kernel rx), who filled it, whether the floor
    had it."""

    users: list[str]
    to_floor: np.ndarray
    t_send: np.ndarray
    t_rx: np.ndarray
    filled: np.ndarray
    taken: np.ndarray   # quotes mode: per round × user, shares of the quotes taken

    @classmethod
    def of(cls, triggers: int, users: list[str], to_floor: np.ndarray) -> _Records:
        return cls(users, to_floor, np.zeros(triggers, np.int64), np.zeros((triggers, len(users)), np.int64),
                   np.full(triggers, -1, np.int64), np.zeros((triggers, len(users)), np.int64))

    def save(self, out: str) -> None:
        """Written atomically: a temporary name, then renamed."""
        tmp = Path(out + ".tmp.npz")
        np.savez(tmp, t_send=self.t_send, t_rx=self.t_rx, filled=self.filled, users=np.array(self.users),
                 to_floor=self.to_floor, taken=self.taken)
        os.replace(tmp, out)


class ExchangeConfig(HelperConfig):
    """Everything the exchange needs; the tick_to_trade plugin writes it as a JSON file (it holds passwords)."""

    iface: str
    group: str = "239.77.1.1"
    port: int = 26490
    soup_port: int = 26491
    fix_port: int = 26492
    session: str = "LATLAB0001"
    users: dict[str, str] = Field(default_factory=dict)  # login -> password: from the config, none built in
    expect: list[str] = Field(default_factory=list)     # users that must be logged in before the run
    triggers: int = 1000
    interval_ms: float = 2.0
    answer_timeout_ms: float = 20.0
    background: int = 4                                 # messages before the trigger in its packet
    instruments: int = 50
    live_orders: int = 2000
    limit: int = 1_000_000                              # the trigger instrument's trigger price
    trigger_shares: int = 100
    seed: int = 1
    wait_login_s: float = 20.0
    login_s: float = 30.0                               # SoupBinTCP: drop a connection not logged in by then
    silent_s: float = 15.0                              # ... and a session silent this long
    out: str = "exchange.npz"
    floor_group: str = ""                               # paired mode: the floor's feed group ("" = off)
    floor_session: str = "LATLABFLR1"
    floor_user: str = "FLOOR"
    max_sessions: int = 64                              # connections served at once; more are refused
    fix_resend_timeout_s: float = 5.0                   # FIX: a peer that leaves a gap unfilled this long is logged out
    taker_fee: int = Field(0, ge=-10_000, le=10_000)    # per share filled, 1/10,000 $ (orders are IOC: takers)
    extra_response_us: float = Field(0.0, ge=0, le=10_000_000)  # the venue holds what a logged-in session sends
    colocated: list[str] = Field(default_factory=list)  # ... except from these users (they are next to it)
    maker_fee: int = Field(0, ge=-10_000, le=10_000)    # per share, charged to the venue's own quotes (< 0: rebate)
    mode: Literal["triggers", "quotes"] = "triggers"
    quote_stock: str = Field("LLSOR", min_length=1, max_length=8)
    quotes: list[tuple[int, int]] = Field(default_factory=lambda: [(0, 300), (1, 300)])  # (ticks above limit, shares)
    start_ns: int = 0                                   # quotes mode: CLOCK_REALTIME of round 0 (0: now)
    cpu: int | None = None                              # pinned to this CPU

    @model_validator(mode="after")
    def _rounds_fit(self) -> ExchangeConfig:
        if self.mode == "quotes":
            if self.answer_timeout_ms >= self.interval_ms:
                raise ValueError("quotes mode: answer_timeout_ms (a quote's life) must be below interval_ms")
            if not self.quotes or any(t < 0 or not 1 <= n <= 1_000_000 for t, n in self.quotes):
                raise ValueError("quotes: 1 or more (ticks ≥ 0 above limit, shares 1..1,000,000)")
            if self.extra_response_us / 1000 >= self.answer_timeout_ms:
                raise ValueError("quotes mode: extra_response_us must be below a quote's life (answer_timeout_ms)")
        return self

    @property
    def quote_locate(self) -> int:
        """The quoted instrument's stock locate: after the trigger instrument."""
        return self.instruments + 2

    @property
    def trigger_locate(self) -> int:
        """The trigger instrument's stock locate: after the generated instruments."""
        return self.instruments + 1


class ExchangeResult(HelperResult):
    """What the exchange did: its triggers, who was there, what its venue and sessions counted."""

    status: str
    triggers: int = 0
    users: list[str] = Field(default_factory=list)
    venue: dict[str, int] = Field(default_factory=dict)
    ouch_malformed: int = 0
    closed: list[str] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)
    connections_refused: int = 0
    accept_failures: int = 0
    fix_sessions: dict[str, dict[str, int]] = Field(default_factory=dict)  # per user: gaps, resends, …
    fees: dict[str, int] = Field(default_factory=dict)  # per user: taker fees charged, 1/10,000 $
    maker_fees: int = 0                                 # charged to the venue's own quotes, 1/10,000 $
    taken: dict[str, int] = Field(default_factory=dict)  # quotes mode: shares of the quotes each user took
    rounds_skipped: int = 0                             # quotes mode: rounds whose time had passed (t_send 0)


class Feed:
    """The MoldUDP64 publisher side of the exchange."""

    def __init__(self, cfg: ExchangeConfig, group: str = "", session: str = "") -> None:
        self.sock = sender(cfg.iface)
        self.dest = (group or cfg.group, cfg.port)
        self.session = moldudp64.session_bytes(session or cfg.session)
        self.seq = 1
        self.last_send = time.monotonic()

    def send(self, messages: list[bytes]) -> tuple[int, int]:
        """One packet; returns (its first sequence, the send time in CLOCK_REALTIME ns taken just before)."""
        packet = moldudp64.encode_packet(self.session, self.seq, messages)
        first = self.seq
        t = time.time_ns()
        self.sock.sendto(packet, self.dest)
        self.seq += len(messages)
        self.last_send = time.monotonic()
        return first, t

    def heartbeat_if_idle(self) -> None:
        if time.monotonic() - self.last_send >= 1.0:
            self.sock.sendto(moldudp64.encode_heartbeat(self.session, self.seq), self.dest)
            self.last_send = time.monotonic()

    def end(self) -> None:
        for _ in range(5):
            self.sock.sendto(moldudp64.encode_end_of_session(self.session, self.seq), self.dest)
            time.sleep(0.01)


def _directory(locate: int, stock: str) -> bytes:
    """A Stock Directory (R) message for one of the exchange's own instruments."""
    return itch.encode(itch.make("R", stock_locate=locate, stock=stock, market_category="Q", financial_status="N",
                                 round_lot_size=100, round_lots_only="N", issue_classification="C",
                                 issue_subtype="Z ", authenticity="P", short_sale_threshold="N", ipo_flag="N",
                                 luld_tier="2", etp_flag="N", etp_leverage_factor=0, inverse_indicator="N"))


def _listener(address: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(16)
    s.setblocking(False)
    return s


@dataclass
class Conn:
    sock: socket.socket
    session: Any                        # ServerSession or FixSession
    first_rx: int = 0                   # kernel receive time of the first order since the last trigger


class Exchange:
    def __init__(self, cfg: ExchangeConfig) -> None:
        self.cfg = cfg
        self.feed = Feed(cfg)
        self.floor_feed = Feed(cfg, cfg.floor_group, cfg.floor_session) if cfg.floor_group else None
        self.floor_book = MatchingBook()
        self.last_background: list[bytes] = []
        self.book = MatchingBook()
        self.venue = Venue(self.book, self._publish_later, cfg.taker_fee, cfg.maker_fee)
        self.held: list[tuple[float, int, int, int, Conn, bytes]] = []  # (due, n, rx, fd, conn, data)
        self.held_count = itertools.count()
        self.pending: list[bytes] = []  # executions to publish in the next packet
        self.streams: dict[str, Stream] = {}
        self.soup_logins: set[str] = set()
        self.soup_cfg = SoupConfig(session=cfg.session, users=cfg.users, login_s=cfg.login_s, silent_s=cfg.silent_s)
        self.ouch = OuchHandler(self.venue)
        # select(2) takes its timeout in µs, epoll in whole ms: the venue's added response time is a timer
        self.sel = selectors.SelectSelector() if cfg.extra_response_us else selectors.DefaultSelector()
        self.conns: dict[int, Conn] = {}
        self.closed_log: list[str] = []
        self.fix_ends: dict[str, FixEnd] = {}  # FIX sequence numbers per user, across connections
        self.listeners = [(_listener(cfg.iface, port), kind) for port, kind in ((cfg.soup_port, "soup"),
                                                                                 (cfg.fix_port, "fix"))]
        for listener, kind in self.listeners:
            self.sel.register(listener, selectors.EVENT_READ, kind)
        self.refused = self.accept_failures = self.rounds_skipped = 0
        self.accept_backoff = self.accept_paused_until = self.last_note = 0.0
        self.conns_at_pause = 0

    def _publish_later(self, messages: list[bytes]) -> None:
        self.pending.extend(messages)

    def publish(self, messages: list[bytes], feed: Feed | None = None,
                book: MatchingBook | None = None) -> tuple[int, int]:
        """Send one packet, then apply it to the book (orders are read only after this returns). The floor's
        packets go to its own feed and a book of their own, so the exchange does the same work for both."""
        sent = (feed or self.feed).send(messages)
        for m in messages:
            (book or self.book).apply(m)
        return sent

    # ---- sessions ----
    def _accept(self, listener: socket.socket, kind: str) -> None:
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:
            # EMFILE/ENFILE/ENOBUFS: out of descriptors or memory. Keep serving the sessions there are, stop
            # listening for a while (backing off), and try again when the pause is over or a session ends.
            self._pause_accepting(f"accept failed: {exc.strerror or exc}")
            return
        self.accept_backoff = 0.0
        if len(self.conns) >= self.cfg.max_sessions:
            sock.close()
            self.refused += 1
            self._note(f"connection from {peer[0]} refused: {len(self.conns)} sessions open (max_sessions)")
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)
        now = time.monotonic()
        session = (ServerSession(self.soup_cfg, self.streams, self.ouch, now, self.soup_logins) if kind == "soup" else
                   FixSession(self.venue, self.cfg.users, "LATLABX", now, self.fix_ends, self.cfg.fix_resend_timeout_s))
        self.conns[sock.fileno()] = Conn(sock, session)
        self.sel.register(sock, selectors.EVENT_READ, "conn")

    def _read(self, conn: Conn) -> list[tuple[int, int, Conn, bytes]]:
        """[(kernel receive time, fd, conn, bytes)], or [] (the connection may have been dropped)."""
        try:
            data, anc, _, _ = conn.sock.recvmsg(65536, 256)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as exc:
            self._drop(conn, f"receive failed: {exc}")
            return []
        if not data:
            self._drop(conn, conn.session.closed or "peer closed the connection")
            return []
        rx = kernel_rx_ns(anc) or time.time_ns()
        return [(rx, conn.sock.fileno(), conn, data)]

    def _send(self, conn: Conn, data: bytes) -> None:
        if not data:
            return
        # Answers are small and there is no queue per session: a peer that stops reading fills its buffer and is
        # dropped, as soon as an answer does not fit whole (half an answer would corrupt its stream).
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, OSError) as exc:
            self._drop(conn, f"send failed ({exc.__class__.__name__}): a client that stops reading")
            return
        if sent < len(data):
            self._drop(conn, f"send buffer full ({sent} of {len(data)} bytes): a client that stops reading")

    def _drop(self, conn: Conn, reason: str) -> None:
        fd = conn.sock.fileno()
        if fd in self.conns:
            self.sel.unregister(conn.sock)
            del self.conns[fd]
            conn.sock.close()
            if isinstance(conn.session, ServerSession):
                conn.session.release()
            user = getattr(conn.session, "user", None) or "?"
            self.closed_log.append(f"{user}: {reason}")
            print(f"session {user} closed: {reason}", file=sys.stderr, flush=True)

    def _note(self, line: str) -> None:
        """Log a server event once per second at most (a flood must not flood the log too)."""
        now = time.monotonic()
        if now - self.last_note >= 1.0:
            print(f"exchange: {line}", file=sys.stderr, flush=True)
            self.last_note = now

    def _pause_accepting(self, why: str) -> None:
        self.accept_backoff = min(1.0, self.accept_backoff * 2) if self.accept_backoff else 0.05
        self.accept_paused_until = time.monotonic() + self.accept_backoff
        self.conns_at_pause = len(self.conns)
        for listener, _kind in self.listeners:
            with contextlib.suppress(KeyError):
                self.sel.unregister(listener)
        self.accept_failures += 1
        self._note(f"{why}; not accepting for {self.accept_backoff:g} s ({len(self.conns)} sessions go on)")

    def _resume_accepting(self, now: float) -> None:
        if self.accept_paused_until and (now >= self.accept_paused_until or len(self.conns) < self.conns_at_pause):
            for listener, kind in self.listeners:
                with contextlib.suppress(KeyError, ValueError):
                    self.sel.register(listener, selectors.EVENT_READ, kind)
            self.accept_paused_until = 0.0

    def poll(self, timeout: float) -> None:
        """Serve sessions for up to `timeout` s (orders, logins, timers). What several sessions sent is
        handled in the order the kernel received it, so the first order in is the first matched. With
        extra_response_us, what a logged-in session that is not colocated sends is held that long first: the
        venue's own added response time (this kernel has no netem)."""
        now = time.monotonic()
        self._resume_accepting(now)
        if self.held:
            timeout = max(0.0, min(timeout, self.held[0][0] - now))
        arrivals = []
        for key, _ in self.sel.select(timeout):
            if key.data in ("soup", "fix"):
                self._accept(key.fileobj, key.data)  # type: ignore[arg-type]
            else:
                conn = self.conns.get(key.fileobj.fileno())  # type: ignore[union-attr]
                if conn:
                    arrivals.extend(self._read(conn))
        for rx, _, conn, data in self._due(arrivals):
            if conn.sock.fileno() in self.conns:
                before = self._orders_seen()
                self._send(conn, conn.session.receive(data, time.monotonic()))
                if not conn.first_rx and self._orders_seen() > before:  # an order, not a heartbeat
                    conn.first_rx = rx
                if conn.session.closed:
                    self._drop(conn, conn.session.closed)
        now = time.monotonic()
        for conn in list(self.conns.values()):
            self._send(conn, conn.session.tick(now))
            if conn.session.closed:
                self._drop(conn, conn.session.closed)
        if self.cfg.mode == "quotes" and self.pending:  # a round lasts: what traded is published at once
            self.publish(self.pending)
            self.pending = []

    def _due(self, arrivals: list[tuple[int, int, Conn, bytes]]) -> list[tuple[int, int, Conn, bytes]]:
        """What is to be handled now, in kernel arrival order: what arrived (unless held) and what is due."""
        delay = self.cfg.extra_response_us / 1e6
        now = time.monotonic()
        ready = []
        for rx, fd, conn, data in arrivals:
            if delay and conn.session.user is not None and conn.session.user not in self.cfg.colocated:
                heapq.heappush(self.held, (now + delay, next(self.held_count), rx, fd, conn, data))
            else:
                ready.append((rx, fd, conn, data))
        while self.held and self.held[0][0] <= now:
            _, _, rx, fd, conn, data = heapq.heappop(self.held)
            ready.append((rx, fd, conn, data))
        return sorted(ready, key=lambda a: (a[0], a[1]))

    def _orders_seen(self) -> int:
        return self.venue.counts["orders"] + self.venue.counts["duplicate_tokens"]

    def logged_in(self) -> set[str]:
        return {c.session.user for c in self.conns.values() if c.session.user and not c.session.closed}

    # ---- the run ----
    def opening(self) -> None:
        cfg = self.cfg
        gen = generate(GenParams(seed=cfg.seed, messages=cfg.triggers * cfg.background + 1000,
                                 instruments=cfg.instruments, live_orders=cfg.live_orders, session=cfg.session))
        build: list[bytes] = []
        for msg in gen:
            build.append(msg)
            if len(build) >= cfg.live_orders + 2 * cfg.instruments + 2:
                break
        self.background = gen
        locate = cfg.trigger_locate
        build.append(_directory(locate, TRIGGER_STOCK))
        if cfg.mode == "quotes":
            build.append(_directory(cfg.quote_locate, cfg.quote_stock))
        self.next_ref = 1 << 40
        # a resting book on the trigger instrument: bids below, asks above the limit
        for k in range(1, 6):
            build.append(self._add(locate, "B", cfg.limit - k * TICK, 500))
            build.append(self._add(locate, "S", cfg.limit + k * TICK, 500))
        for i in range(0, len(build), 30):
            self.publish(build[i:i + 30])
            time.sleep(0.0005)

    def _add(self, locate: int, side: str, price: int, shares: int, stock: str = TRIGGER_STOCK) -> bytes:
        self.next_ref += 1
        return itch.encode(itch.make("A", stock_locate=locate, timestamp=itch.timestamp_now(),
                                     order_ref=self.next_ref, side=side, shares=shares, stock=stock, price=price))

    def _background(self, n: int) -> list[bytes]:
        out = []
        for msg in self.background:
            if msg[0:1] in b"AFEXDUC":
                out.append(msg)
            if len(out) == n:
                break
        return out

    def run(self) -> ExchangeResult:
        """The session: wait for every expected login, open, send the triggers (one every interval), close; the
        wire-to-wire records are written to cfg.out. Ctrl-C (or SIGTERM) ends it early, in any phase: status
        "interrupted"."""
        cfg = self.cfg
        rec = _Records.of(cfg.triggers, list(cfg.expect), self._floor_turns(cfg.triggers))
        status = "ok"
        try:  # a stop at any point still gives the result, with what was done so far
            self._wait_for_logins()
            self.opening()
            self._poll_for(0.3, 0.01)
            if cfg.mode == "quotes":
                self._quote_rounds(rec)
            else:
                self._triggers(rec)
        except KeyboardInterrupt:
            status = "interrupted"
        self._close()
        rec.save(cfg.out)
        return ExchangeResult(status=status, triggers=cfg.triggers, users=rec.users, venue=self.venue.counts,
                              ouch_malformed=self.ouch.malformed, closed=self.closed_log, log=self.venue.log[:20],
                              connections_refused=self.refused, accept_failures=self.accept_failures,
                              fix_sessions={user: end.counts for user, end in self.fix_ends.items()},
                              fees=self.venue.fees, maker_fees=self.venue.maker_fees, taken=self.venue.executed,
                              rounds_skipped=self.rounds_skipped)

    def _triggers(self, rec: _Records) -> None:
        """Triggers mode: one trigger every interval (see the module's text)."""
        # the next trader packet's background is made ahead, so that just before a send the exchange does the
        # same work for the trader and for the floor
        background = self._background(self.cfg.background)
        for i in range(self.cfg.triggers):
            self._trigger(i, background, rec)
            if not rec.to_floor[i]:
                background = self._background(self.cfg.background)
            self._poll_for(self.cfg.interval_ms / 1000)

    def _quote_rounds(self, rec: _Records) -> None:
        """Quotes mode: each round at its time on the shared clock (see the module's text)."""
        cfg = self.cfg
        start = cfg.start_ns or time.time_ns()
        for i in range(cfg.triggers):
            due = start + round(i * cfg.interval_ms * 1e6)
            if time.time_ns() - due > cfg.interval_ms * 5e5:  # half a round late: skipped, so venues stay in step
                self.rounds_skipped += 1
                continue
            self._poll_for((due - time.time_ns()) / 1e9)
            for conn in self.conns.values():
                conn.first_rx = 0
            before = [self.venue.executed.get(u, 0) for u in rec.users]
            adds = [self._add(cfg.quote_locate, "S", cfg.limit + ticks * TICK, shares, cfg.quote_stock)
                    for ticks, shares in cfg.quotes]
            refs = range(self.next_ref - len(adds) + 1, self.next_ref + 1)
            _, rec.t_send[i] = self.publish(adds)
            self._poll_for(cfg.answer_timeout_ms / 1000)
            for j, user in enumerate(rec.users):
                rec.t_rx[i, j] = self._first_rx(user)
                rec.taken[i, j] = self.venue.executed.get(user, 0) - before[j]
            self.pending += [itch.encode(itch.make("D", stock_locate=cfg.quote_locate, order_ref=ref))
                             for ref in refs if ref in self.book.orders]
            if self.pending:
                self.publish(self.pending)
                self.pending = []

    def _wait_for_logins(self) -> None:
        cfg = self.cfg
        deadline = time.monotonic() + cfg.wait_login_s
        while not set(cfg.expect) <= self.logged_in():
            if time.monotonic() > deadline:
                raise SystemExit(f"sessions not logged in after {cfg.wait_login_s:g} s: "
                                 f"{sorted(set(cfg.expect) - self.logged_in())}")
            self.poll(0.05)

    def _poll_for(self, seconds: float, step: float | None = None) -> None:
        """Serve the sessions for `seconds` (in steps of `step`, or until the time is up)."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            self.poll(step if step is not None else left)

    def _trigger(self, i: int, background: list[bytes], rec: _Records) -> None:
        """Trigger i: a resting sell at the limit, to the trader's feed (after its background) or the floor's; the
        first order bytes of each user, then who filled it or its withdrawal."""
        cfg = self.cfg
        for conn in self.conns.values():
            conn.first_rx = 0
        trigger = self._add(cfg.trigger_locate, "S", cfg.limit, cfg.trigger_shares)
        trigger_ref = self.next_ref
        if rec.to_floor[i]:
            rec.t_send[i] = self._floor_trigger(trigger)
            waiting = [cfg.floor_user]
        else:
            self.last_background = background
            _, rec.t_send[i] = self.publish([*background, trigger])
            waiting = [u for u in rec.users if u != cfg.floor_user] if self.floor_feed else rec.users
        wait_until = time.monotonic() + cfg.answer_timeout_ms / 1000
        while time.monotonic() < wait_until:
            self.poll(0.0005)
            if all(self._first_rx(u) for u in waiting):
                break
        for j, user in enumerate(rec.users):
            rec.t_rx[i, j] = self._first_rx(user)
        delete = itch.encode(itch.make("D", stock_locate=cfg.trigger_locate, order_ref=trigger_ref))
        if rec.to_floor[i]:  # the floor's trigger is not in the exchange's book: its order is canceled
            self.floor_book.apply(delete)
        elif trigger_ref in self.book.orders:
            self.pending.append(delete)  # nobody took it: the exchange withdraws it
        else:
            rec.filled[i] = self._winner(rec.users, trigger_ref)
        if self.pending:  # executions and withdrawals go out at once, in their own packet
            self.publish(self.pending)
            self.pending = []

    def _close(self) -> None:
        """What is pending, the feeds' end of session, then every session ended and dropped."""
        if self.pending:
            self.publish(self.pending)
        self.feed.end()
        if self.floor_feed:
            self.floor_feed.end()
        end = time.monotonic() + 0.3
        while time.monotonic() < end and self.conns:
            self.poll(0.02)
        for conn in list(self.conns.values()):
            self._send(conn, conn.session.end_of_session(time.monotonic()) if hasattr(conn.session, "end_of_session")
                       else b"")
            self._drop(conn, "end of session")

    def _floor_turns(self, n: int) -> np.ndarray:
        """Paired mode: which triggers go to the floor (none without a floor)."""
        return floor_turns(n, self.cfg.seed) if self.floor_feed else np.zeros(n, bool)

    def _floor_trigger(self, trigger: bytes) -> int:
        """The floor's packet: the trader's last background and a trigger, on the floor's feed only."""
        filler = self.last_background or [trigger] * self.cfg.background
        return self.publish([*filler, trigger], self.floor_feed, self.floor_book)[1]

    def _first_rx(self, user: str) -> int:
        return max((c.first_rx for c in self.conns.values() if c.session.user == user), default=NO_ORDER)

    def _winner(self, users: list[str], trigger_ref: int) -> int:
        """Index of the user whose order executed against the trigger (the venue filled the first one)."""
        user = self.venue.takers.get(trigger_ref)
        return users.index(user) if user in users else -1


def floor_turns(n: int, seed: int) -> np.ndarray:
    """Which of n triggers go to the floor: one of each pair, the pairs in alternating order (T F, F T, T F, ...;
    the seed picks the first). Then the trader's triggers and the floor's each follow a trader's trigger half the
    time and a floor's the other half. That matters: measured here, a trigger that followed the trader's was
    received 0.4-1.0 us sooner (kernel rx -> user) than one that followed the floor's, whichever side it went to,
    and pairs in random order put the floor's triggers after the trader's three times in four, which gave the
    floor a 0.14-0.57 us head start."""
    first = (np.arange((n + 1) // 2) % 2 == 1) ^ bool(np.random.default_rng(seed).integers(0, 2))
    return np.stack([first, ~first], axis=1).reshape(-1)[:n]


def main(argv: list[str] | None = None) -> int:
    exchange = Exchange(start(ExchangeConfig, "python -m venue.exchange", argv))
    say_ready()
    say_result(exchange.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
