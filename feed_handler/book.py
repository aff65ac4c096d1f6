"""The reference order books (pure Python): the spec's rules, and the error policy the compiled books copy.

Rules (ITCH 5.0): A/F add; E/C execute and X cancel are cumulative (shares subtracted); D deletes; U
replaces (the new order keeps side and stock of the original, gets new ref, shares and price); an order
whose shares reach zero is removed; P/Q/B and the other types leave the books alone.

Bad input never corrupts a book; each case is counted by kind and the message is skipped:
unknown_type, bad_length, truncated (framing); bad_side, zero_shares, duplicate_ref (adds/replaces);
unknown_ref (E/C/X/D/U for an order not on the book); over_execute / over_cancel (more shares than
remain: the order is taken down to zero and removed, and the error counted).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from latlab.wire.itch import SPECS_BY_BYTE

ERROR_KINDS = ("unknown_type", "bad_length", "truncated", "bad_side", "zero_shares", "duplicate_ref",
               "unknown_ref", "over_execute", "over_cancel")
MAX_ERROR_SAMPLES = 10
_U64 = __import__("struct").Struct(">Q")
_U32 = __import__("struct").Struct(">I")
_U16 = __import__("struct").Struct(">H")
BID, ASK = 0, 1


def symbol_text(raw: bytes) -> str:
    """An ITCH alpha field as text: trailing space padding stripped (spaces only), every byte outside
    printable ASCII shown as \\xNN, so that a tab or a latin-1 byte is visible and never mistaken for padding."""
    return "".join(chr(c) if 0x20 <= c < 0x7F else f"\\x{c:02x}" for c in raw.rstrip(b" "))


class Level(NamedTuple):
    price: int
    shares: int
    orders: int


@dataclass
class ErrorSample:
    kind: str
    offset: int
    data: bytes


@dataclass
class InstrumentBook:
    """Price levels of one instrument: price → [shares, order count] per side."""

    levels: tuple[dict[int, list[int]], dict[int, list[int]]] = field(default_factory=lambda: ({}, {}))
    orders: int = 0

    def depth(self, side: int) -> list[Level]:
        """Levels best first."""
        book = self.levels[side]
        prices = sorted(book, reverse=(side == BID))
        return [Level(p, book[p][0], book[p][1]) for p in prices]

    def best(self, side: int) -> Level | None:
        book = self.levels[side]
        if not book:
            return None
        price = max(book) if side == BID else min(book)
        return Level(price, *book[price])


class Books:
    """All instruments' books fed from framed ITCH messages, with per-type counts and errors by kind."""

    def __init__(self) -> None:
        self.books: dict[int, InstrumentBook] = {}
        self.orders: dict[int, list[int]] = {}  # ref → [locate, side, price, shares]
        self.symbols: dict[int, str] = {}
        self.type_counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.error_samples: list[ErrorSample] = []
        self.messages = 0

    def _error(self, kind: str, offset: int, data: bytes | memoryview) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(ErrorSample(kind, offset, bytes(data[:16])))

    def feed(self, data: bytes | memoryview, base_offset: int = 0) -> int:
        """Apply every length-prefixed message in `data`; returns how many were framed (good or bad)."""
        return self._frames(data, base_offset, final=True)[0]

    def feed_partial(self, data: bytes | memoryview, base_offset: int = 0) -> int:
        """Apply the whole messages of a piece of a stream; returns the bytes used. A message cut at the end is left
        for the caller to prepend to the next piece (`feed` the last piece: a cut there is an error)."""
        return self._frames(data, base_offset, final=False)[1]

    def _frames(self, data: bytes | memoryview, base_offset: int, final: bool) -> tuple[int, int]:
        pos, end, n = 0, len(data), 0
        while pos < end:
            length = (data[pos] << 8) | data[pos + 1] if pos + 2 <= end else -1
            start = pos + 2
            if length < 0 or start + length > end:
                if final:
                    self._error("truncated", base_offset + pos, data[pos:])
                break
            self.apply(data, start, length, base_offset + pos)
            n += 1
            pos = start + length
        return n, end if final else pos

    def apply(self, data: bytes | memoryview, start: int, length: int, offset: int) -> None:
        """Apply one message of `length` bytes at `start` (`offset` locates it in the file for errors)."""
        self.messages += 1
        if length == 0:
            self._error("bad_length", offset, data[start - 2:start])
            return
        mtype = data[start]
        spec = SPECS_BY_BYTE.get(mtype)
        if spec is None:
            self._error("unknown_type", offset, data[start:start + length])
            return
        if length != spec.length:
            self._error("bad_length", offset, data[start:start + length])
            return
        t = spec.type
        self.type_counts[t] += 1
        if t in "AF":
            ref = _U64.unpack_from(data, start + 11)[0]
            side = data[start + 19]
            shares = _U32.unpack_from(data, start + 20)[0]
            price = _U32.unpack_from(data, start + 32)[0]
            locate = _U16.unpack_from(data, start + 1)[0]
            if side not in (66, 83):  # 'B', 'S'
                self._error("bad_side", offset, data[start:start + length])
            elif shares == 0:
                self._error("zero_shares", offset, data[start:start + length])
            elif ref in self.orders:
                self._error("duplicate_ref", offset, data[start:start + length])
            else:
                self._add(ref, locate, BID if side == 66 else ASK, price, shares)
        elif t in "ECX":
            ref = _U64.unpack_from(data, start + 11)[0]
            shares = _U32.unpack_from(data, start + 19)[0]
            order = self.orders.get(ref)
            if order is None:
                self._error("unknown_ref", offset, data[start:start + length])
            else:
                if shares > order[3]:
                    self._error("over_cancel" if t == "X" else "over_execute", offset, data[start:start + length])
                    shares = order[3]
                self._reduce(ref, order, shares)
        elif t == "D":
            ref = _U64.unpack_from(data, start + 11)[0]
            order = self.orders.get(ref)
            if order is None:
                self._error("unknown_ref", offset, data[start:start + length])
            else:
                self._reduce(ref, order, order[3])
        elif t == "U":
            old, new = _U64.unpack_from(data, start + 11)[0], _U64.unpack_from(data, start + 19)[0]
            shares = _U32.unpack_from(data, start + 27)[0]
            price = _U32.unpack_from(data, start + 31)[0]
            order = self.orders.get(old)
            if order is None:
                self._error("unknown_ref", offset, data[start:start + length])
            elif new != old and new in self.orders:
                self._error("duplicate_ref", offset, data[start:start + length])
            elif shares == 0:
                self._error("zero_shares", offset, data[start:start + length])
            else:
                locate, side = order[0], order[1]
                self._reduce(old, order, order[3])
                self._add(new, locate, side, price, shares)
        elif t == "R":
            locate = _U16.unpack_from(data, start + 1)[0]
            self.symbols[locate] = symbol_text(bytes(data[start + 11:start + 19]))

    def _add(self, ref: int, locate: int, side: int, price: int, shares: int) -> None:
        book = self.books.get(locate)
        if book is None:
            book = self.books[locate] = InstrumentBook()
        level = book.levels[side].get(price)
        if level is None:
            book.levels[side][price] = [shares, 1]
        else:
            level[0] += shares
            level[1] += 1
        book.orders += 1
        self.orders[ref] = [locate, side, price, shares]

    def _reduce(self, ref: int, order: list[int], shares: int) -> None:
        locate, side, price, _ = order
        book = self.books[locate]
        levels = book.levels[side]
        level = levels[price]
        level[0] -= shares
        order[3] -= shares
        if order[3] == 0:
            del self.orders[ref]
            book.orders -= 1
            level[1] -= 1
            if level[1] == 0:
                del levels[price]

    def snapshot(self) -> dict[int, tuple[list[Level], list[Level], int]]:
        """Every non-empty book: (bids best first, asks best first, live orders), by stock locate."""
        return {loc: (b.depth(BID), b.depth(ASK), b.orders) for loc, b in sorted(self.books.items()) if b.orders}
