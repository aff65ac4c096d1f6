"""The re-request (retransmission) server: `python -m udp_multicast.rerequest ...` (a
RerequestConfig).

It listens to the feed itself and keeps every message it sees, then answers unicast MoldUDP64
requests (session, first sequence, count) with one packet holding what it has from that sequence,
as much as fits. Garbage, wrong sessions and requests past what it has seen get no answer; each
requester is rate limited (token bucket); nothing a client sends can stop it.
"""

from __future__ import annotations

import select
import socket
import sys
import time
from collections import Counter

from pydantic import Field

from latlab.helper import HelperConfig, HelperResult, say_ready, say_result
from latlab.helper_main import start
from latlab.mcast import receiver
from latlab.wire import moldudp64
from udp_multicast._mold import check_packet


class RerequestConfig(HelperConfig):
    """The re-request server of one feed."""

    group: str
    port: int = Field(ge=1, le=65535)
    iface: str
    listen_port: int = Field(0, ge=0, le=65535, description="0: a free port (said in READY)")
    payload: int = Field(moldudp64.DEFAULT_PAYLOAD, ge=moldudp64.HEADER_LEN + 3)
    rate_limit: float = Field(5000.0, gt=0, description="requests/s per requester")
    burst: float = Field(200.0, ge=1)
    idle_timeout: float = Field(30.0, gt=0)


class RerequestResult(HelperResult):
    """What the server stored and how it answered."""

    stored: int = 0
    sessions: int = 0
    requests: int = 0
    malformed: int = 0
    rate_limited: int = 0
    unanswered: int = 0
    answered: int = 0


class TokenBucket:
    """`rate` requests per second with bursts of `burst`, per requester."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.state: dict[tuple[str, int], tuple[float, float]] = {}

    def allow(self, who: tuple[str, int], now: float) -> bool:
        tokens, last = self.state.get(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.state[who] = (tokens, now)
            return False
        self.state[who] = (tokens - 1, now)
        return True


class Store:
    """Messages by session and sequence number, as seen on the feed.

    Two sessions can share a group (a daily rollover starts a new one while the old one's late
    requests still come in), so every session keeps its own sequence space and answers only from it.
    At most `max_sessions` are kept; the one seen longest ago makes room for a new one.
    """

    def __init__(self, max_sessions: int = 4) -> None:
        self.sessions: dict[bytes, dict[int, bytes]] = {}
        self.max_sessions = max_sessions

    @property
    def stored(self) -> int:
        return sum(len(messages) for messages in self.sessions.values())

    def add_packet(self, data: bytes) -> None:
        if check_packet(data) is not None:
            return
        packet = moldudp64.decode_packet(data)
        if packet.is_heartbeat or packet.is_end_of_session:
            return
        messages = self.sessions.pop(packet.session, None)
        if messages is None:
            messages = {}
            while len(self.sessions) >= self.max_sessions:
                del self.sessions[next(iter(self.sessions))]
        self.sessions[packet.session] = messages  # most recently seen last
        for i, m in enumerate(packet.messages):
            messages.setdefault(packet.sequence + i, m)

    def answer(self, session: bytes, first: int, count: int, payload: int) -> bytes | None:
        """One packet of the session's stored messages from `first` (at most `count`, fitting `payload`), or None."""
        messages = self.sessions.get(session)
        if messages is None or first not in messages:
            return None
        out: list[bytes] = []
        size = moldudp64.HEADER_LEN
        seq = first
        while len(out) < count and seq in messages:
            m = messages[seq]
            if size + 2 + len(m) > payload:
                break
            out.append(m)
            size += 2 + len(m)
            seq += 1
        return moldudp64.encode_packet(session, first, out)


def serve(args: RerequestConfig) -> RerequestResult:
    feed = receiver(args.group, args.port, args.iface, timestamps=False)
    feed.setblocking(False)
    req = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req.bind((args.iface, args.listen_port))
    req.setblocking(False)
    say_ready(port=req.getsockname()[1])
    store = Store()
    bucket = TokenBucket(args.rate_limit, args.burst)
    counts: Counter[str] = Counter()
    last_activity = time.monotonic()
    try:
        while time.monotonic() - last_activity < args.idle_timeout:
            ready, _, _ = select.select([feed, req], [], [], 0.1)
            if feed in ready:
                while True:
                    try:
                        store.add_packet(feed.recv(65536))
                    except BlockingIOError:
                        break
                last_activity = time.monotonic()
            if req in ready:
                while True:
                    try:
                        data, who = req.recvfrom(65536)
                    except BlockingIOError:
                        break
                    last_activity = time.monotonic()
                    counts["requests"] += 1
                    if len(data) != moldudp64.HEADER_LEN:
                        counts["malformed"] += 1
                        continue
                    if not bucket.allow(who, time.monotonic()):
                        counts["rate_limited"] += 1
                        continue
                    session, first, count = moldudp64.decode_header(data)
                    reply = store.answer(session, first, count, args.payload)
                    if reply is None:
                        counts["unanswered"] += 1
                        continue
                    req.sendto(reply, who)
                    counts["answered"] += 1
    except KeyboardInterrupt:
        pass
    return RerequestResult(stored=store.stored, sessions=len(store.sessions), **counts)


def main(argv: list[str] | None = None) -> int:
    say_result(serve(start(RerequestConfig, "python -m udp_multicast.rerequest", argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
