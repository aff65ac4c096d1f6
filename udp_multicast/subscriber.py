"""A MoldUDP64 subscriber with gap recovery: `python -m udp_multicast.subscriber ...` (a
SubscriberConfig).

`Subscriber` is the protocol logic (no sockets, so the tests drive it directly): it validates each
packet (malformed ones are counted by kind, logged with a hex sample, and never delivered), delivers
messages strictly in sequence, buffers what arrives past a gap, asks the re-request server for the
missing range (and asks again if the answer does not come), and keeps per-packet receive times for
the one-way latency. The process around it joins the group and records the results.
"""

from __future__ import annotations

import hashlib
import os
import resource
import select
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from latlab.cpu import gc_paused
from latlab.helper import HelperConfig, HelperResult, say_ready, say_result
from latlab.helper_main import start
from latlab.mcast import kernel_rx_ns, receiver
from latlab.wire import moldudp64
from udp_multicast._mold import check_packet, drain
from udp_multicast.publisher import CONFLATED

MAX_SAMPLES_LOGGED = 5


class SubscriberConfig(HelperConfig):
    """One subscriber of a MoldUDP64 feed."""

    group: str
    port: int = Field(ge=1, le=65535)
    iface: str = Field(description="address of the interface to join on")
    session: str | None = Field(None, max_length=10, description="expected session (default: the first one seen)")
    rerequest: str | None = Field(None, pattern=r"^[^:]+:\d+$", description="HOST:PORT of the re-request server")
    conflated: bool = Field(False, description="messages are conflated snapshots: measure staleness")
    idle_timeout: float = Field(5.0, gt=0)
    name: str = "subscriber"
    cpu: int | None = None
    engine: Literal["c", "python"] = Field("c", description="c: in-order live packets through the compiled path; "
                                                            "python: every packet through on_packet")
    out: Path = Path("subscriber.npz")


class SubscriberSummary(HelperResult):
    """What a subscriber received; its per-packet receive records are in its `out` file."""

    status: str
    name: str = ""
    engine: str = ""
    cpu_s: float = 0.0
    delivered: int = 0
    expected_next: int = 0
    end_sequence: int | None = None
    complete: bool = False
    sha256: str = ""
    live_messages: int = 0
    delivered_from_retransmission: int = 0
    malformed: dict[str, int] = Field(default_factory=dict)
    malformed_samples: list[str] = Field(default_factory=list)
    heartbeats: int = 0
    duplicates: int = 0
    reordered: int = 0
    late_retransmissions: int = 0
    gaps: int = 0
    requests: int = 0
_HEADER = moldudp64.HEADER


def _skip_blocks(blocks: bytes, n: int) -> bytes:
    pos = 0
    for _ in range(n):
        pos += 2 + ((blocks[pos] << 8) | blocks[pos + 1])
    return blocks[pos:]


class Subscriber:
    """In-order delivery with gap detection and re-requests. Times are CLOCK_MONOTONIC ns."""

    def __init__(self, session: bytes | None, request: Callable[[int, int], None], *, retry_ns: int = 20_000_000,
                 capacity: int = 1 << 16, conflated: bool = False, log: Callable[[str], None] | None = None) -> None:
        self.session = session
        self.request = request
        self.retry_ns = retry_ns
        self.conflated = conflated
        self.log = log or (lambda line: None)
        self.expected = 1
        self.end_sequence: int | None = None
        self.pending: dict[int, tuple[int, bytes]] = {}
        self.digest = hashlib.sha256()
        self.delivered = 0
        self.live_messages = 0
        self.recovered = 0
        self.counts: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self.malformed_samples: list[str] = []
        self.seen_first: set[int] = set()
        self.highest_live = 0
        self.gap_since: int | None = None
        self.gap_start = 0
        self.last_request = 0
        self.first_seq = np.zeros(capacity, np.int64)
        self.count = np.zeros(capacity, np.int64)
        self.t_user = np.zeros(capacity, np.int64)
        self.t_kernel = np.zeros(capacity, np.int64)
        self.samples = 0
        self.recovery_ns: list[int] = []
        self.staleness_ns: list[int] = []

    @property
    def done(self) -> bool:
        """The end of session met the next expected sequence with no gap outstanding."""
        return self.end_sequence is not None and self.expected == self.end_sequence and not self.pending

    def _bad(self, kind: str, data: bytes) -> None:
        self.malformed[kind] += 1
        if len(self.malformed_samples) < MAX_SAMPLES_LOGGED:
            sample = f"{kind}: {len(data)} bytes: {data[:32].hex(' ')}"
            self.malformed_samples.append(sample)
            self.log(f"malformed packet {sample}")

    def on_packet(self, data: bytes, t_user: int, t_kernel: int = 0, live: bool = True) -> None:
        """One datagram from the feed (live) or from the re-request server."""
        problem = check_packet(data)
        if problem is not None:
            self._bad(problem[0], data)
            return
        session, seq, count = _HEADER.unpack_from(data)
        if self.session is None:
            self.session = session
        elif session != self.session:
            self._bad("wrong_session", data)
            return
        if count == moldudp64.END_OF_SESSION:
            if seq < self.expected or (self.end_sequence is not None and seq != self.end_sequence):
                self._bad("sequence_backwards" if seq < self.expected else "end_of_session_moved", data)
                return
            self.end_sequence = seq
            self._gap_check(seq, t_user)
            return
        if count == moldudp64.HEARTBEAT:
            self.counts["heartbeats"] += 1
            self._gap_check(seq, t_user)
            return
        if live:
            if seq in self.seen_first:
                self.counts["duplicates"] += 1
                return
            self.seen_first.add(seq)
            if seq + count <= self.expected:
                self._bad("sequence_backwards", data)
                return
            if seq < self.highest_live:
                self.counts["reordered"] += 1
            self.highest_live = max(self.highest_live, seq)
            self.live_messages += count
            self._sample(seq, count, t_user, t_kernel)
        elif seq + count <= self.expected:
            self.counts["late_retransmissions"] += 1
            return
        blocks = data[moldudp64.HEADER_LEN:]
        if seq > self.expected:
            self.pending.setdefault(seq, (count, blocks))
            self._gap_check(seq, t_user)
            return
        before = self.expected
        self._deliver(seq, count, blocks, t_user)
        if not live:
            self.recovered += self.expected - before
        while self.pending:
            first = min(self.pending)
            if first > self.expected:
                break
            n, b = self.pending.pop(first)
            if first + n > self.expected:
                self._deliver(first, n, b, t_user)
        if self.gap_since is not None and self.expected > self.gap_start:
            self.recovery_ns.append(t_user - self.gap_since)  # the hole that opened at gap_start is filled
            self.gap_since = None
        self.tick(t_user)

    def _tail_missing(self) -> bool:
        return self.end_sequence is not None and self.expected < self.end_sequence

    def _deliver(self, seq: int, count: int, blocks: bytes, now: int) -> None:
        skip = self.expected - seq
        if skip:
            blocks = _skip_blocks(blocks, skip)
        self.digest.update(blocks)
        if self.conflated:
            pos = 0
            while pos < len(blocks):
                n = (blocks[pos] << 8) | blocks[pos + 1]
                if n == CONFLATED.size and blocks[pos + 2] == ord("Z"):
                    self.staleness_ns.append(now - CONFLATED.unpack_from(blocks, pos + 2)[3])
                pos += 2 + n
        self.delivered += count - skip
        self.expected = seq + count

    def _gap_check(self, next_known: int | None, now: int) -> None:
        """A hole from `expected` up to `next_known`: ask for it now if it is new, else every retry_ns."""
        if next_known is None or next_known <= self.expected:
            return
        new = self.gap_since is None or self.gap_start != self.expected
        if new:
            if self.gap_since is not None:
                self.recovery_ns.append(now - self.gap_since)
            self.gap_since = now
            self.gap_start = self.expected
            self.counts["gaps"] += 1
        if new or now - self.last_request >= self.retry_ns:
            self.request(self.expected, next_known - self.expected)
            self.counts["requests"] += 1
            self.last_request = now

    def tick(self, now: int) -> None:
        """Ask again for a gap that is still open."""
        if self.pending:
            self._gap_check(min(self.pending), now)
        elif self._tail_missing():
            self._gap_check(self.end_sequence, now)

    def _grow(self) -> None:
        for name in ("first_seq", "count", "t_user", "t_kernel"):
            arr = getattr(self, name)
            setattr(self, name, np.concatenate([arr, np.zeros_like(arr)]))

    def _sample(self, seq: int, count: int, t_user: int, t_kernel: int) -> None:
        if self.samples == len(self.first_seq):
            self._grow()
        i = self.samples
        self.first_seq[i], self.count[i], self.t_user[i], self.t_kernel[i] = seq, count, t_user, t_kernel
        self.samples += 1

    @property
    def fast_path_open(self) -> bool:
        """drain_live applies: no gap is open, the session is known, messages are not snapshots."""
        return not (self.pending or self.gap_since is not None or self.conflated or self.session is None)

    def drain_live(self, fd: int, other_fd: int = -1, wait_ms: int = 0) -> tuple[bytes, int, int] | None:
        """The compiled in-order path: take every live packet that continues the stream straight from the
        socket, as on_packet would; return the first one that needs on_packet, or None when the socket is
        empty (after waiting up to `wait_ms` for the feed, unless `other_fd` becomes readable first)."""
        if not self.fast_path_open:
            return None
        if self.samples == len(self.first_seq):
            self._grow()
        expected, highest, samples, live, leftover, t_user, t_kernel = drain(
            fd=fd, session=self.session, expected=self.expected, highest=self.highest_live, samples=self.samples,
            seen=self.seen_first, update=self.digest.update, first_seq=self.first_seq, count=self.count,
            t_user=self.t_user, t_kernel=self.t_kernel, other_fd=other_fd, wait_ms=wait_ms)
        self.delivered += expected - self.expected
        self.expected, self.highest_live, self.samples = expected, highest, samples
        self.live_messages += live
        return None if leftover is None else (leftover, t_user, t_kernel)

    def summary(self) -> dict[str, object]:
        return {"delivered": self.delivered, "expected_next": self.expected, "end_sequence": self.end_sequence,
                "complete": self.done, "sha256": self.digest.hexdigest(), "live_messages": self.live_messages,
                "delivered_from_retransmission": self.recovered, "malformed": dict(self.malformed),
                "malformed_samples": self.malformed_samples, **self.counts}


def run(args: SubscriberConfig) -> SubscriberSummary:
    feed = receiver(args.group, args.port, args.iface)
    feed.setblocking(False)
    rr = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rr.bind((args.iface, 0))
    rr.setblocking(False)
    target = None
    if args.rerequest:
        host, _, port = args.rerequest.rpartition(":")
        target = (host, int(port))
    session = moldudp64.session_bytes(args.session) if args.session else None

    def request(first: int, count: int) -> None:
        if target and sub.session is not None:
            rr.sendto(moldudp64.encode_request(sub.session, first, min(count, 0xFFFE)), target)

    sub = Subscriber(session, request, conflated=args.conflated,
                     log=lambda line: print(line, file=sys.stderr, flush=True))
    say_ready()
    cpu_at_ready = _cpu_seconds()
    clock = time.perf_counter_ns
    last_packet = time.monotonic()
    status = "ok"
    try:
        with gc_paused():
            while not sub.done:
                before = sub.samples
                waited = False
                if args.engine == "c" and sub.fast_path_open:
                    # blocks up to 5 ms in C; returns on a packet for on_packet, the re-request socket or timeout
                    packet = sub.drain_live(feed.fileno(), rr.fileno(), wait_ms=5)
                    if packet is not None:
                        sub.on_packet(packet[0], packet[1], packet[2], live=True)
                    waited = True
                ready, _, _ = select.select([feed, rr], [], [], 0 if waited else 0.005)
                now = clock()
                if feed in ready:
                    while True:
                        try:
                            data, anc, _, _ = feed.recvmsg(65536, 256)
                        except BlockingIOError:
                            break
                        sub.on_packet(data, clock(), kernel_rx_ns(anc), live=True)
                if rr in ready:
                    while True:
                        try:
                            data = rr.recv(65536)
                        except BlockingIOError:
                            break
                        sub.on_packet(data, clock(), 0, live=False)
                if ready or sub.samples != before:
                    last_packet = time.monotonic()
                sub.tick(now)
                if time.monotonic() - last_packet > args.idle_timeout:
                    status = "idle_timeout"
                    break
    except KeyboardInterrupt:
        status = "interrupted"
    n = sub.samples
    tmp = Path(str(args.out) + ".tmp.npz")
    np.savez(tmp, first_seq=sub.first_seq[:n], count=sub.count[:n], t_user_ns=sub.t_user[:n],
             t_kernel_real_ns=sub.t_kernel[:n], recovery_ns=np.array(sub.recovery_ns, np.int64),
             staleness_ns=np.array(sub.staleness_ns, np.int64))
    os.replace(tmp, args.out)
    return SubscriberSummary(status=status, name=args.name, engine=args.engine,
                             cpu_s=round(_cpu_seconds() - cpu_at_ready, 3), **sub.summary())


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    args = start(SubscriberConfig, "python -m udp_multicast.subscriber", argv)
    say_result(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
