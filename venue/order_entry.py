"""The exchange simulator's order entry: OUCH 4.2 (inside SoupBinTCP) and FIX 4.4, against one matching book.

Both protocols end in `Venue.enter`, which validates an order, matches it IOC against the book and
returns the outcome; each protocol turns that outcome into its own messages. Rejections carry the
OUCH reason code and a readable text; nothing an order does can corrupt the book.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from latlab.wire import fix44, itch, ouch
from latlab.wire.fix_session import FixEnd
from venue.matching import TICK, Fill, MatchingBook
from venue.soup_session import ServerSession

# OUCH 4.2 rejected-order reasons used here.
REJECT_SHARES = "Z"      # shares: zero or over the safety threshold
REJECT_PRICE = "X"       # invalid price (off the penny grid, or zero)
REJECT_STOCK = "S"       # invalid stock
REJECT_OTHER = "O"
MAX_SHARES = 1_000_000
MAX_HEARTBEAT_S = 3600


@dataclass
class Outcome:
    """What happened to one order: rejected (reason) or accepted with fills; the rest is canceled (IOC)."""

    token: str
    order_ref: int = 0
    reject: str = ""
    text: str = ""
    fills: list[Fill] = field(default_factory=list)
    match_numbers: list[int] = field(default_factory=list)  # per fill: the number its ITCH E message carries
    canceled: int = 0
    fee: int = 0  # the taker fee charged for its fills, 1/10,000 $


class Venue:
    """Validation and matching shared by both protocols. `publish` receives the ITCH messages that
    report executions (the feed must tell everyone what traded)."""

    def __init__(self, book: MatchingBook, publish: Callable[[list[bytes]], None], taker_fee: int = 0,
                 maker_fee: int = 0) -> None:
        self.book = book
        self.publish = publish
        self.taker_fee = taker_fee  # per share, 1/10,000 $: orders are IOC, so every fill takes liquidity
        self.maker_fee = maker_fee  # per share, charged to the resting side: the venue's own orders (< 0: rebate)
        self.fees: dict[str, int] = {}  # per user, charged so far
        self.maker_fees = 0
        self.executed: dict[str, int] = {}  # per user: shares filled so far
        self.refs = itertools.count(1)
        self.matches = itertools.count(1)
        self.tokens: dict[str, set[str]] = {}
        self.takers: dict[int, str] = {}  # resting order ref → the user whose order executed against it
        self.counts = {"orders": 0, "rejected": 0, "executed": 0, "canceled": 0, "duplicate_tokens": 0}
        self.log: list[str] = []

    def enter(self, user: str, token: str, side: str, shares: int, stock: str, price: int) -> Outcome | None:
        """None for a duplicate token (ignored, as OUCH does)."""
        seen = self.tokens.setdefault(user, set())
        if token in seen:
            self.counts["duplicate_tokens"] += 1
            self.log.append(f"{user}: duplicate token {token!r} ignored")
            return None
        seen.add(token)
        self.counts["orders"] += 1
        out = Outcome(token)
        locate = self.book.symbols.get(stock.strip())
        if shares <= 0 or shares > MAX_SHARES:
            out.reject, out.text = REJECT_SHARES, f"shares {shares} outside 1..{MAX_SHARES}"
        elif price <= 0 or price % TICK:
            out.reject, out.text = REJECT_PRICE, f"price {price} is not on the {TICK}-unit grid"
        elif locate is None:
            out.reject, out.text = REJECT_STOCK, f"unknown stock {stock.strip()!r}"
        elif side not in "BS":
            out.reject, out.text = REJECT_OTHER, f"side {side!r}"
        if out.reject:
            self.counts["rejected"] += 1
            self.log.append(f"{user}: order {token!r} rejected: {out.text}")
            return out
        out.order_ref = next(self.refs)
        out.fills = self.book.match_ioc(locate, side, shares, price)
        executed = sum(f.shares for f in out.fills)
        out.canceled = shares - executed
        out.fee = executed * self.taker_fee
        if out.fee:
            self.fees[user] = self.fees.get(user, 0) + out.fee
        self.maker_fees += executed * self.maker_fee
        if executed:
            self.executed[user] = self.executed.get(user, 0) + executed
        self.counts["executed" if executed else "canceled"] += 1
        for f in out.fills:
            self.takers[f.ref] = user
        if out.fills:
            out.match_numbers = [next(self.matches) for _ in out.fills]
            messages = [itch.encode(itch.make("E", stock_locate=locate, timestamp=itch.timestamp_now(),
                                              order_ref=f.ref, executed_shares=f.shares, match_number=match))
                        for f, match in zip(out.fills, out.match_numbers, strict=True)]
            for m in messages:
                self.book.apply(m)
            self.publish(messages)
        return out


class OuchHandler:
    """OUCH 4.2 over a SoupBinTCP session: Enter Order and Cancel Order in, sequenced answers out."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.malformed = 0

    def __call__(self, payload: bytes, session: ServerSession) -> None:
        now = time.monotonic()
        try:
            msg = ouch.INBOUND.decode(payload)
        except (ValueError, KeyError) as exc:
            self.malformed += 1
            self.venue.log.append(f"{session.user}: malformed OUCH message: {exc}")
            return
        if msg.type == "X":
            # Orders here are IOC: nothing rests, so a cancel finds nothing (OUCH ignores unknown tokens).
            return
        out = self.venue.enter(session.user or "", msg.token, msg.side, msg.shares, msg.stock, msg.price)
        if out is None:
            return
        ts = itch.timestamp_now()  # OUCH 4.2: nanoseconds since midnight, as ITCH
        if out.reject:
            session.send_sequenced(ouch.OUTBOUND.encode(ouch.OUTBOUND.make(
                "J", timestamp=ts, token=msg.token, reason=out.reject)), now)
            return
        session.send_sequenced(ouch.OUTBOUND.encode(ouch.OUTBOUND.make(
            "A", timestamp=ts, token=msg.token, side=msg.side, shares=msg.shares, stock=msg.stock, price=msg.price,
            time_in_force=msg.time_in_force, firm=msg.firm, display=msg.display, order_ref=out.order_ref,
            capacity=msg.capacity, intermarket_sweep=msg.intermarket_sweep, minimum_quantity=msg.minimum_quantity,
            cross_type=msg.cross_type, order_state="L", bbo_weight=" ")), now)
        for f, match in zip(out.fills, out.match_numbers, strict=True):
            session.send_sequenced(ouch.OUTBOUND.encode(ouch.OUTBOUND.make(
                "E", timestamp=ts, token=msg.token, executed_shares=f.shares, execution_price=f.price,
                liquidity_flag="R", match_number=match)), now)
        if out.canceled:
            session.send_sequenced(ouch.OUTBOUND.encode(ouch.OUTBOUND.make(
                "C", timestamp=ts, token=msg.token, decrement_shares=out.canceled, reason="I")), now)


class FixSession:
    """One FIX 4.4 connection: Logon (Username 553 / Password 554), heartbeats at HeartBtInt, orders. Its sequence
    numbers are the user's FixEnd (latlab.wire.fix_session), kept in `ends` across connections: a reconnect goes on
    from them (gap recovery, resends), a Logon with ResetSeqNumFlag(141)=Y starts both directions again at 1."""

    def __init__(self, venue: Venue, users: dict[str, str], comp_id: str, now: float,
                 ends: dict[str, FixEnd] | None = None, resend_timeout_s: float = 5.0) -> None:
        self.venue = venue
        self.users = users
        self.comp_id = comp_id
        self.ends = {} if ends is None else ends
        self.resend_timeout_s = resend_timeout_s
        self.reader = fix44.FixReader()
        self.end: FixEnd | None = None
        self.user: str | None = None
        self.heartbeat_s = 30.0
        self.opened = self.last_received = self.last_sent = now
        self.closed: str | None = None
        self.refusal = b""  # the Logout of a Logon refused before a session exists
        self.exec_ids = itertools.count(1)

    def _send(self, msg_type: str, fields: list[tuple[int, str | int]], now: float) -> None:
        assert self.end is not None
        self.end.send(msg_type, fields)
        self.last_sent = now

    def _refuse(self, msg: fix44.FixMessage, text: str, reason: str = "") -> None:
        self.refusal = fix44.encode(fix44.LOGOUT, self.comp_id, msg.get(49), 1, [(58, text)])
        self.closed = reason or text

    def _take(self) -> bytes:
        data, self.refusal = self.refusal, b""
        if self.end is not None:
            data += self.end.take()
            if self.end.closed and not self.closed:
                self.closed = self.end.closed
        return data

    def receive(self, data: bytes, now: float) -> bytes:
        if self.closed:
            return b""
        self.last_received = now
        try:
            messages = self.reader.feed(data)
        except ValueError as exc:
            self.closed = f"garbage: {exc}"
            return self._take()
        for msg in messages:
            if self.end is None:
                self._logon(msg, now)
            else:
                checked = self.end.receive(msg, now)
                if checked is not None:
                    self._message(checked, now)
            if self.closed or (self.end is not None and self.end.closed):
                break
        return self._take()

    def _logon(self, msg: fix44.FixMessage, now: float) -> None:
        user, password = msg.get(553), msg.get(554)
        if msg.type != fix44.LOGON or self.users.get(user) != password:
            self._refuse(msg, "logon rejected: not authorized", "logon rejected")
            return
        try:
            heartbeat = fix44.int_field(msg, 108, 1, MAX_HEARTBEAT_S, default=30)
        except fix44.FieldError as exc:
            self._refuse(msg, f"logon rejected: {exc}")
            return
        end = self.ends.get(user)
        if end is None or end.target != msg.get(49):
            end = self.ends[user] = FixEnd(self.comp_id, msg.get(49), self.resend_timeout_s)
        reset = msg.get(141) == "Y"
        if reset:
            end.reset()
        end.closed = None  # a new connection of the same session
        self.end, self.user, self.heartbeat_s = end, user, float(heartbeat)
        if end.receive(msg, now) is None:  # too low (a stale sequence): the FixEnd logged it out, saying why
            return
        fields: list[tuple[int, str | int]] = [(98, 0), (108, heartbeat), *([(141, "Y")] if reset else [])]
        self._send(fix44.LOGON, fields, now)
        end.after_logon(now)  # a gap the Logon revealed is asked for after the Logon's answer

    def _message(self, msg: fix44.FixMessage, now: float) -> None:
        if msg.type == fix44.NEW_ORDER_SINGLE:
            self._order(msg, now)
        elif msg.type == fix44.LOGOUT:
            self._send(fix44.LOGOUT, [], now)
            self.closed = "logout"
        elif msg.type == fix44.LOGON:
            self._send(fix44.REJECT, [(45, msg.get(34)), (58, "a second Logon on a logged-on session")], now)
        elif msg.type != fix44.REJECT:
            self._send(fix44.REJECT, [(45, msg.get(34)), (58, f"unsupported MsgType {msg.type!r}")], now)

    def _order(self, msg: fix44.FixMessage, now: float) -> None:
        side = {fix44.SIDE_BUY: "B", fix44.SIDE_SELL: "S"}.get(msg.get(54), "?")
        try:
            shares = fix44.int_field(msg, 38, 0, 2**32 - 1)
            price = fix44.price_field(msg, 44)
        except fix44.FieldError as exc:
            self._send(fix44.REJECT, [(45, msg.get(34)), (371, exc.tag), (372, msg.type),
                                      (373, fix44.REJECT_INCORRECT_DATA_FORMAT), (58, str(exc))], now)
            return
        out = self.venue.enter(self.user or "", msg.get(11), side, shares, msg.get(55), price)
        if out is None:
            return  # a ClOrdID seen before (a resend of an order that arrived): nothing is done twice
        common = {"order_id": str(out.order_ref), "cl_ord_id": msg.get(11), "symbol": msg.get(55),
                  "side": msg.get(54), "qty": shares}
        state = fix44.OrderState(shares)

        def report(exec_type: str, **extra: object) -> None:
            self._send(fix44.EXECUTION_REPORT, fix44.execution_report_fields(
                exec_id=str(next(self.exec_ids)), exec_type=exec_type, state=state, **common, **extra), now)  # type: ignore[arg-type]

        if out.reject:
            state.done = True
            report(fix44.EXEC_REJECTED, text=out.text)
            return
        report(fix44.EXEC_NEW)
        for f in out.fills:
            state.fill(f.shares, f.price)
            report(fix44.EXEC_TRADE, last_qty=f.shares, last_px=f.price, commission=f.shares * self.venue.taker_fee)
        if out.canceled:
            state.done = True
            report(fix44.EXEC_CANCELED, text="IOC remainder canceled")

    def tick(self, now: float) -> bytes:
        if self.closed:
            return b""
        if self.end is None:
            if now - self.opened >= 30.0:
                self.closed = "no logon within 30 s"
            return b""
        self.end.tick(now)
        if self.end.closed:
            return self._take()
        if now - self.last_received >= 2.5 * self.heartbeat_s:
            self.closed = f"silent for {2.5 * self.heartbeat_s:g} s"
        elif now - self.last_sent >= self.heartbeat_s:
            self._send(fix44.HEARTBEAT, [], now)
        return self._take()
