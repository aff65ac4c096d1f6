"""The MoldUDP64 publisher: `python -m udp_multicast.publisher ...` (a PublisherConfig).

Open loop: message `seq` is due at t0 + (seq − 1)/rate. Whatever is due is packed into one packet
(up to `payload` bytes) and sent; each packet's send time (CLOCK_MONOTONIC and CLOCK_REALTIME) is
recorded with its first sequence number and count, so subscribers' receive times give one-way
latency from the actual send and from the intended send (coordinated-omission corrected).
Idle for a second: a heartbeat. At the end: end-of-session packets. Mode conflated sends, at a
capped packet rate, the latest state of each instrument instead of every update.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from latlab.cpu import gc_paused
from latlab.helper import HelperConfig, HelperResult, say_result
from latlab.helper_main import start
from latlab.mcast import sender
from latlab.wire import moldudp64
from udp_multicast import _mold
from udp_multicast.sources import Source, SyntheticSource, open_source, stream_digest

CONFLATED = struct.Struct(">cHQQI")  # 'Z', instrument, update sequence, update time (monotonic ns), price


class PublisherConfig(HelperConfig):
    """One MoldUDP64 feed to a multicast group."""

    group: str
    port: int = Field(ge=1, le=65535)
    iface: str = Field(description="address of the interface to send from")
    session: str = Field("LATLAB0001", max_length=10)
    source: str = Field("synthetic:64", description="synthetic:SIZE or itch:PATH")
    messages: int = Field(ge=1)
    rate: float = Field(0.0, ge=0, description="messages/s (0: as fast as possible)")
    payload: int = Field(moldudp64.DEFAULT_PAYLOAD, ge=moldudp64.HEADER_LEN + 3)
    mode: Literal["incremental", "conflated"] = "incremental"
    packet_rate: float = Field(1000.0, gt=0, description="conflated: packets/s at most")
    instruments: int = Field(100, ge=1, le=65535, description="conflated: instruments updated")
    seed: int = 1
    engine: Literal["c", "python"] = Field("c", description="c: the compiled loop (synthetic sources); "
                                                            "python: the reference loop")
    cpu: int | None = None
    out: Path = Path("publisher.npz")


class PublisherResult(HelperResult):
    """What the publisher sent; its per-packet send records are in its `out` file."""

    status: str
    engine: str = ""
    messages: int = 0
    packets: int = 0
    updates: int = 0  # conflated: updates made (messages: snapshots sent)
    sha256: str = ""
    elapsed_s: float = 0.0
    packet_rate: float = 0.0
    message_rate: float = 0.0
    end_sequence: int = 0



def _end_of_session(sock: object, dest: tuple[str, int], session: bytes, seq: int) -> None:
    """End of session, sent 10 times over 0.2 s so that subscribers behind a lossy link still see one."""
    for _ in range(10):
        sock.sendto(moldudp64.HEADER.pack(session, seq, moldudp64.END_OF_SESSION), dest)  # type: ignore[attr-defined]
        time.sleep(0.02)


def _pack(source: Source, seq: int, due: int, room: int) -> tuple[bytes, int]:
    """Blocks for messages seq..due, as many as fit `room` bytes."""
    blocks = []
    used = n = 0
    while seq + n <= due:
        m = source.message(seq + n)
        if used + 2 + len(m) > room:
            break
        blocks.append(len(m).to_bytes(2, "big"))
        blocks.append(m)
        used += 2 + len(m)
        n += 1
    return b"".join(blocks), n


def publish(args: PublisherConfig) -> PublisherResult:
    """The incremental feed: the compiled loop for synthetic messages unless engine python."""
    source = open_source(args.source, args.messages)
    if args.engine == "c" and isinstance(source, SyntheticSource):
        return publish_compiled(args, source)
    return publish_python(args, source)


def _result(status: str, seq: int, packets: int, digest: str, mono: np.ndarray, engine: str) -> PublisherResult:
    elapsed = (mono[packets - 1] - mono[0]) / 1e9 if packets > 1 else 0.0
    return PublisherResult(status=status, engine=engine, messages=seq - 1, packets=packets, sha256=digest,
                           elapsed_s=elapsed, packet_rate=packets / elapsed if elapsed else 0.0,
                           message_rate=(seq - 1) / elapsed if elapsed else 0.0, end_sequence=seq)


def publish_compiled(args: PublisherConfig, source: SyntheticSource) -> PublisherResult:
    """The same open loop as publish_python, in _mold.publish; the digest is computed after the loop."""
    count = min(args.messages, source.count)
    sock = sender(args.iface)
    session = moldudp64.session_bytes(args.session)
    per_packet = (args.payload - moldudp64.HEADER_LEN) // (2 + source.size)
    template, _ = source.packet_template(per_packet)
    records = [np.zeros(count + 16, np.int64) for _ in range(4)]
    period = 1e9 / args.rate if args.rate > 0 else 0.0
    t0 = time.perf_counter_ns() + 50_000_000  # subscribers are already joined; a short pause first
    time.sleep(0.05)
    with gc_paused():
        seq, packets, status = _mold.publish(
            fd=sock.fileno(), group=args.group, port=args.port, session=session, template=bytes(template),
            block=2 + source.size, seq_offset=3, count=count, period_ns=period, t0_ns=t0, first=records[0],
            counts=records[1], mono=records[2], real=records[3])
    _end_of_session(sock, (args.group, args.port), session, seq)
    first, counts, mono, real = (r[:packets] for r in records)
    _save(args.out, first, counts, mono, real, t0, period)
    return _result(status, seq, packets, stream_digest(source, seq - 1), mono, "c")


def publish_python(args: PublisherConfig, source: Source) -> PublisherResult:
    """The reference loop, for any source."""
    count = min(args.messages, source.count)
    sock = sender(args.iface)
    dest = (args.group, args.port)
    session = moldudp64.session_bytes(args.session)
    header = moldudp64.HEADER
    room = args.payload - moldudp64.HEADER_LEN
    max_packets = count + 16
    first = np.zeros(max_packets, np.int64)
    counts = np.zeros(max_packets, np.int64)
    mono = np.zeros(max_packets, np.int64)
    real = np.zeros(max_packets, np.int64)
    digest = hashlib.sha256()
    period = 1e9 / args.rate if args.rate > 0 else 0.0
    clock, wall = time.perf_counter_ns, time.time_ns
    packets = 0
    seq = 1
    status = "ok"
    template = seq_fields = None
    per_packet = 0
    if isinstance(source, SyntheticSource):
        per_packet = room // (2 + source.size)
        template, seq_fields = source.packet_template(per_packet)
    last_send = clock()
    t0 = clock() + 50_000_000  # subscribers are already joined; a short pause before the first message
    while clock() < t0:
        pass
    try:
        with gc_paused():
            while seq <= count:
                now = clock()
                due = count if not period else min(count, int((now - t0) / period) + 1)
                if due < seq:
                    if now - last_send > 1_000_000_000:
                        sock.sendto(header.pack(session, seq, moldudp64.HEARTBEAT), dest)
                        last_send = now
                    wait = t0 + (seq - 1) * period - now
                    if wait > 200_000:
                        time.sleep((wait - 100_000) / 1e9)
                    continue
                if template is not None and due - seq + 1 >= per_packet:
                    # a full packet of synthetic messages: patch the sequence fields of the template
                    seq_fields[:] = np.arange(seq, seq + per_packet, dtype=np.uint64)
                    body, n = bytes(template), per_packet
                else:
                    body, n = _pack(source, seq, due, room)
                first[packets], counts[packets] = seq, n
                mono[packets], real[packets] = clock(), wall()
                sock.sendto(header.pack(session, seq, n) + body, dest)
                last_send = mono[packets]
                digest.update(body)
                packets += 1
                seq += n
    except KeyboardInterrupt:
        status = "interrupted"
    _end_of_session(sock, dest, session, seq)
    _save(args.out, first[:packets], counts[:packets], mono[:packets], real[:packets], t0, period)
    return _result(status, seq, packets, digest.hexdigest(), mono, "python")


def publish_conflated(args: PublisherConfig) -> PublisherResult:
    """Updates arrive at --rate across --instruments; packets leave at most --packet-rate per second,
    each carrying the latest state of the instruments that changed since they were last sent."""
    sock = sender(args.iface)
    dest = (args.group, args.port)
    session = moldudp64.session_bytes(args.session)
    rng = np.random.default_rng(args.seed)
    instruments = args.instruments
    picks = rng.integers(0, instruments, size=args.messages)
    prices = 1_000_000 + rng.integers(-500, 500, size=args.messages) * 100
    latest: dict[int, tuple[int, int, int]] = {}  # instrument → (update seq, update time, price)
    per_packet = (args.payload - moldudp64.HEADER_LEN) // (2 + CONFLATED.size)
    update_period = 1e9 / args.rate
    packet_period = 1e9 / args.packet_rate
    clock = time.perf_counter_ns
    t0 = clock() + 50_000_000
    seq = 1
    updates = 0
    packets = 0
    next_packet = t0
    status = "ok"
    sent: list[tuple[int, int, int, int]] = []
    try:
        with gc_paused():
            while updates < args.messages or latest:
                now = clock()
                while updates < args.messages and t0 + updates * update_period <= now:
                    latest[int(picks[updates])] = (updates + 1, int(t0 + updates * update_period),
                                                   int(prices[updates]))
                    updates += 1
                if now >= next_packet and latest:
                    items = list(latest.items())[:per_packet]
                    body = b"".join(b"\x00" + bytes([CONFLATED.size]) + CONFLATED.pack(b"Z", inst, *state)
                                    for inst, state in items)
                    for inst, _ in items:
                        del latest[inst]
                    sent.append((seq, len(items), clock(), time.time_ns()))
                    sock.sendto(moldudp64.HEADER.pack(session, seq, len(items)) + body, dest)
                    seq += len(items)
                    packets += 1
                    next_packet += packet_period
                    if next_packet < now:
                        next_packet = now
    except KeyboardInterrupt:
        status = "interrupted"
    _end_of_session(sock, dest, session, seq)
    table = np.array(sent, dtype=np.int64).reshape(-1, 4)
    _save(args.out, table[:, 0], table[:, 1], table[:, 2], table[:, 3], t0, 0.0)
    return PublisherResult(status=status, engine="python", updates=updates, packets=packets, messages=seq - 1,
                           end_sequence=seq)


def _save(out: Path, first: np.ndarray, counts: np.ndarray, mono: np.ndarray, real: np.ndarray, t0: int,
          period: float) -> None:
    """Per-packet send records, written atomically."""
    tmp = Path(str(out) + ".tmp.npz")
    np.savez(tmp, first_seq=first, count=counts, send_mono_ns=mono, send_real_ns=real, t0_ns=np.array([t0]),
             period_ns=np.array([period]))
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    args = start(PublisherConfig, "python -m udp_multicast.publisher", argv)
    record = publish_conflated(args) if args.mode == "conflated" else publish(args)
    say_result(record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
