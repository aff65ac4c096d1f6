"""The SoupBinTCP 3.00 client side over a blocking socket: log in, send unsequenced data, read replies."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass

from latlab.wire import soupbintcp as soup


class LoginRejected(ConnectionError):
    """The server answered the login with `J`; `reason` is its code (A: not authorized, S: session)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"SoupBinTCP login rejected ({reason})")
        self.reason = reason


@dataclass
class Accepted:
    session: str
    sequence: int


class SoupClient:
    """One logged-in connection; `next_sequence` counts the sequenced messages received."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = soup.FrameReader()
        self.session = ""
        self.next_sequence = 0
        self.ended = False
        self.last_sent = time.monotonic()
        self.pending: list[soup.Packet] = []

    @classmethod
    def connect(cls, address: tuple[str, int], user: str, password: str, session: str = "", sequence: int = 0,
                timeout: float = 5.0) -> SoupClient:
        """Connect and log in (sequence 0: from the next message); raises LoginRejected."""
        sock = socket.create_connection(address, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls(sock)
        try:
            client.sock.sendall(soup.login_request(user, password, session, sequence))
            packets = client._read_packets(timeout)
            first, client.pending = packets[0], packets[1:]
            if first.type == "J":
                raise LoginRejected(first.payload.decode())
            if first.type != "A":
                raise ConnectionError(f"SoupBinTCP: {first.type!r} before login accepted")
            accepted = soup.PACKETS.decode(b"A" + first.payload)
            client.session = accepted.session.strip()
            client.next_sequence = int(accepted.sequence.strip())
        except BaseException:
            sock.close()
            raise
        return client

    def _read_packets(self, timeout: float) -> list[soup.Packet]:
        self.sock.settimeout(timeout)
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("SoupBinTCP: the server closed the connection")
            packets = self.reader.feed(data)
            if packets:
                return packets

    def send(self, payload: bytes) -> None:
        """One unsequenced data packet (an order)."""
        self.sock.sendall(soup.frame("U", payload))
        self.last_sent = time.monotonic()

    def heartbeat_if_idle(self, idle_s: float = 1.0) -> None:
        if time.monotonic() - self.last_sent >= idle_s:
            self.sock.sendall(soup.frame("R"))
            self.last_sent = time.monotonic()

    def receive(self, timeout: float = 1.0) -> list[soup.Packet]:
        """What the server sent (sequenced data advances next_sequence); [] on timeout."""
        out, self.pending = self.pending, []
        if not out:
            try:
                self.sock.settimeout(timeout)
                data = self.sock.recv(65536)
            except TimeoutError:
                return []
            if not data:
                raise ConnectionError("SoupBinTCP: the server closed the connection")
            out = self.reader.feed(data)
        for packet in out:
            if packet.type == "S":
                self.next_sequence += 1
            elif packet.type == "Z":
                self.ended = True
        return out

    def logout(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(soup.frame("O"))
        self.sock.close()
