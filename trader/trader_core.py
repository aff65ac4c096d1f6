"""The trader's per-packet path, in Python: the reference for trader/_trader.c.

MoldUDP64 packet → ITCH messages → book → trigger (an ask added at or below the limit on the
trigger instrument) → pre-trade risk → an OUCH 4.2 Enter Order (buy, IOC) framed for SoupBinTCP.
A feed gap trips the kill switch (fail safe). The order token is the 2-letter prefix and the
sequence number of the triggering message, so the exchange knows which trigger an order answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from feed_handler._book import Books as CBooks
from feed_handler.book import Books
from latlab.wire import ouch
from latlab.wire import soupbintcp as soup
from trader._trader import STAGES, Trader
from trader.risk import RiskGate, RiskLimits

STAGE_NAMES = ("kernel_rx", "received", "decoded", "book", "decision", "risk", "encoded", "sent")
TOKEN_LEN = 14
# A slower store's verdict on an order (None: go on), as the full-risk path of the race consults.
Store = Callable[[bytes, int, int], "str | None"]
# The compiled trader's FIX identity: SenderCompID, TargetCompID, Symbol, the first MsgSeqNum of its orders.
FixIds = tuple[str, str, str, int]


@dataclass(frozen=True)
class OrderTemplate:
    """A SoupBinTCP `U` frame holding an OUCH Enter Order; the offsets are where token, shares, price go."""

    frame: bytes
    token_off: int
    shares_off: int
    price_off: int

    @classmethod
    def ouch(cls, stock: str, firm: str = "LLAB", side: str = "B") -> OrderTemplate:
        order = ouch.INBOUND.make("O", token=" " * TOKEN_LEN, side=side, shares=0, stock=stock, price=0,
                                  time_in_force=ouch.IOC, firm=firm, display="Y", capacity="A",
                                  intermarket_sweep="N", minimum_quantity=0, cross_type="N", customer_type="R")
        frame = soup.frame("U", ouch.INBOUND.encode(order))
        body = 3  # length (2) and the SoupBinTCP type byte
        return cls(frame, body + 1, body + 16, body + 28)

    def fill(self, token: bytes, shares: int, price: int) -> bytes:
        out = bytearray(self.frame)
        out[self.token_off:self.token_off + TOKEN_LEN] = token
        out[self.shares_off:self.shares_off + 4] = shares.to_bytes(4, "big")
        out[self.price_off:self.price_off + 4] = price.to_bytes(4, "big")
        return bytes(out)


@dataclass(frozen=True)
class TraderSpec:
    """What the strategy watches and the limits it trades under (from tick_to_trade in the config)."""

    locate: int
    stock: str
    limit: int
    clip: int = 100
    prefix: str = "AA"
    last_trade: int = 1_000_000
    risk: RiskLimits = field(default_factory=RiskLimits)


def token_for(prefix: str, sequence: int) -> bytes:
    return prefix.encode() + str(sequence % 10**12).rjust(12, "0").encode()


def compiled(spec: TraderSpec, rows: np.ndarray, store: Store | None = None, book_capacity: int = 4096,
             tsc: bool = False, shadow: bool = True, fix: FixIds | None = None,
             acks: np.ndarray | None = None) -> Trader:
    """The C trader; `rows` (n × 8 int64) receives one row of stage timestamps per order. The order map starts
    small (it grows when needed) so that a lab-sized book stays in cache between triggers. With `tsc`, stages
    after the first are timed by the TSC (calibrated against CLOCK_REALTIME for 20 ms here). The shadow is a
    second trader with its own small book that the busy-poll loop's cache warming sends made-up triggers
    through (`Trader.warm`), so that the real trader's state is never touched. With `fix` (SenderCompID,
    TargetCompID, Symbol, first MsgSeqNum) the orders are FIX 4.4 NewOrderSingle instead of OUCH. `acks` (one
    int64 per row) receives, from the run loop, when each order's first answer was seen: the order round trip."""
    tpl = OrderTemplate.ouch(spec.stock)
    lim = spec.risk
    return Trader(books=CBooks(capacity=book_capacity), locate=spec.locate, limit=spec.limit, clip=spec.clip,
                  prefix=spec.prefix, frame=tpl.frame, token_off=tpl.token_off, shares_off=tpl.shares_off,
                  price_off=tpl.price_off, rows=rows, max_order_shares=lim.max_order_shares,
                  max_notional=lim.max_notional, price_band_bps=lim.price_band_bps,
                  max_orders_per_second=lim.max_orders_per_second, last_trade=spec.last_trade, store=store,
                  tsc=tsc, fix=fix, acks=acks,
                  shadow=compiled(spec, stage_rows(1), book_capacity=64, shadow=False, fix=fix) if shadow else None)


def stage_rows(capacity: int) -> np.ndarray:
    return np.zeros((capacity, STAGES), np.int64)


class TraderCore:
    """The reference path; on_packet returns the order frame (or b"") exactly as Trader.on_packet does."""

    def __init__(self, spec: TraderSpec, rows: np.ndarray, store: Store | None = None,
                 encode: Callable[[bytes, int, int], bytes] | None = None) -> None:
        self.spec = spec
        self.books = Books()
        self.gate = RiskGate(spec.risk, spec.last_trade)
        self.template = OrderTemplate.ouch(spec.stock)
        self.encode = encode or self.template.fill
        self.store = store
        self.rows = rows
        self.nrows = 0
        self.awaiting = 0  # 1 + the row of the last order sent, until the session has something (the run loop's)
        self.session: bytes | None = None
        self.expected = 0
        self.ended = False
        self.deferred: list[tuple[bytes, int, int]] = []
        self.counts = dict.fromkeys(("packets", "messages", "malformed", "gaps", "duplicates", "heartbeats",
                                     "triggers", "orders"), 0)
        self.store_rejects = 0

    def kill(self, why: str) -> None:
        self.gate.kill(why)

    def on_packet(self, data: bytes, t_kernel: int = 0) -> bytes:
        """One MoldUDP64 packet: the trigger instrument's messages into the book, and the order frame when a
        trigger passes risk (b"" otherwise); other instruments' messages wait for finish_packet."""
        clock = time.time_ns
        t_user = clock()
        self.counts["packets"] += 1
        header = self._in_sequence(data)
        if header is None:
            return b""
        seq, count = header
        blocks = self._blocks(data, count)
        if blocks is None:
            return b""
        t_decoded = clock()
        trigger = self._apply(data, blocks)
        self.counts["messages"] += len(blocks)
        self.expected = seq + count
        t_book = clock()
        if trigger < 0:
            return b""
        return self._answer(data, blocks[trigger][0], seq + trigger, (t_kernel, t_user, t_decoded, t_book))

    def _in_sequence(self, data: bytes) -> tuple[int, int] | None:
        """(sequence, count) of a packet with messages to apply; None (counted) for anything else. A gap kills
        the gate: orders stop until a person looks."""
        c = self.counts
        if len(data) < 20:
            c["malformed"] += 1
            return None
        if self.session is None:
            self.session = data[:10]
        elif data[:10] != self.session:
            c["malformed"] += 1
            return None
        seq, count = int.from_bytes(data[10:18], "big"), int.from_bytes(data[18:20], "big")
        if count == 0xFFFF:
            self.ended = True
            return None
        if self.expected and seq > self.expected:
            c["gaps"] += 1
            self.gate.kill("feed gap: orders stopped (fail safe)")
        if count == 0:
            c["heartbeats"] += 1
            return None
        if self.expected and seq + count <= self.expected:
            c["duplicates"] += 1
            return None
        return seq, count

    def _blocks(self, data: bytes, count: int) -> list[tuple[int, int]] | None:
        """(start, length) of each message block; None (counted malformed) unless exactly `count` fill the
        packet."""
        blocks, pos = [], 20
        while pos + 2 <= len(data) and len(blocks) < 256:
            n = int.from_bytes(data[pos:pos + 2], "big")
            if n == 0 or pos + 2 + n > len(data):
                break
            blocks.append((pos + 2, n))
            pos += 2 + n
        if pos != len(data) or len(blocks) != count:
            self.counts["malformed"] += 1
            return None
        return blocks

    def _apply(self, data: bytes, blocks: list[tuple[int, int]]) -> int:
        """Apply the trigger instrument's messages (others are deferred); the index of the first sell add at or
        under the limit, or -1."""
        spec, trigger = self.spec, -1
        self.deferred = []
        for i, (start, n) in enumerate(blocks):
            if n < 3 or int.from_bytes(data[start + 1:start + 3], "big") != spec.locate:
                self.deferred.append((data, start, n))  # other instruments: applied after the send
                continue
            self.books.apply(data, start, n, start)
            kind = data[start]
            price = int.from_bytes(data[start + 32:start + 36], "big") if n >= 36 else 0
            if kind in b"AF" and n >= 36 and data[start + 19] == ord("S") and price <= spec.limit and trigger < 0:
                trigger = i
            elif (kind == ord("P") and n == 44) or (kind == ord("C") and n == 36):
                self.gate.on_trade(price)
        return trigger

    def _answer(self, data: bytes, start: int, trigger_seq: int, stamps: tuple[int, int, int, int]) -> bytes:
        """The order for the trigger at `start` (sequence `trigger_seq`) when the book still offers at or under
        the limit and risk passes; its stage row after `stamps` (kernel rx, user rx, decoded, book)."""
        clock, spec = time.time_ns, self.spec
        self.counts["triggers"] += 1
        best = self.books.books[spec.locate].best(1) if spec.locate in self.books.books else None
        if best is None or best.price == 0 or best.price > spec.limit:  # a zero price is no ask (as in C)
            return b""
        shares = min(spec.clip, int.from_bytes(data[start + 20:start + 24], "big"))
        token = token_for(spec.prefix, trigger_seq)
        t_decision = clock()
        reason = self.gate.check(token, shares, best.price, t_decision)
        if reason is None and self.store is not None and self.store(token, shares, best.price) is not None:
            self._undo_pass(token)
            self.store_rejects += 1
            reason = "store"
        t_risk = clock()
        if reason:
            return b""
        frame = self.encode(token, shares, best.price)
        t_encoded = clock()
        self.counts["orders"] += 1
        if self.nrows < len(self.rows):
            self.rows[self.nrows] = (*stamps, t_decision, t_risk, t_encoded, t_encoded)
            self.nrows += 1
        return frame

    def finish_packet(self) -> None:
        """Apply the other instruments' messages of the last packet (after its order was sent)."""
        for data, start, n in self.deferred:
            self.books.apply(data, start, n, start)
        self.deferred = []

    def handle(self, data: bytes, t_kernel: int = 0) -> bytes:
        """on_packet then finish_packet: the whole packet, as Trader.on_packet does."""
        frame = self.on_packet(data, t_kernel)
        self.finish_packet()
        return frame

    def _undo_pass(self, token: bytes) -> None:
        """The store refused an order the gate had passed: the gate must not count it as sent."""
        self.gate.tokens.discard(token)
        self.gate.recent.pop()
        self.gate.passed -= 1

    def stats(self) -> dict[str, object]:
        rejects = dict(self.gate.rejects)
        if self.store_rejects:
            rejects["store"] = self.store_rejects
        return {**self.counts, "passed": self.gate.passed, "rejects": rejects, "killed": self.gate.killed or "",
                "rows": self.nrows, "ended": int(self.ended), "last_trade": self.gate.last_trade}
