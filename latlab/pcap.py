"""Minimal pcap files of UDP/IPv4 datagrams: written with nanosecond timestamps, read back (Ethernet or SLL).

Enough for market-data captures and replays; anything else in a capture is skipped and counted.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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


def read_udp(path: Path) -> Iterator[Datagram]:
    """UDP/IPv4 datagrams of a pcap file (µs or ns, either byte order; Ethernet, Linux SLL or raw IP)."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            raise ValueError(f"{path}: not a pcap file (too short)")
        for endian in ("<", ">"):
            magic = struct.unpack(endian + "I", head[:4])[0]
            if magic in (MAGIC_US, MAGIC_NS):
                break
        else:
            raise ValueError(f"{path}: not a pcap file (magic {head[:4].hex()})")
        scale = 1 if magic == MAGIC_NS else 1000
        linktype = struct.unpack(endian + "I", head[20:24])[0] & 0xFFFF
        rec = struct.Struct(endian + "IIII")
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                return
            sec, frac, caplen, _ = rec.unpack(rh)
            frame = f.read(caplen)
            if len(frame) < caplen:
                return
            dgram = _udp_of(frame, linktype, sec * 1_000_000_000 + frac * scale)
            if dgram is not None:
                yield dgram


def _udp_of(frame: bytes, linktype: int, ts_ns: int) -> Datagram | None:
    if linktype == LINKTYPE_ETHERNET:
        off, ethertype = 14, frame[12:14]
        if ethertype == b"\x81\x00":
            off, ethertype = 18, frame[16:18]
    elif linktype == LINKTYPE_LINUX_SLL:
        off, ethertype = 16, frame[14:16]
    elif linktype == LINKTYPE_RAW:
        off, ethertype = 0, b"\x08\x00"
    else:
        return None
    if ethertype != b"\x08\x00" or len(frame) < off + 28 or frame[off + 9] != 17:
        return None
    ihl = (frame[off] & 0x0F) * 4
    udp = off + ihl
    sport, dport, ulen = struct.unpack_from(">HHH", frame, udp)
    payload = frame[udp + 8:udp + ulen]
    return Datagram(ts_ns, str(ipaddress.IPv4Address(frame[off + 12:off + 16])),
                    str(ipaddress.IPv4Address(frame[off + 16:off + 20])), sport, dport, payload)
