"""Captures of UDP/IPv4 datagrams: pcap written with nanosecond timestamps; pcap and pcapng read back.

Reading is Scapy's (`RawPcapReader` picks pcap or pcapng, µs or ns, either byte order, gzip'd or not);
this module takes the UDP/IPv4 datagrams out of Ethernet, Linux SLL or raw-IP frames. Frames that are
not UDP/IPv4 are skipped and counted; frames that are cut or lie about their lengths are counted as
problems, and so is a capture that ends inside a record, with the number of bytes that were not read.
"""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import logging
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from scapy.error import Scapy_Exception
from scapy.utils import RawPcapNgReader, RawPcapReader

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_RAW = 101


@dataclass
class Datagram:
    ts_ns: int
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac_for(ip: ipaddress.IPv4Address) -> bytes:
    if ip.is_multicast:
        return bytes([0x01, 0x00, 0x5E]) + (int(ip) & 0x7FFFFF).to_bytes(3, "big")
    return bytes([0x02, 0x00]) + ip.packed


class PcapWriter:
    """Writes UDP datagrams as Ethernet/IPv4/UDP frames into a nanosecond pcap."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.ident = 0
        f.write(struct.pack("<IHHiIII", MAGIC_NS, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))

    def write(self, ts_ns: int, src: str, dst: str, sport: int, dport: int, payload: bytes) -> None:
        s, d = ipaddress.IPv4Address(src), ipaddress.IPv4Address(dst)
        udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), self.ident & 0xFFFF, 0x4000, 64, 17, 0,
                         s.packed, d.packed)
        ip = ip[:10] + _checksum(ip).to_bytes(2, "big") + ip[12:]
        self.ident += 1
        frame = _mac_for(d) + _mac_for(s) + b"\x08\x00" + ip + udp
        self.f.write(struct.pack("<IIII", ts_ns // 1_000_000_000, ts_ns % 1_000_000_000, len(frame), len(frame)))
        self.f.write(frame)


class _Watched:
    """A file that remembers whether a read came back short or failed: Scapy's readers take either for a
    plain end of file."""

    def __init__(self, f: BinaryIO, name: str) -> None:
        self.f = f
        self.name = name
        self.cut = False
        self.failure = ""

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.f.read(n)
        except (OSError, EOFError, zlib.error) as exc:  # a corrupt gzip stream
            self.failure = str(exc) or type(exc).__name__
            return b""
        if n > 0 and 0 < len(data) < n:
            self.cut = True
        return data

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def close(self) -> None:
        self.f.close()


@contextlib.contextmanager
def _scapy_quiet() -> Iterator[None]:
    """Scapy logs a warning for each cut record; the capture's own counters say it instead."""
    log = logging.getLogger("scapy.runtime")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _whole_blocks(tail: bytes, reader: RawPcapReader) -> bool:
    """Whether what follows the last packet is whole: nothing (pcap), or whole pcapng blocks (statistics,
    name resolution...) whose trailing length repeats the leading one. Scapy reads a cut one as the end."""
    if not isinstance(reader, RawPcapNgReader):
        return not tail
    pos = 0
    while pos < len(tail):
        if pos + 12 > len(tail):
            return False
        length = struct.unpack_from(reader.endian + "I", tail, pos + 4)[0]
        if length < 12 or pos + length > len(tail) or tail[pos + 4:pos + 8] != tail[pos + length - 4:pos + length]:
            return False
        pos += length
    return True


class UdpCapture:
    """The UDP/IPv4 datagrams of a pcap or pcapng file, with what could not be read counted.

    After iterating `datagrams()`: `frames` read, `skipped` (frames that are not UDP/IPv4), `problems`
    (kind -> count: `ip_header_past_frame`, `udp_past_frame`, `capture_truncated`, `gzip_corrupt`),
    `unread_bytes` (how much after the last whole record was not read, with `capture_truncated`) and
    `failure` (why a gzip'd capture could not be read on).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.frames = 0
        self.skipped = 0
        self.problems: Counter[str] = Counter()
        self.problem_samples: list[tuple[str, int, bytes]] = []
        self.unread_bytes = 0
        self.failure = ""

    def _problem(self, kind: str, frame_index: int, data: bytes) -> None:
        self.problems[kind] += 1
        if len(self.problem_samples) < 10:
            self.problem_samples.append((kind, frame_index, data[:32]))

    def datagrams(self) -> Iterator[Datagram]:
        """Every UDP/IPv4 datagram in file order; ValueError if the file is not a capture at all."""
        with open(self.path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            f: BinaryIO = gzip.GzipFile(fileobj=raw) if gzipped else raw  # type: ignore[assignment]
            yield from self._read(_Watched(f, str(self.path)), gzipped)

    def _read(self, watched: _Watched, gzipped: bool) -> Iterator[Datagram]:
        whole = 0
        f = watched.f
        try:
            with _scapy_quiet():
                try:
                    reader = RawPcapReader(watched)  # type: ignore[arg-type]
                except Scapy_Exception as exc:
                    raise ValueError(f"{self.path}: not a pcap or pcapng capture ({exc})") from None
                whole = watched.tell()
                for frame, meta in reader:
                    if watched.cut or watched.failure:
                        break  # the record that came back short is not a packet
                    whole = watched.tell()
                    index = self.frames
                    self.frames += 1
                    linktype = getattr(meta, "linktype", None)
                    if linktype is None:
                        linktype = reader.linktype
                        ts_ns = meta.sec * 1_000_000_000 + meta.usec * (1 if reader.nano else 1000)
                    else:
                        ts_ns = ((meta.tshigh << 32) | meta.tslow) * 1_000_000_000 // meta.tsresol
                    dgram = self._udp_of(frame, linktype & 0xFFFF, ts_ns, index)
                    if dgram is not None:
                        yield dgram
            if watched.failure:
                self.failure = watched.failure
                self._problem("gzip_corrupt" if gzipped else "read_error", self.frames, b"")
            else:
                f.seek(whole)
                tail = f.read()
                if watched.cut or not _whole_blocks(tail, reader):
                    self.unread_bytes = len(tail)
                    self._problem("capture_truncated", self.frames, b"")
        finally:
            watched.close()

    def describe_problems(self) -> str:
        """The problems in one line, with the bytes not read and a gzip failure's reason."""
        text = " ".join(f"{kind}={n}" for kind, n in sorted(self.problems.items()))
        if self.unread_bytes:
            text += (f"; the capture ends inside a record: {self.unread_bytes} bytes after the last whole record "
                     "were not read")
        if self.failure:
            text += f"; {self.failure}"
        return text

    def _udp_of(self, frame: bytes, linktype: int, ts_ns: int, index: int) -> Datagram | None:
        if linktype == LINKTYPE_ETHERNET:
            off, ethertype = 14, frame[12:14]
            if ethertype == b"\x81\x00":
                off, ethertype = 18, frame[16:18]
        elif linktype == LINKTYPE_LINUX_SLL:
            off, ethertype = 16, frame[14:16]
        elif linktype == LINKTYPE_RAW:
            off, ethertype = 0, b"\x08\x00"
        else:
            self.skipped += 1
            return None
        if ethertype != b"\x08\x00" or len(frame) < off + 20 or frame[off] >> 4 != 4 or frame[off + 9] != 17:
            self.skipped += 1
            return None
        ihl = (frame[off] & 0x0F) * 4
        udp = off + ihl
        if ihl < 20 or udp + 8 > len(frame):
            self._problem("ip_header_past_frame", index, frame)
            return None
        sport, dport, ulen = struct.unpack_from(">HHH", frame, udp)
        if ulen < 8 or udp + ulen > len(frame):
            self._problem("udp_past_frame", index, frame)
            return None
        return Datagram(ts_ns, str(ipaddress.IPv4Address(frame[off + 12:off + 16])),
                        str(ipaddress.IPv4Address(frame[off + 16:off + 20])), sport, dport,
                        frame[udp + 8:udp + ulen])


def read_udp(path: Path) -> Iterator[Datagram]:
    """UDP/IPv4 datagrams of a capture; ValueError if it ends inside a record or has broken frames."""
    capture = UdpCapture(path)
    yield from capture.datagrams()
    if capture.problems:
        raise ValueError(f"{path}: {capture.describe_problems()}")
