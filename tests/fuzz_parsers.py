"""`make bench-fuzz`: a million mutated inputs per C parser of untrusted bytes, each checked against the Python
reference, under AddressSanitizer and UBSan (the build `make sanitized` makes).

The Hypothesis fuzzers in the test suite search cleverly but few cases; this runs many cheap ones: valid frames
from a generated session, mutated (bit flips, boundary bytes, truncation, insertion, splices, length fields set
to the edges), then fed to the compiled parser and to the reference. A disagreement stops the run and prints the
input; a sanitizer report aborts the process. Seeded, so a failure is reproducible with the same --seed.

    python -m tests.fuzz_parsers --cases 1000000 [--seed 1] [--only books,mold,drain,trader]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable

from .sanitized import asan_active, load_from_env

SANITIZED = load_from_env()  # before any parser is imported

from feed_handler.generator import GenParams, generate  # noqa: E402
from feed_handler.replay import book_counts, new_books  # noqa: E402
from latlab.wire import itch, moldudp64  # noqa: E402
from trader.risk import RiskLimits  # noqa: E402
from trader.trader_core import TraderCore, TraderSpec, compiled, stage_rows  # noqa: E402
from udp_multicast._mold import check_packet  # noqa: E402

EDGES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)


class Mutator:
    """Seeded mutations of byte strings taken from a corpus of valid inputs."""

    def __init__(self, corpus: list[bytes], seed: int) -> None:
        self.corpus = corpus
        self.rng = random.Random(seed)

    def pick(self) -> bytes:
        return self.rng.choice(self.corpus)

    def mutate(self, data: bytes) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(7)
            at = rng.randrange(len(buf) + 1)
            if op == 0 and buf:  # flip bits
                buf[min(at, len(buf) - 1)] ^= 1 << rng.randrange(8)
            elif op == 1 and buf:  # a boundary byte
                buf[min(at, len(buf) - 1)] = rng.choice(EDGES)
            elif op == 2:  # truncate
                del buf[at:]
            elif op == 3:  # insert random bytes
                buf[at:at] = rng.randbytes(rng.randint(1, 8))
            elif op == 4:  # splice another valid input in
                buf[at:at] = self.pick()[: rng.randint(1, 64)]
            elif op == 5 and len(buf) >= at + 2:  # a 16-bit length or count at its edges
                buf[at:at + 2] = rng.choice((b"\x00\x00", b"\x00\x01", b"\xff\xff", b"\x7f\xff", b"\x80\x00"))
            elif op == 6:  # random bytes, whole
                buf = bytearray(rng.randbytes(rng.randint(0, 64)))
        return bytes(buf)


def _book_state(books: object) -> tuple:
    counts, errors, _ = book_counts(books)
    return errors, counts, books.messages  # type: ignore[attr-defined]


def _book_snapshot(books: object) -> dict:
    return {k: (list(map(tuple, b)), list(map(tuple, a)), n)
            for k, (b, a, n) in books.snapshot().items()}  # type: ignore[attr-defined]


def fuzz_books(cases: int, seed: int, session: list[bytes]) -> int:  # session: raw ITCH messages
    """ITCH messages into the compiled books and the reference books: the same errors, counts and books."""
    frames = [itch.frame(m) for m in session]
    chunks = [b"".join(frames[i:i + 4]) for i in range(0, len(frames), 4)]
    mut = Mutator(chunks, seed)
    c, py = new_books("c"), new_books("python")
    for i in range(cases):
        data = mut.mutate(mut.pick())
        c.feed(data, i)
        py.feed(data, i)
        if i % 64 == 0 and _book_state(c) != _book_state(py):
            _fail("books", data, i, seed)
        if i % 20_000 == 19_999:
            if _book_snapshot(c) != _book_snapshot(py):
                _fail("books (snapshot)", data, i, seed)
            c, py = new_books("c"), new_books("python")
    return cases


def fuzz_mold(cases: int, seed: int, session: list[bytes]) -> int:
    """MoldUDP64 packets into the compiled validator and the reference decoder: the same verdict."""
    packets = [moldudp64.encode_packet("LATLABFUZZ", 1 + i, session[i:i + 5]) for i in range(0, 2000, 5)]
    packets += [moldudp64.encode_heartbeat("LATLABFUZZ", 7), moldudp64.encode_end_of_session("LATLABFUZZ", 9)]
    mut = Mutator(packets, seed)
    for i in range(cases):
        data = mut.mutate(mut.pick())
        got = check_packet(data)
        if (got[0] if got else None) != moldudp64.problem(data):
            _fail("moldudp64 validator", data, i, seed)
    return cases


TRADER_SPEC = TraderSpec(locate=9, stock="LLTRIG", limit=1_000_000, clip=100, prefix="FZ", last_trade=1_000_000,
                         risk=RiskLimits(max_order_shares=1000, max_notional=1e9, price_band_bps=500,
                                         max_orders_per_second=1_000_000))
TRADER_STATS = ("packets", "messages", "malformed", "gaps", "duplicates", "triggers", "orders", "passed", "rejects",
                "killed", "ended")


def _trader_corpus() -> list[bytes]:
    def add(ref: int, side: str, price: int, shares: int, locate: int = 9) -> bytes:
        return itch.encode(itch.make("A", stock_locate=locate, order_ref=ref, side=side, shares=shares,
                                     stock="LLTRIG" if locate == 9 else "OTHER", price=price))

    rng = random.Random(7)
    packets, seq = [], 1
    for ref in range(1, 400):
        msgs = [add(ref * 4 + k, rng.choice("BS"), rng.randint(990_000, 1_010_000), rng.randint(1, 500),
                    locate=rng.choice((9, 9, 4))) for k in range(rng.randint(1, 4))]
        packets.append(moldudp64.encode_packet("S", seq, msgs))
        seq += len(msgs)
    return packets


def fuzz_trader(cases: int, seed: int, _session: list[bytes]) -> int:
    """MoldUDP64 packets of ITCH into the compiled trader path and the reference: the same order bytes and stats.
    A fresh pair every 100 packets (a gap kills a trader, fail-safe, and a killed one parses no further)."""
    corpus = _trader_corpus()
    mut = Mutator(corpus, seed)
    c = py = None
    for i in range(cases):
        if i % 100 == 0:
            if c is not None and py is not None:
                _compare_trader_stats(c, py, i, seed)
            c, py = compiled(TRADER_SPEC, stage_rows(128)), TraderCore(TRADER_SPEC, stage_rows(128))
            clean = corpus[: (i // 100) % 8]
            for packet in clean:  # some book state first, so that triggers can fire
                c.on_packet(packet, 1)
                py.handle(packet, 1)
        data = mut.mutate(mut.pick()) if i % 4 else corpus[len(clean) + (i % 100) // 4]
        if c.on_packet(data, 1) != py.handle(data, 1):
            _fail("trader packet path", data, i, seed)
    return cases


DRAIN_KEYS = ("delivered", "expected_next", "end_sequence", "complete", "sha256", "live_messages",
              "delivered_from_retransmission", "malformed")


def _drain_stream(rng: random.Random, mut: Mutator, n: int) -> list[bytes]:
    """n packets of one session: in order, with mutated packets slipped in between (malformed, other sessions,
    old or future sequences), a few repeated, rarely one lost (which closes the fast path: a gap)."""
    out, seq = [], 1
    while len(out) < n:
        msgs = [rng.randbytes(rng.randint(1, 40)) for _ in range(rng.randint(1, 5))]
        packet = moldudp64.encode_packet("LATLABFUZZ", seq, msgs)
        seq += len(msgs)
        roll = rng.random()
        if roll < 0.25:
            out.append(mut.mutate(packet if rng.random() < 0.5 else mut.pick()))
        elif roll < 0.28 and out:
            out.append(out[-1])
        if roll > 0.995:
            continue  # lost
        out.append(packet)
    return out[:n]


def _subscribe(packets: list[bytes], engine: str) -> dict:
    import socket

    from udp_multicast.subscriber import Subscriber

    rx, tx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        rx.setblocking(False)
        sub = Subscriber(None, lambda first, count: None, retry_ns=1000, capacity=256)
        sub.on_packet(packets[0], 1)  # the first packet teaches the session (so drain may run)
        for packet in packets:
            tx.send(packet)
        while True:
            while engine == "c" and sub.fast_path_open and (left := sub.drain_live(rx.fileno())) is not None:
                sub.on_packet(left[0], left[1], left[2])
            try:
                data = rx.recv(65536)
            except BlockingIOError:
                break
            sub.on_packet(data, 10)
        summary = sub.summary()
        return {k: summary[k] for k in DRAIN_KEYS}
    finally:
        rx.close()
        tx.close()


def fuzz_drain(cases: int, seed: int, session: list[bytes]) -> int:
    """MoldUDP64 packets through a socket into the compiled in-order drain and into the reference subscriber:
    the same delivery, digest and counts. A case is one packet (in streams of up to 64)."""
    rng = random.Random(seed)
    corpus = [moldudp64.encode_packet("LATLABFUZZ", 1 + i, session[i:i + 3]) for i in range(0, 300, 3)]
    mut = Mutator(corpus, seed)
    done = 0
    while done < cases:
        packets = _drain_stream(rng, mut, min(64, cases - done)) or corpus[:1]
        if _subscribe(packets, "c") != _subscribe(packets, "python"):
            _fail("moldudp64 drain", b"".join(len(p).to_bytes(2, "big") + p for p in packets), done, seed)
        done += len(packets)
    return done


def _compare_trader_stats(c: object, py: object, i: int, seed: int) -> None:
    cs, ps = c.stats(), py.stats()  # type: ignore[attr-defined]
    for key in TRADER_STATS:
        if cs[key] != ps[key]:
            _fail(f"trader stats ({key}: {cs[key]} vs {ps[key]})", b"", i, seed)


def _fail(parser: str, data: bytes, case: int, seed: int) -> None:
    print(json.dumps({"parser": parser, "case": case, "seed": seed, "input_hex": data.hex()}), file=sys.stderr)
    raise SystemExit(f"fuzz: {parser} disagrees with the reference at case {case} (seed {seed})")


PARSERS: dict[str, Callable[[int, int, list[bytes]], int]] = {
    "books": fuzz_books, "mold": fuzz_mold, "drain": fuzz_drain, "trader": fuzz_trader}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000, help="per parser")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default=",".join(PARSERS))
    args = ap.parse_args(argv)
    wanted = [p for p in args.only.split(",") if p]
    unknown = [p for p in wanted if p not in PARSERS]
    if unknown:
        ap.error(f"unknown parser {unknown[0]!r}; known: {', '.join(PARSERS)}")
    build = "ASan+UBSan build" if SANITIZED and asan_active() else "regular build (no sanitizer: run `make bench-fuzz`)"
    print(f"fuzz: {args.cases:,} cases per parser, seed {args.seed}, {build}")
    session = list(generate(GenParams(seed=args.seed, messages=20_000, instruments=20, live_orders=2000)))
    for name in wanted:
        start = time.perf_counter()
        done = PARSERS[name](args.cases, args.seed, session)
        took = time.perf_counter() - start
        print(f"  {name:8s} {done:>10,} cases agree with the reference   {took:7.1f} s  ({done / took:,.0f}/s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
