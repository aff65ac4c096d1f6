"""The SoupBinTCP 3.00 server side of one TCP connection, as a state machine without sockets.

`ServerSession.receive(data, now)` and `tick(now)` return the bytes to send; `closed` says why the
connection must be dropped (its `reason` is logged by the server). Times are seconds (monotonic).
Sequenced messages live in a `Stream` per user, so a re-login from sequence N replays from N.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from latlab.wire import soupbintcp as soup

HEARTBEAT_S = 1.0          # the server sends a heartbeat after this long without sending
SILENT_S = 15.0            # a client that sends nothing for this long is dropped
LOGIN_S = 30.0             # a connection that does not log in within this long is dropped


@dataclass
class SoupConfig:
    """The server's session name and users (from the simulator's config)."""

    session: str = "LATLAB0001"
    users: dict[str, str] = field(default_factory=dict)
    heartbeat_s: float = HEARTBEAT_S
    silent_s: float = SILENT_S
    login_s: float = LOGIN_S
    max_packet: int = 1024     # a larger length field is garbage: the peer is dropped


@dataclass
class Stream:
    """One user's sequenced messages (payloads of `S` packets), numbered from 1."""

    messages: list[bytes] = field(default_factory=list)

    @property
    def next_sequence(self) -> int:
        return len(self.messages) + 1


# What the session hands to the order protocol: the unsequenced payload and a way to answer in sequence.
Handler = Callable[[bytes, "ServerSession"], None]


class ServerSession:
    """One client connection: waiting for login → logged in → closed."""

    def __init__(self, config: SoupConfig, streams: dict[str, Stream], handler: Handler, now: float,
                 active: set[str] | None = None) -> None:
        self.config = config
        self.streams = streams
        self.active = active if active is not None else set()  # users logged in now, shared by the server's sessions
        self.handler = handler
        self.reader = soup.FrameReader(config.max_packet)
        self.user: str | None = None
        self.opened = self.last_received = self.last_sent = now
        self.closed: str | None = None
        self.holds_login = False
        self.out: list[bytes] = []
        self.stats = {"packets": 0, "heartbeats_sent": 0, "sequenced_sent": 0}

    @property
    def logged_in(self) -> bool:
        return self.user is not None and self.closed is None

    def _send(self, raw: bytes, now: float) -> None:
        self.out.append(raw)
        self.last_sent = now

    def _close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
        self.release()

    def release(self) -> None:
        """This connection no longer holds its user's login (closed here, or dropped by the server)."""
        if self.user is not None and self.holds_login:
            self.active.discard(self.user)
            self.holds_login = False

    def _take(self) -> bytes:
        data = b"".join(self.out)
        self.out.clear()
        return data

    def send_sequenced(self, payload: bytes, now: float) -> None:
        """Append to the user's stream and send it (an order protocol's answer)."""
        assert self.user is not None
        self.streams.setdefault(self.user, Stream()).messages.append(payload)
        self._send(soup.frame("S", payload), now)
        self.stats["sequenced_sent"] += 1

    def receive(self, data: bytes, now: float) -> bytes:
        """Bytes from the client; returns what to send back."""
        if self.closed:
            return b""
        self.last_received = now
        try:
            packets = self.reader.feed(data)
        except ValueError as exc:
            self._close(f"garbage: {exc}")
            return self._take()
        for packet in packets:
            self.stats["packets"] += 1
            self._packet(packet, now)
            if self.closed:
                break
        return self._take()

    def _packet(self, packet: soup.Packet, now: float) -> None:
        if self.user is None:
            if packet.type != "L":
                self._close(f"{packet.type!r} packet before login")
                return
            self._login(packet.payload, now)
            return
        if packet.type == "U":
            self.handler(packet.payload, self)
        elif packet.type == "R":
            pass  # a client heartbeat: last_received is enough
        elif packet.type == "O":
            self._close("logout")
        elif packet.type == "L":
            self._close("second login on one connection")
        else:
            self._close(f"unexpected {packet.type!r} packet from a client")

    def _login(self, payload: bytes, now: float) -> None:
        layout = soup.PACKETS["L"]
        if len(payload) != layout.length - 1:
            self._close(f"login of {len(payload)} bytes")
            return
        req = layout.decode(b"L" + payload)
        user, password, session = req.username.strip(), req.password.strip(), req.session.strip()
        try:
            wanted = int(req.sequence.strip() or "0")
        except ValueError:
            wanted = -1
        if self.config.users.get(user) != password or wanted < 0:
            self._send(soup.frame_message(soup.PACKETS.make("J", reason=soup.REJECT_NOT_AUTHORIZED)), now)
            self._close("login rejected: not authorized")
            return
        if session and session != self.config.session:
            self._send(soup.frame_message(soup.PACKETS.make("J", reason=soup.REJECT_SESSION_NOT_AVAILABLE)), now)
            self._close(f"login rejected: session {session!r} not available")
            return
        if user in self.active:
            # One account, one session: the second login is refused and the first goes on undisturbed.
            self._send(soup.frame_message(soup.PACKETS.make("J", reason=soup.REJECT_NOT_AUTHORIZED)), now)
            self._close(f"login rejected: {user} is already logged in on another connection")
            return
        stream = self.streams.setdefault(user, Stream())
        start = stream.next_sequence if wanted == 0 else min(wanted, stream.next_sequence)
        self.user = user
        self.active.add(user)
        self.holds_login = True
        self._send(soup.frame_message(soup.PACKETS.make("A", session=self.config.session,
                                                        sequence=str(start).rjust(20))), now)
        for payload in stream.messages[start - 1:]:
            self._send(soup.frame("S", payload), now)

    def tick(self, now: float) -> bytes:
        """Timers: heartbeats when idle, and the two timeouts (before login only the login timeout)."""
        if self.closed:
            return b""
        if self.user is None and now - self.opened >= self.config.login_s:
            self._close(f"no login within {self.config.login_s:g} s")
        elif self.user is not None and now - self.last_received >= self.config.silent_s:
            self._close(f"silent for {self.config.silent_s:g} s")
        elif self.user is not None and now - self.last_sent >= self.config.heartbeat_s:
            self._send(soup.frame("H"), now)
            self.stats["heartbeats_sent"] += 1
        return self._take()

    def end_of_session(self, now: float) -> bytes:
        """The server is done for the day: `Z`, then the connection is closed."""
        if self.logged_in:
            self._send(soup.frame("Z"), now)
        self._close("end of session")
        return self._take()
