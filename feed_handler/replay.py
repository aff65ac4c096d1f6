"""Replay an ITCH 5.0 BinaryFILE (gzip or not) or a pcap of MoldUDP64 packets into the order books."""

from __future__ import annotations

import resource
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latlab.wire import moldudp64
from latlab.wire.itch import price_to_str

PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def new_books(engine: str) -> Any:
    """A Books object: the compiled one ("c") or the pure-Python reference ("python")."""
    if engine == "python":
        from feed_handler.book import Books

        return Books()
    from feed_handler._book import Books as CBooks

    return CBooks(capacity=1 << 16)  # grows as needed; a small start keeps the hot part in cache


def book_counts(books: Any) -> tuple[dict[str, int], dict[str, int], list[tuple[str, int, bytes]]]:
    """(messages by type, errors by kind, the first errors) of either Books: the compiled one answers through
    methods, the reference through attributes."""
    if hasattr(books, "type_counts") and callable(books.type_counts):
        return books.type_counts(), books.errors(), books.error_samples()
    return (dict(books.type_counts), dict(books.errors),
            [(s.kind, s.offset, s.data) for s in books.error_samples])


def detect_format(path: Path) -> str:
    """binaryfile, binaryfile.gz, pcap, pcapng (a capture may also be gzip'd: pcap.gz, pcapng.gz)."""
    with open(path, "rb") as f:
        head = f.read(4)
        gzipped = head[:2] == b"\x1f\x8b"
        if gzipped:
            f.seek(0)
            try:
                head = zlib.decompressobj(wbits=31).decompress(f.read(4096), 4)
            except zlib.error:
                head = b""
    kind = "pcap" if head in PCAP_MAGICS else "pcapng" if head == PCAPNG_MAGIC else "binaryfile"
    return kind + ".gz" if gzipped else kind


# Files are streamed: read (or decompressed) a piece at a time, so that memory is bounded by the books and one piece,
# not by the file (a Nasdaq day is ~12 GB raw).
PIECE = 8 << 20
READ = 1 << 16  # compressed bytes per step: a corrupt stream keeps what the steps before it gave


def _file_pieces(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while piece := f.read(PIECE):
            yield piece


def _gunzip_pieces(path: Path, result: ReplayResult) -> Iterator[bytes]:
    """What a gzip file holds, at most PIECE bytes at a time; concatenated members (`cat a.gz b.gz`) follow each
    other. A corrupt or cut stream ends with what came before the damage, counted."""
    stream, started, produced, pending = zlib.decompressobj(wbits=31), False, 0, b""
    with open(path, "rb") as f:
        try:
            while True:
                if stream.eof:  # a member ended: what follows it is the next member
                    pending = stream.unused_data + pending
                    stream, started = zlib.decompressobj(wbits=31), False
                data = stream.unconsumed_tail or pending or f.read(READ)
                pending = b""
                if data:
                    out, started = stream.decompress(data, PIECE), True
                else:  # the file is read: only what zlib still holds
                    out = stream.decompress(b"", PIECE) if started and not stream.eof else b""
                    if not out:
                        break
                produced += len(out)
                if out:
                    yield out
            if started and not stream.eof:
                raise zlib.error("the stream ends before its end marker")
        except zlib.error as exc:
            _count(result, "gzip_corrupt", produced, b"", f"{exc}; {produced:,} bytes decompressed before it")


def _feed_pieces(books: Any, pieces: Iterator[bytes], result: ReplayResult) -> None:
    """Feed a stream of length-prefixed messages piece by piece: a message cut between two pieces is carried over;
    one cut at the very end is the books' `truncated` error. Feeding time is the books' alone."""
    carry, offset, feeding = b"", 0, 0.0
    start = time.perf_counter()
    for piece in pieces:
        buf = carry + piece if carry else piece
        t0 = time.perf_counter()
        used = books.feed_partial(buf, offset)
        feeding += time.perf_counter() - t0
        carry, offset = buf[used:], offset + used
    if carry:
        t0 = time.perf_counter()
        books.feed(carry, offset)
        feeding += time.perf_counter() - t0
    result.feed_seconds = feeding
    result.load_seconds = time.perf_counter() - start - feeding


@dataclass
class ReplayResult:
    """What a replay found: counts, errors, timings and the final books."""

    path: str
    format: str
    engine: str
    messages: int = 0
    feed_seconds: float = 0.0
    load_seconds: float = 0.0
    type_counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[dict[str, Any]] = field(default_factory=list)
    packets: int = 0
    peak_rss_mb: float = 0.0
    books: dict[int, Any] = field(default_factory=dict)
    symbols: dict[int, str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.feed_seconds if self.feed_seconds else 0.0

    def instruments(self, only: set[str] | None = None) -> list[dict[str, Any]]:
        """Each instrument's final top of book and level counts (prices in dollars, 4 decimals)."""
        out = []
        for loc, (bids, asks, orders) in sorted(self.books.items()):
            name = self.symbols.get(loc, f"#{loc}")
            if only and name not in only:
                continue
            out.append({
                "locate": loc, "symbol": name, "orders": orders, "bid_levels": len(bids), "ask_levels": len(asks),
                "bid": {"price": price_to_str(bids[0][0]), "shares": bids[0][1]} if bids else None,
                "ask": {"price": price_to_str(asks[0][0]), "shares": asks[0][1]} if asks else None,
            })
        return out

    def to_json(self, only: set[str] | None = None) -> dict[str, Any]:
        return {"file": self.path, "format": self.format, "engine": self.engine, "messages": self.messages,
                "packets": self.packets, "feed_seconds": self.feed_seconds, "load_seconds": self.load_seconds,
                "peak_rss_mb": self.peak_rss_mb,
                "messages_per_second": self.rate, "type_counts": self.type_counts, "errors": self.errors,
                "error_samples": self.error_samples, "instruments": self.instruments(only)}


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM): ru_maxrss would carry a forking parent's peak across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pcap_chunks(path: Path, result: ReplayResult) -> Iterator[tuple[memoryview, int]]:
    """Message blocks of each MoldUDP64 packet, with sequence, layout and capture problems counted."""
    from latlab.wire.pcap import UdpCapture

    capture = UdpCapture(path)
    expected: int | None = None
    for n, dgram in enumerate(capture.datagrams()):
        result.packets += 1
        try:
            _session, seq, count = moldudp64.decode_header(dgram.payload)
        except moldudp64.MoldError as exc:
            _count(result, f"mold_{exc.kind}", n, dgram.payload)
            continue
        if count in (moldudp64.HEARTBEAT, moldudp64.END_OF_SESSION):
            continue
        if expected is not None and seq != expected:
            _count(result, "mold_sequence_gap" if seq > expected else "mold_sequence_backwards", n, dgram.payload)
        expected = seq + count
        yield moldudp64.message_blocks(dgram.payload), n
    for kind, frame, data in capture.problem_samples:
        if len(result.error_samples) < 10:
            result.error_samples.append({"kind": f"pcap_{kind}", "packet": frame, "hex": data[:16].hex(" "),
                                         "detail": capture.describe_problems()})
    for kind, n in capture.problems.items():
        result.errors[f"pcap_{kind}"] = result.errors.get(f"pcap_{kind}", 0) + n


def _count(result: ReplayResult, kind: str, where: int, data: bytes, detail: str = "") -> None:
    result.errors[kind] = result.errors.get(kind, 0) + 1
    if len(result.error_samples) < 10:
        sample = {"kind": kind, "offset": where, "hex": bytes(data[:16]).hex(" ")}
        result.error_samples.append({**sample, "detail": detail} if detail else sample)


def replay(path: Path, engine: str = "c") -> ReplayResult:
    """Replay a file into fresh books and collect what it found."""
    fmt = detect_format(path)
    result = ReplayResult(path=str(path), format=fmt, engine=engine)
    books = new_books(engine)
    if fmt.startswith("pcap"):
        feeding, start = 0.0, time.perf_counter()
        for blocks, packet in _pcap_chunks(path, result):
            t0 = time.perf_counter()
            books.feed(blocks, packet)
            feeding += time.perf_counter() - t0
        result.feed_seconds, result.load_seconds = feeding, time.perf_counter() - start - feeding
    else:
        _feed_pieces(books, _gunzip_pieces(path, result) if fmt == "binaryfile.gz" else _file_pieces(path), result)
    mold_errors = dict(result.errors)
    type_counts, errors, samples = book_counts(books)
    result.messages = books.messages
    result.type_counts = dict(sorted(type_counts.items()))
    result.errors = {**mold_errors, **errors}
    where = "packet" if fmt.startswith("pcap") else "offset"
    result.error_samples += [{"kind": k, where: off, "hex": data.hex(" ")} for k, off, data in samples]
    result.books = books.snapshot()
    result.symbols = books.symbols() if callable(books.symbols) else dict(books.symbols)
    result.peak_rss_mb = peak_rss_mb()
    return result
