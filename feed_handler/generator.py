"""A seeded ITCH 5.0 session: system events, stock directory, an opening build-up, then order flow.

The order flow follows the real mix (about 44 % adds, 43 % deletes, 9 % replaces, 2 % executions,
1 % cancels, 1 % non-displayed trades), over many instruments with Zipf-like popularity, prices on a
one-cent grid around a random walk per instrument, arrivals bunched at the open and the close, and a
live-order count held near a target. Same parameters and seed, same bytes (numpy's PCG64 stream).
"""

from __future__ import annotations

import gzip
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from feed_handler._book import Books
from feed_handler.itch import SPECS, frame
from latlab.pcap import PcapWriter
from udp_multicast import moldudp64

NS_PER_S = 1_000_000_000
TICK = 100  # $0.01 in Price(4)
MIX = (("add", 0.44), ("delete", 0.43), ("replace", 0.09), ("execute", 0.02), ("cancel", 0.01), ("trade", 0.01))
LOTS = np.array([100, 100, 100, 200, 200, 300, 400, 500, 1000, 2000, 50, 10])


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


class _Packers:
    """struct.pack bound per type: the generator's inner loop calls these directly."""

    def __init__(self) -> None:
        for t in "SRHAFEXDUCP":
            setattr(self, t, SPECS[t].struct.pack)


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


def generate(p: GenParams) -> Iterator[bytes]:
    """Every message of the session, encoded, in order."""
    rng = np.random.default_rng(p.seed)
    pk = _Packers()
    names = _tickers(rng, p.instruments)
    stocks = [n.ljust(8).encode() for n in names]
    mids = (rng.lognormal(3.5, 0.8, p.instruments) * 100).astype(np.int64).clip(1, 400_000) * TICK
    popularity = 1.0 / np.arange(1, p.instruments + 1) ** 0.8
    popularity /= popularity.sum()

    def ts(t: int) -> tuple[int, int]:
        return t >> 32, t & 0xFFFFFFFF

    def system(code: bytes, t: int) -> bytes:
        return pk.S(b"S", 0, 0, *ts(t), code)

    yield system(b"O", _hms(3))
    for i, stock in enumerate(stocks):
        yield pk.R(b"R", i + 1, 0, *ts(_hms(3, 0, 1) + i), stock, b"Q", b"N", 100, b"N", b"C", b"Z ", b"P", b"N",
                   b"N", b"2", b"N", 0, b"N")
    yield system(b"S", _hms(4))
    for i, stock in enumerate(stocks):
        yield pk.H(b"H", i + 1, 0, *ts(_hms(4, 0, 1) + i), stock, b"T", b" ", b"    ")

    live: list[int] = []
    where: dict[int, int] = {}
    orders: dict[int, list[int]] = {}  # ref → [locate, side (0 bid / 1 ask), price, shares]
    next_ref = 1
    match = 1

    # The generator keeps a book of what it sent, so that no new price crosses the other side.
    book = Books(capacity=max(1024, p.live_orders * 2))

    def sent(msg: bytes) -> bytes:
        book.feed(frame(msg))
        return msg

    def uncrossed(locate: int, side: int, price: int) -> int:
        bid, _, ask, _ = book.bbo(locate)
        if side == 0 and ask and price >= ask:
            return ask - TICK
        if side == 1 and bid and price <= bid:
            return bid + TICK
        return price

    def add(t: int, locate: int, side: int, price: int, shares: int, mpid: bool) -> bytes:
        nonlocal next_ref
        price = uncrossed(locate, side, price)
        ref = next_ref
        next_ref += 1
        orders[ref] = [locate, side, price, shares]
        where[ref] = len(live)
        live.append(ref)
        args = (locate, 0, *ts(t), ref, b"BS"[side:side + 1], shares, stocks[locate - 1], price)
        return sent(pk.F(b"F", *args, b"LTLB") if mpid else pk.A(b"A", *args))

    def remove(ref: int) -> None:
        i = where.pop(ref)
        last = live.pop()
        if last != ref:
            live[i] = last
            where[last] = i
        del orders[ref]

    def quote_price(locate: int, side: int, r: float) -> int:
        depth = int(-np.log1p(-r) * 3)  # geometric-ish distance from the mid, in ticks
        mid = int(mids[locate - 1])
        return max(TICK, mid - (depth + 1) * TICK) if side == 0 else mid + (depth + 1) * TICK

    # Opening build-up: the book fills before the market opens.
    build = min(p.live_orders, max(1, p.messages // 5))
    t_build = np.sort(rng.integers(_hms(4, 0, 10), _hms(9, 30), size=build))
    locs = rng.choice(p.instruments, size=build, p=popularity) + 1
    sides = rng.integers(0, 2, size=build)
    rs = rng.random(size=build)
    lots = rng.choice(LOTS, size=build)
    for k in range(build):
        yield add(int(t_build[k]), int(locs[k]), int(sides[k]), quote_price(int(locs[k]), int(sides[k]), rs[k]),
                  int(lots[k]), False)
    yield system(b"Q", _hms(9, 30))

    # Order flow: arrivals bunched at the open and close (a U-shaped Beta density over the day).
    day = _hms(16) - _hms(9, 30)
    times = np.sort((rng.beta(0.55, 0.55, size=p.messages) * (day - 1)).astype(np.int64)) + _hms(9, 30)
    cum = np.cumsum([w for _, w in MIX])
    batch = 1 << 16
    for start in range(0, p.messages, batch):
        n = min(batch, p.messages - start)
        action_r, pick_r, side_r, price_r, walk_r, extra_r = (rng.random(size=n) for _ in range(6))
        locs = rng.choice(p.instruments, size=n, p=popularity) + 1
        lots = rng.choice(LOTS, size=n)
        for k in range(n):
            t = int(times[start + k])
            action = MIX[int(np.searchsorted(cum, action_r[k] * cum[-1]))][0]
            # Hold the live count near its target: trade adds for deletes (and back) when it drifts.
            if action == "add" and len(live) > p.live_orders * 1.1 and extra_r[k] < 0.5:
                action = "delete"
            elif action == "delete" and len(live) < p.live_orders * 0.9 and extra_r[k] < 0.5:
                action = "add"
            if action != "add" and action != "trade" and not live:
                action = "add"
            if action == "add":
                loc, side = int(locs[k]), int(side_r[k] < 0.5)
                if walk_r[k] < 0.02:
                    mids[loc - 1] = max(TICK * 2, mids[loc - 1] + (TICK if walk_r[k] < 0.01 else -TICK))
                yield add(t, loc, side, quote_price(loc, side, price_r[k]), int(lots[k]), extra_r[k] < 0.05)
                continue
            if action == "trade":
                loc = int(locs[k])
                yield pk.P(b"P", loc, 0, *ts(t), 0, b"B" if side_r[k] < 0.5 else b"S", int(lots[k]),
                           stocks[loc - 1], int(mids[loc - 1]), match)
                match += 1
                continue
            ref = live[int(pick_r[k] * len(live))]
            loc, side, price, shares = orders[ref]
            if action == "delete" or (action == "cancel" and shares == 1):
                remove(ref)
                yield sent(pk.D(b"D", loc, 0, *ts(t), ref))
            elif action == "cancel":
                gone = 1 + int(price_r[k] * (shares - 1))
                orders[ref][3] -= gone
                yield sent(pk.X(b"X", loc, 0, *ts(t), ref, gone))
            elif action == "execute":
                done = shares if price_r[k] < 0.6 else 1 + int(price_r[k] * (shares - 1))
                if orders[ref][3] == done:
                    remove(ref)
                else:
                    orders[ref][3] -= done
                if extra_r[k] < 0.2:
                    yield sent(pk.C(b"C", loc, 0, *ts(t), ref, done, match, b"Y", price))
                else:
                    yield sent(pk.E(b"E", loc, 0, *ts(t), ref, done, match))
                match += 1
            else:  # replace: same side and stock, new ref, shares and a nearby price
                remove(ref)
                new_price = uncrossed(loc, side, max(TICK, price + (int(price_r[k] * 5) - 2) * TICK))
                new_ref = next_ref
                next_ref += 1
                orders[new_ref] = [loc, side, new_price, int(lots[k])]
                where[new_ref] = len(live)
                live.append(new_ref)
                yield sent(pk.U(b"U", loc, 0, *ts(t), ref, new_ref, int(lots[k]), new_price))
    yield system(b"M", _hms(16))
    yield system(b"E", _hms(20))
    yield system(b"C", _hms(20, 0, 1))


def write_binaryfile(p: GenParams, path: Path) -> int:
    """BinaryFILE (u16 length + message), gzip when the name ends in .gz; returns the message count."""
    n = 0
    with open(path, "wb") as raw:
        # No name and mtime 0 in the gzip header: the same session gives the same bytes under any file name.
        f = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if path.suffix == ".gz" else raw
        buf: list[bytes] = []
        for msg in generate(p):
            buf.append(frame(msg))
            n += 1
            if len(buf) >= 8192:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))
        if f is not raw:
            f.close()
    return n


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
