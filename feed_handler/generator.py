"""A seeded ITCH 5.0 session: system events, stock directory, an opening build-up, then order flow.

The order flow follows the real mix (about 44 % adds, 43 % deletes, 9 % replaces, 2 % executions,
1 % cancels, 1 % non-displayed trades), over many instruments with Zipf-like popularity, prices on a
one-cent grid around a random walk per instrument, arrivals bunched at the open and the close, and a
live-order count held near a target. Same parameters and seed, same bytes (numpy's PCG64 stream).

Every random draw is made by `_Draws`, vectorised, in one fixed order; two engines turn the draws into
messages: `_ReferenceFlow` in Python, message by message (the reference), and the compiled core
(`feed_handler/gen_core.c`), which writes the same bytes, framed, a batch at a time.
"""

from __future__ import annotations

import gzip
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from feed_handler._book import Books
from feed_handler._gen import Flow
from latlab.wire import moldudp64
from latlab.wire.itch import SPECS, frame, iter_frames
from latlab.wire.pcap import PcapWriter

Engine = Literal["c", "python"]
NS_PER_S = 1_000_000_000
TICK = 100  # $0.01 in Price(4)
MIX = (("add", 0.44), ("delete", 0.43), ("replace", 0.09), ("execute", 0.02), ("cancel", 0.01), ("trade", 0.01))
LOTS = np.array([100, 100, 100, 200, 200, 300, 400, 500, 1000, 2000, 50, 10])
MIX_CUMULATIVE = np.cumsum([w for _, w in MIX])  # searched (side left) by both engines for each action draw
BATCH = 1 << 16  # order-flow draws are made this many at a time


@dataclass(frozen=True)
class GenParams:
    """What to generate. `messages` counts order-flow messages after the opening build-up."""

    seed: int = 1
    messages: int = 1_000_000
    instruments: int = 200
    live_orders: int = 20_000
    session: str = "LATLAB0001"
    date: str = "2026-11-20"

    def __post_init__(self) -> None:
        for name in ("messages", "instruments", "live_orders"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.instruments > 65535:
            raise ValueError("instruments must be at most 65535 (stock locate is u16)")


def _hms(h: int, m: int = 0, s: int = 0) -> int:
    return ((h * 60 + m) * 60 + s) * NS_PER_S


def _build_count(p: GenParams) -> int:
    """Adds of the opening build-up: the book fills to its live target, or a fifth of the flow if that is less."""
    return min(p.live_orders, max(1, p.messages // 5))


def _sent_books(p: GenParams) -> Books:
    """The books each engine keeps of what it sent, sized for the live target."""
    return Books(capacity=max(1024, p.live_orders * 2))


def _ts(t: int) -> tuple[int, int]:
    return t >> 32, t & 0xFFFFFFFF


def _tickers(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list(string.ascii_uppercase))
    seen: set[str] = set()
    out = []
    while len(out) < n:
        name = "".join(rng.choice(letters, size=int(rng.integers(2, 6))))
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def _depth(r: np.ndarray) -> np.ndarray:
    """Ticks from the mid for uniform draws r: geometric-ish (int(-log1p(-r) * 3)), vectorised."""
    return (-np.log1p(-r) * 3).astype(np.int64)


@dataclass
class BuildUp:
    """The opening build-up's draws: one add per row (side 0 bid, 1 ask)."""

    times: np.ndarray
    locs: np.ndarray
    sides: np.ndarray
    depth: np.ndarray
    lots: np.ndarray


@dataclass
class FlowBatch:
    """One batch of order-flow draws, one message per row."""

    times: np.ndarray
    locs: np.ndarray
    lots: np.ndarray
    depth: np.ndarray
    action_r: np.ndarray
    pick_r: np.ndarray
    side_r: np.ndarray
    price_r: np.ndarray
    walk_r: np.ndarray
    extra_r: np.ndarray


class _Draws:
    """Every random draw of a session, in the one order that fixes its bytes: tickers, mids, the build-up,
    the arrival times, then the order flow a batch at a time."""

    def __init__(self, p: GenParams) -> None:
        self.p = p
        self.rng = np.random.default_rng(p.seed)
        self.stocks = [n.ljust(8).encode() for n in _tickers(self.rng, p.instruments)]
        self.mids = (self.rng.lognormal(3.5, 0.8, p.instruments) * 100).astype(np.int64).clip(1, 400_000) * TICK
        popularity = 1.0 / np.arange(1, p.instruments + 1) ** 0.8
        self.popularity = popularity / popularity.sum()

    def build_up(self) -> BuildUp:
        """The book fills before the market opens."""
        rng, p = self.rng, self.p
        n = _build_count(p)
        times = np.sort(rng.integers(_hms(4, 0, 10), _hms(9, 30), size=n))
        locs = rng.choice(p.instruments, size=n, p=self.popularity) + 1
        sides = rng.integers(0, 2, size=n)
        rs = rng.random(size=n)
        lots = rng.choice(LOTS, size=n)
        return BuildUp(times, locs, sides, _depth(rs), lots)

    def flow(self) -> Iterator[FlowBatch]:
        """Arrivals bunched at the open and close (a U-shaped Beta density over the day), then per batch the
        uniform draws each message may use."""
        rng, p = self.rng, self.p
        day = _hms(16) - _hms(9, 30)
        # In place: a day-sized session holds several hundred MB of times.
        share = rng.beta(0.55, 0.55, size=p.messages)
        share *= day - 1
        times = share.astype(np.int64)
        del share
        times.sort()
        times += _hms(9, 30)
        for start in range(0, p.messages, BATCH):
            n = min(BATCH, p.messages - start)
            action_r, pick_r, side_r, price_r, walk_r, extra_r = (rng.random(size=n) for _ in range(6))
            locs = rng.choice(p.instruments, size=n, p=self.popularity) + 1
            lots = rng.choice(LOTS, size=n)
            yield FlowBatch(times[start:start + n], locs, lots, _depth(price_r), action_r, pick_r, side_r, price_r,
                            walk_r, extra_r)


def _system(code: bytes, t: int) -> bytes:
    return SPECS["S"].struct.pack(b"S", 0, 0, *_ts(t), code)


def _opening(stocks: list[bytes]) -> Iterator[bytes]:
    """Start of messages, the stock directory, start of system hours, and every stock trading."""
    r, h = SPECS["R"].struct.pack, SPECS["H"].struct.pack
    yield _system(b"O", _hms(3))
    for i, stock in enumerate(stocks):
        yield r(b"R", i + 1, 0, *_ts(_hms(3, 0, 1) + i), stock, b"Q", b"N", 100, b"N", b"C", b"Z ", b"P", b"N",
                b"N", b"2", b"N", 0, b"N")
    yield _system(b"S", _hms(4))
    for i, stock in enumerate(stocks):
        yield h(b"H", i + 1, 0, *_ts(_hms(4, 0, 1) + i), stock, b"T", b" ", b"    ")


class _ReferenceFlow:
    """The order flow in Python, message by message: the reference the compiled core is held to.

    It keeps the live orders (picked uniformly by index, swap-removed) and a book of what it sent, so that no
    new price crosses the other side.
    """

    def __init__(self, p: GenParams, stocks: list[bytes], mids: np.ndarray) -> None:
        self.p = p
        self.stocks = stocks
        self.mids = mids.copy()
        self.live: list[list[int]] = []  # [ref, locate, side (0 bid / 1 ask), price, shares]
        self.next_ref = 1
        self.match = 1
        self.book = _sent_books(p)
        self.pk = {t: SPECS[t].struct.pack for t in "AFDXECUP"}

    def _sent(self, msg: bytes) -> bytes:
        self.book.feed(frame(msg))
        return msg

    def _uncrossed(self, locate: int, side: int, price: int) -> int:
        bid, _, ask, _ = self.book.bbo(locate)
        if side == 0 and ask and price >= ask:
            return ask - TICK
        if side == 1 and bid and price <= bid:
            return bid + TICK
        return price

    def _quote_price(self, locate: int, side: int, depth: int) -> int:
        mid = int(self.mids[locate - 1])
        return max(TICK, mid - (depth + 1) * TICK) if side == 0 else mid + (depth + 1) * TICK

    def _new_ref(self) -> int:
        self.next_ref += 1
        return self.next_ref - 1

    def _remove(self, i: int) -> None:
        last = self.live.pop()
        if i < len(self.live):
            self.live[i] = last

    def add(self, t: int, locate: int, side: int, depth: int, shares: int, mpid: bool) -> bytes:
        """A new order `depth` ticks outside the mid, pulled back inside the other side."""
        price = self._uncrossed(locate, side, self._quote_price(locate, side, depth))
        ref = self._new_ref()
        self.live.append([ref, locate, side, price, shares])
        args = (locate, 0, *_ts(t), ref, b"BS"[side:side + 1], shares, self.stocks[locate - 1], price)
        return self._sent(self.pk["F"](b"F", *args, b"LTLB") if mpid else self.pk["A"](b"A", *args))

    def build_up(self, b: BuildUp) -> Iterator[bytes]:
        """The opening adds."""
        for k in range(len(b.times)):
            yield self.add(int(b.times[k]), int(b.locs[k]), int(b.sides[k]), int(b.depth[k]), int(b.lots[k]), False)

    def _action(self, b: FlowBatch, k: int) -> str:
        action = MIX[int(np.searchsorted(MIX_CUMULATIVE, b.action_r[k] * MIX_CUMULATIVE[-1]))][0]
        # Hold the live count near its target: trade adds for deletes (and back) when it drifts.
        if action == "add" and len(self.live) > self.p.live_orders * 1.1 and b.extra_r[k] < 0.5:
            action = "delete"
        elif action == "delete" and len(self.live) < self.p.live_orders * 0.9 and b.extra_r[k] < 0.5:
            action = "add"
        if action != "add" and action != "trade" and not self.live:
            action = "add"
        return action

    def flow(self, b: FlowBatch) -> Iterator[bytes]:
        """One batch of order flow."""
        for k in range(len(b.times)):
            action = self._action(b, k)
            if action == "add":
                loc, side, walk = int(b.locs[k]), int(b.side_r[k] < 0.5), b.walk_r[k]
                if walk < 0.02:
                    self.mids[loc - 1] = max(TICK * 2, self.mids[loc - 1] + (TICK if walk < 0.01 else -TICK))
                yield self.add(int(b.times[k]), loc, side, int(b.depth[k]), int(b.lots[k]), b.extra_r[k] < 0.05)
            elif action == "trade":
                yield self._trade(b, k)
            else:
                yield self._on_live(action, int(b.pick_r[k] * len(self.live)), b, k)

    def _trade(self, b: FlowBatch, k: int) -> bytes:
        loc = int(b.locs[k])
        self.match += 1
        return self.pk["P"](b"P", loc, 0, *_ts(int(b.times[k])), 0, b"B" if b.side_r[k] < 0.5 else b"S",
                            int(b.lots[k]), self.stocks[loc - 1], int(self.mids[loc - 1]), self.match - 1)

    def _on_live(self, action: str, i: int, b: FlowBatch, k: int) -> bytes:
        """Delete, cancel, execute or replace the live order at index i."""
        ref, loc, side, price, shares = self.live[i]
        t, price_r = _ts(int(b.times[k])), b.price_r[k]
        if action == "delete" or (action == "cancel" and shares == 1):
            self._remove(i)
            return self._sent(self.pk["D"](b"D", loc, 0, *t, ref))
        if action == "cancel":
            gone = 1 + int(price_r * (shares - 1))
            self.live[i][4] -= gone
            return self._sent(self.pk["X"](b"X", loc, 0, *t, ref, gone))
        if action == "execute":
            done = shares if price_r < 0.6 else 1 + int(price_r * (shares - 1))
            if shares == done:
                self._remove(i)
            else:
                self.live[i][4] -= done
            self.match += 1
            if b.extra_r[k] < 0.2:
                return self._sent(self.pk["C"](b"C", loc, 0, *t, ref, done, self.match - 1, b"Y", price))
            return self._sent(self.pk["E"](b"E", loc, 0, *t, ref, done, self.match - 1))
        # replace: same side and stock, new ref, shares and a nearby price
        self._remove(i)
        new_price = self._uncrossed(loc, side, max(TICK, price + (int(price_r * 5) - 2) * TICK))
        new_ref = self._new_ref()
        self.live.append([new_ref, loc, side, new_price, int(b.lots[k])])
        return self._sent(self.pk["U"](b"U", loc, 0, *t, ref, new_ref, int(b.lots[k]), new_price))


def _closing() -> Iterator[bytes]:
    yield _system(b"M", _hms(16))
    yield _system(b"E", _hms(20))
    yield _system(b"C", _hms(20, 0, 1))


def message_count(p: GenParams) -> int:
    """How many messages the session holds: system events, directory and trading actions, build-up, flow."""
    return 6 + 2 * p.instruments + _build_count(p) + p.messages


def _frames_of(messages: Iterator[bytes], per_chunk: int = 8192) -> Iterator[bytes]:
    buf: list[bytes] = []
    for msg in messages:
        buf.append(frame(msg))
        if len(buf) >= per_chunk:
            yield b"".join(buf)
            buf.clear()
    if buf:
        yield b"".join(buf)


def _compiled_frames(p: GenParams) -> Iterator[bytes]:
    draws = _Draws(p)
    yield from _frames_of(_opening(draws.stocks))
    flow = Flow(_sent_books(p), b"".join(draws.stocks), draws.mids, p.live_orders, MIX_CUMULATIVE)
    b = draws.build_up()
    yield flow.build(b.times, b.locs, b.sides, b.depth, b.lots)
    yield frame(_system(b"Q", _hms(9, 30)))
    for f in draws.flow():
        yield flow.flow(f.times, f.locs, f.lots, f.depth, f.action_r, f.pick_r, f.side_r, f.price_r, f.walk_r,
                        f.extra_r)
    yield from _frames_of(_closing())


def _reference_messages(p: GenParams) -> Iterator[bytes]:
    draws = _Draws(p)
    yield from _opening(draws.stocks)
    ref = _ReferenceFlow(p, draws.stocks, draws.mids)
    yield from ref.build_up(draws.build_up())
    yield _system(b"Q", _hms(9, 30))
    for batch in draws.flow():
        yield from ref.flow(batch)
    yield from _closing()


def _unframe(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        view = memoryview(chunk)
        for _, at, n in iter_frames(chunk):
            yield bytes(view[at:at + n])


def generate(p: GenParams, engine: Engine = "c") -> Iterator[bytes]:
    """Every message of the session, encoded, in order (no length prefix)."""
    return _reference_messages(p) if engine == "python" else _unframe(_compiled_frames(p))


def generate_frames(p: GenParams, engine: Engine = "c") -> Iterator[bytes]:
    """The session as BinaryFILE bytes (u16 length + message), a chunk at a time."""
    return _frames_of(_reference_messages(p)) if engine == "python" else _compiled_frames(p)


def write_binaryfile(p: GenParams, path: Path, engine: Engine = "c") -> int:
    """BinaryFILE (u16 length + message), gzip when the name ends in .gz; returns the message count."""
    with open(path, "wb") as raw:
        # No name and mtime 0 in the gzip header: the same session gives the same bytes under any file name.
        f = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if path.suffix == ".gz" else raw
        for chunk in generate_frames(p, engine):
            f.write(chunk)
        if f is not raw:
            f.close()
    return message_count(p)


def write_pcap(p: GenParams, path: Path, *, group: str = "239.77.0.1", port: int = 26477,
               source: str = "10.77.0.100", max_payload: int = moldudp64.DEFAULT_PAYLOAD) -> tuple[int, int]:
    """MoldUDP64 packets (≤ max_payload bytes) in a pcap, stamped with each packet's first message time.

    Returns (messages, packets).
    """
    midnight = int(datetime.fromisoformat(p.date).replace(tzinfo=UTC).timestamp()) * NS_PER_S
    messages = packets = 0
    with open(path, "wb") as f:
        writer = PcapWriter(f)
        for seq, batch in moldudp64.pack(generate(p), p.session):
            first_ts = int.from_bytes(batch[0][5:11], "big")
            writer.write(midnight + first_ts, source, group, port, port,
                         moldudp64.encode_packet(p.session, seq, batch))
            messages += len(batch)
            packets += 1
        writer.write(midnight + _hms(20, 0, 2), source, group, port, port,
                     moldudp64.encode_end_of_session(p.session, messages + 1))
    return messages, packets + 1
