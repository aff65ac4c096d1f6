"""The exchange simulator's own book: every order of the feed it publishes, FIFO per price level,
and IOC matching of incoming orders against it (price, then time priority)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from latlab.wire import itch

TICK = 100  # $0.01 in ITCH/OUCH price units (4 implied decimals)


@dataclass
class Resting:
    ref: int
    locate: int
    side: str
    price: int
    shares: int


@dataclass
class Fill:
    ref: int          # the resting order's reference
    shares: int
    price: int


@dataclass
class MatchingBook:
    """Orders by ref and, per (locate, side, price), refs in arrival order."""

    orders: dict[int, Resting] = field(default_factory=dict)
    levels: dict[tuple[int, str, int], OrderedDict[int, None]] = field(default_factory=dict)
    symbols: dict[str, int] = field(default_factory=dict)
    ignored: int = 0

    def apply(self, msg: bytes) -> None:
        """One ITCH message as published; what does not touch the book is ignored."""
        kind = chr(msg[0])
        if kind == "R":
            m = itch.decode(msg)
            self.symbols[m.stock.strip()] = m.stock_locate
        elif kind in "AF":
            m = itch.decode(msg)
            self._add(Resting(m.order_ref, m.stock_locate, m.side, m.price, m.shares))
        elif kind in "ECX":
            m = itch.decode(msg)
            shares = m.executed_shares if kind in "EC" else m.cancelled_shares
            self._reduce(m.order_ref, shares)
        elif kind == "D":
            self._remove(itch.decode(msg).order_ref)
        elif kind == "U":
            m = itch.decode(msg)
            old = self.orders.get(m.original_ref)
            if old is not None:
                self._remove(old.ref)
                self._add(Resting(m.new_ref, old.locate, old.side, m.price, m.shares))
        else:
            self.ignored += 1

    def _add(self, order: Resting) -> None:
        self.orders[order.ref] = order
        self.levels.setdefault((order.locate, order.side, order.price), OrderedDict())[order.ref] = None

    def _remove(self, ref: int) -> None:
        order = self.orders.pop(ref, None)
        if order is None:
            return
        key = (order.locate, order.side, order.price)
        level = self.levels[key]
        level.pop(ref, None)
        if not level:
            del self.levels[key]

    def _reduce(self, ref: int, shares: int) -> None:
        order = self.orders.get(ref)
        if order is None:
            return
        order.shares -= shares
        if order.shares <= 0:
            self._remove(ref)

    def match_ioc(self, locate: int, side: str, shares: int, price: int) -> list[Fill]:
        """Fill a buy (B) or sell (S) up to `shares` at `price` or better; the book is not changed here:
        the exchange publishes the executions and applies them like any other feed message."""
        opposite = "S" if side == "B" else "B"
        prices = sorted(p for (loc, s, p) in self.levels if loc == locate and s == opposite and
                        (p <= price if side == "B" else p >= price))
        if side == "S":
            prices.reverse()
        fills: list[Fill] = []
        left = shares
        for p in prices:
            for ref in self.levels[(locate, opposite, p)]:
                take = min(left, self.orders[ref].shares)
                fills.append(Fill(ref, take, p))
                left -= take
                if not left:
                    return fills
        return fills
