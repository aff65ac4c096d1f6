"""Message sources for the publisher: synthetic fixed-size messages, or an ITCH 5.0 BinaryFILE."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path
from typing import Protocol

import numpy as np

_SYNTH = struct.Struct(">cQ")


class Source(Protocol):
    count: int

    def message(self, seq: int) -> bytes: ...


class SyntheticSource:
    """Message `seq` (from 1) is `size` bytes: 'T', the sequence number (u64), then a fixed filler."""

    def __init__(self, size: int, count: int) -> None:
        if size < _SYNTH.size:
            raise ValueError(f"synthetic messages need at least {_SYNTH.size} bytes")
        self.size = size
        self.count = count
        self.filler = bytes((i * 7 + 3) & 0xFF for i in range(size - _SYNTH.size))

    def message(self, seq: int) -> bytes:
        return _SYNTH.pack(b"T", seq) + self.filler

    def blocks(self, first: int, n: int) -> bytes:
        """Messages first..first+n-1 as MoldUDP64 blocks, built in one piece."""
        body, seqs = self.packet_template(n)
        seqs[:] = np.arange(first, first + n, dtype=np.uint64)
        return bytes(body)

    def packet_template(self, per_packet: int) -> tuple[bytearray, np.ndarray]:
        """Blocks for `per_packet` messages and a writable big-endian u64 view of their sequence fields."""
        block = len(self.message(0)).to_bytes(2, "big") + self.message(0)
        body = bytearray(block * per_packet)
        seqs = np.ndarray((per_packet,), dtype=">u8", buffer=body, offset=3, strides=(len(block),))
        return body, seqs


class ItchFileSource:
    """The messages of an ITCH BinaryFILE (gzip or not), in file order, at most `limit`."""

    def __init__(self, path: Path, limit: int | None = None) -> None:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        self.messages: list[bytes] = []
        pos = 0
        while pos + 2 <= len(data) and (limit is None or len(self.messages) < limit):
            n = (data[pos] << 8) | data[pos + 1]
            if n == 0 or pos + 2 + n > len(data):
                raise ValueError(f"{path}: bad frame at offset {pos}")
            self.messages.append(data[pos + 2:pos + 2 + n])
            pos += 2 + n
        self.count = len(self.messages)

    def message(self, seq: int) -> bytes:
        return self.messages[seq - 1]


def open_source(spec: str, count: int) -> Source:
    """`synthetic:SIZE` or `itch:PATH`."""
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        return SyntheticSource(int(arg or 64), count)
    if kind == "itch":
        return ItchFileSource(Path(arg), count)
    raise ValueError(f"unknown source {spec!r}: synthetic:SIZE or itch:PATH")


def stream_digest(source: Source, count: int) -> str:
    """sha256 of messages 1..count framed as MoldUDP64 blocks: what a subscriber must deliver."""
    h = hashlib.sha256()
    if isinstance(source, SyntheticSource):
        for first in range(1, count + 1, 100_000):
            h.update(source.blocks(first, min(100_000, count + 1 - first)))
        return h.hexdigest()
    for seq in range(1, count + 1):
        m = source.message(seq)
        h.update(len(m).to_bytes(2, "big") + m)
    return h.hexdigest()
