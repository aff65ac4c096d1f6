"""A FIX 4.4 order-entry client with the session layer (latlab.wire.fix_session): Logon, orders, execution
reports in sequence, gap recovery across reconnects, resends with PossDupFlag, Logout with a reason.

Its `FixEnd` (the sequence numbers and what it sent) outlives a connection: `connect()` again after a drop and the
session goes on, each side asking the other for what it missed. Blocking sockets, for tests and tools; the
compiled trader keeps its own sequencing for its one-way hot path.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

from latlab.wire import fix44
from latlab.wire.fix_session import FixEnd


class FixLogonRefused(ConnectionError):
    """The venue answered the Logon with a Logout; `text` is its reason."""

    def __init__(self, text: str) -> None:
        super().__init__(f"FIX logon refused: {text}")
        self.text = text


class FixClient:
    """One user's FIX session with a venue (see the module's text)."""

    def __init__(self, address: tuple[str, int], user: str, password: str, *, sender: str = "",
                 target: str = "LATLABX", heartbeat_s: int = 30, resend_timeout_s: float = 5.0) -> None:
        self.address, self.user, self.password = address, user, password
        self.end = FixEnd(sender or user, target, resend_timeout_s)
        self.heartbeat_s = heartbeat_s
        self.reader = fix44.FixReader()
        self.sock: socket.socket | None = None
        self.received: list[fix44.FixMessage] = []  # application messages, in sequence, each once
        self.logout_text = ""
        self.logged_on = False

    def connect(self, reset: bool = False, timeout: float = 5.0) -> None:
        """Connect and log on (ResetSeqNumFlag 141=Y with `reset`); FixLogonRefused with the venue's reason."""
        if reset:
            self.end.reset()
        self.end.closed, self.logout_text = None, ""
        self.reader = fix44.FixReader()
        self.sock = socket.create_connection(self.address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.end.send(fix44.LOGON, [(98, 0), (108, self.heartbeat_s), *([(141, "Y")] if reset else []),
                                    (553, self.user), (554, self.password)])
        self._flush()
        deadline = time.monotonic() + timeout
        while not self.logged_on:
            if self.sock is None or time.monotonic() > deadline:
                raise FixLogonRefused(self.logout_text or "no Logon answer")
            self.pump(0.05)

    def order(self, cl_ord_id: str, symbol: str, side: str, qty: int, price: int) -> int:
        """A limit IOC NewOrderSingle; its MsgSeqNum."""
        stamp = fix44.utc_timestamp()
        seq = self.end.send(fix44.NEW_ORDER_SINGLE, [
            (11, cl_ord_id), (55, symbol), (54, side), (60, stamp), (38, qty), (40, fix44.ORD_TYPE_LIMIT),
            (44, fix44.price_text(price)), (59, fix44.TIF_IOC)], sending_time=stamp)
        self._flush()
        return seq

    def pump(self, timeout: float) -> list[fix44.FixMessage]:
        """Read for up to `timeout` s (or until the venue closes); the application messages delivered in sequence."""
        got: list[fix44.FixMessage] = []
        if self.sock is None:
            return got
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            data = None
        except OSError:
            data = b""
        now = time.monotonic()
        if data == b"":
            self.drop(abort=False)
            return got
        for msg in self.reader.feed(data or b""):
            checked = self.end.receive(msg, now)
            if checked is None:
                continue
            if checked.type == fix44.LOGON:
                self.logged_on = True
                self.end.after_logon(now)  # a gap the Logon answer revealed is asked for now
            elif checked.type == fix44.LOGOUT:
                self.logout_text = checked.get(58)
                self.end.closed = self.logout_text or "logout"
            else:
                got.append(checked)
        self.end.tick(now)
        self._flush()
        self.received.extend(got)
        if self.end.closed is not None:
            self.drop(abort=False)
        return got

    def pump_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Pump until done() is true or `timeout` passes; whether it became true."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline or self.sock is None:
                return bool(done())
            self.pump(0.05)
        return True

    def _flush(self) -> None:
        data = self.end.take()
        if data and self.sock is not None:
            try:
                self.sock.sendall(data)
            except OSError:
                self.drop()

    def drop(self, abort: bool = True) -> None:
        """Close the connection without a Logout; the session's numbers are kept. `abort` is what a failed link
        does: a reset, and whatever the kernel still held for the venue is gone."""
        if self.sock is not None:
            if abort:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
            self.sock = None
        self.logged_on = False

    def logout(self, text: str = "") -> None:
        """Say Logout (with a reason) and close."""
        self.end.send(fix44.LOGOUT, [(58, text)] if text else [])
        self._flush()
        self.drop(abort=False)
