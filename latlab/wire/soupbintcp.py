"""SoupBinTCP 3.00 framing: u16 length (of type + payload), a type byte, then the payload."""

from __future__ import annotations

from dataclasses import dataclass

from latlab.wire.layout import Codec, Layout

# Packets with fixed layouts; S (sequenced data), U (unsequenced data) and + (debug) carry free payloads.
PACKETS = Codec("SoupBinTCP", (
    Layout.of("A", "LoginAccepted", (("session", "a10"), ("sequence", "a20"))),
    Layout.of("J", "LoginRejected", (("reason", "c"),)),
    Layout.of("H", "ServerHeartbeat", ()),
    Layout.of("Z", "EndOfSession", ()),
    Layout.of("L", "LoginRequest", (("username", "a6"), ("password", "a10"), ("session", "a10"),
                                    ("sequence", "a20"))),
    Layout.of("R", "ClientHeartbeat", ()),
    Layout.of("O", "LogoutRequest", ()),
))
PAYLOAD_TYPES = {"S", "U", "+"}
REJECT_NOT_AUTHORIZED = "A"
REJECT_SESSION_NOT_AVAILABLE = "S"
MAX_PACKET = 0xFFFF


def frame(ptype: str, payload: bytes = b"") -> bytes:
    """One packet: the length counts the type byte and the payload."""
    body = ptype.encode() + payload
    if len(body) > MAX_PACKET:
        raise ValueError("SoupBinTCP packet too long")
    return len(body).to_bytes(2, "big") + body


def frame_message(msg: object) -> bytes:
    """A fixed-layout packet (login, heartbeat, …) from its namedtuple."""
    raw = PACKETS.encode(msg)
    return len(raw).to_bytes(2, "big") + raw


def login_request(username: str, password: str, session: str = "", sequence: int = 0) -> bytes:
    """Login: sequence 0 asks for the next message; session blank asks for the current session."""
    return frame_message(PACKETS.make("L", username=username, password=password, session=session,
                                      sequence=str(sequence).rjust(20)))


@dataclass
class Packet:
    type: str
    payload: bytes


class FrameReader:
    """Splits a TCP byte stream into packets; refuses lengths of 0 or above `max_length`."""

    def __init__(self, max_length: int = MAX_PACKET) -> None:
        self.buf = bytearray()
        self.max_length = max_length

    def feed(self, data: bytes) -> list[Packet]:
        self.buf += data
        out = []
        while len(self.buf) >= 2:
            length = (self.buf[0] << 8) | self.buf[1]
            if length == 0 or length > self.max_length:
                raise ValueError(f"SoupBinTCP length {length} out of range")
            if len(self.buf) < 2 + length:
                break
            out.append(Packet(chr(self.buf[2]), bytes(self.buf[3:2 + length])))
            del self.buf[:2 + length]
        return out
