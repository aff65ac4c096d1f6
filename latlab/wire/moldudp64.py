"""MoldUDP64 1.00: downstream packets, heartbeats, end of session, and re-requests.

Header (20 bytes): session (10 bytes ASCII), sequence number of the first message (u64), message count
(u16); then `count` blocks of u16 length + message. Count 0 is a heartbeat (sequence = next expected),
0xFFFF is end of session. A re-request has the same 20-byte layout: first wanted sequence and count.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

HEADER = struct.Struct(">10sQH")
HEADER_LEN = HEADER.size
HEARTBEAT = 0
END_OF_SESSION = 0xFFFF
MAX_SEQUENCE = (1 << 63) - 1  # the last sequence a signed 64-bit counter (and every int64 array) holds
DEFAULT_PAYLOAD = 1472  # an Ethernet MTU of 1500 less IPv4 and UDP headers, as real feeds use
MALFORMED_KINDS = ("short_header", "sequence_out_of_range", "length_past_end", "count_mismatch", "zero_length",
                   "trailing_bytes")


class MoldError(ValueError):
    """A packet that breaks the layout; `kind` is one of MALFORMED_KINDS."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class Packet:
    """A decoded downstream packet (or re-request: same layout, no messages)."""

    session: bytes
    sequence: int
    count: int
    messages: list[bytes] = field(default_factory=list)

    @property
    def is_heartbeat(self) -> bool:
        return self.count == HEARTBEAT

    @property
    def is_end_of_session(self) -> bool:
        return self.count == END_OF_SESSION

    @property
    def next_sequence(self) -> int:
        """The sequence number after this packet's messages."""
        return self.sequence + (0 if self.count in (HEARTBEAT, END_OF_SESSION) else self.count)


def session_bytes(session: str | bytes) -> bytes:
    raw = session.encode("ascii") if isinstance(session, str) else session
    if len(raw) > 10:
        raise ValueError(f"session {session!r} is longer than 10 bytes")
    return raw.ljust(10, b" ")


def encode_packet(session: str | bytes, sequence: int, messages: Iterable[bytes]) -> bytes:
    """A packet carrying `messages` from `sequence` on."""
    msgs = list(messages)
    if len(msgs) >= END_OF_SESSION:
        raise ValueError("too many messages for one packet")
    out = [HEADER.pack(session_bytes(session), sequence, len(msgs))]
    for m in msgs:
        if not 0 < len(m) <= 0xFFFF:
            raise ValueError(f"message length {len(m)} out of range")
        out.append(len(m).to_bytes(2, "big"))
        out.append(m)
    return b"".join(out)


def encode_heartbeat(session: str | bytes, next_sequence: int) -> bytes:
    return HEADER.pack(session_bytes(session), next_sequence, HEARTBEAT)


def encode_end_of_session(session: str | bytes, next_sequence: int) -> bytes:
    return HEADER.pack(session_bytes(session), next_sequence, END_OF_SESSION)


def encode_request(session: str | bytes, sequence: int, count: int) -> bytes:
    """A re-request for `count` messages from `sequence`."""
    return HEADER.pack(session_bytes(session), sequence, count)


def decode_header(data: bytes | memoryview) -> tuple[bytes, int, int]:
    if len(data) < HEADER_LEN:
        raise MoldError("short_header", f"{len(data)} bytes, header needs {HEADER_LEN}")
    return HEADER.unpack_from(data, 0)


def problem(data: bytes | memoryview) -> str | None:
    """The reference verdict on a packet: None when it is well formed, else the MoldError kind."""
    try:
        decode_packet(data)
    except MoldError as exc:
        return exc.kind
    return None


def decode_packet(data: bytes | memoryview) -> Packet:
    """Decode and validate a whole packet; any layout error raises MoldError with its kind."""
    session, sequence, count = decode_header(data)
    header = Packet(session, sequence, count)
    if header.next_sequence > MAX_SEQUENCE:
        raise MoldError("sequence_out_of_range", f"sequence {sequence} (+{count}) passes {MAX_SEQUENCE}")
    if header.is_heartbeat or header.is_end_of_session:
        if len(data) != HEADER_LEN:
            raise MoldError("trailing_bytes", f"{len(data) - HEADER_LEN} bytes after a count-{count} header")
        return header
    messages = []
    pos, end = HEADER_LEN, len(data)
    while pos < end:
        if pos + 2 > end:
            raise MoldError("length_past_end", f"a length field cut at offset {pos}")
        length = (data[pos] << 8) | data[pos + 1]
        if length == 0:
            raise MoldError("zero_length", f"zero-length message at offset {pos}")
        if pos + 2 + length > end:
            raise MoldError("length_past_end", f"message of {length} bytes at offset {pos} runs past {end}")
        messages.append(bytes(data[pos + 2:pos + 2 + length]))
        pos += 2 + length
    if len(messages) != count:
        raise MoldError("count_mismatch", f"header says {count} messages, packet holds {len(messages)}")
    return Packet(session, sequence, count, messages)


def message_blocks(data: bytes | memoryview) -> memoryview:
    """The length-prefixed message blocks after the header (the framing BinaryFILE also uses)."""
    return memoryview(data)[HEADER_LEN:]


def pack(messages: Iterable[bytes], session: str | bytes, first_sequence: int = 1,
         max_payload: int = DEFAULT_PAYLOAD) -> Iterator[tuple[int, list[bytes]]]:
    """Group messages into packets of at most `max_payload` bytes: yields (first sequence, messages)."""
    batch: list[bytes] = []
    size = HEADER_LEN
    seq = first_sequence
    for m in messages:
        need = 2 + len(m)
        if HEADER_LEN + need > max_payload:
            raise ValueError(f"a {len(m)}-byte message does not fit a {max_payload}-byte packet")
        if size + need > max_payload:
            yield seq, batch
            seq += len(batch)
            batch, size = [], HEADER_LEN
        batch.append(m)
        size += need
    if batch:
        yield seq, batch
