"""Multicast socket set-up shared by the publisher, subscribers and the re-request server."""

from __future__ import annotations

import socket
import struct

SO_TIMESTAMPING = 37
SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SCM_TIMESTAMPING = SO_TIMESTAMPING
_TIMESPECS = struct.Struct("qqqqqq")
SO_SNDBUFFORCE = 32  # Linux; the socket module does not export these two
SO_RCVBUFFORCE = 33


def sender(iface: str, ttl: int = 1) -> socket.socket:
    """A UDP socket that sends multicast out of the interface holding `iface`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    _big_buffer(sock, socket.SO_SNDBUF)
    return sock


def receiver(group: str, port: int, iface: str, timestamps: bool = True) -> socket.socket:
    """A UDP socket joined to `group` on `iface` (IGMP join), with kernel receive timestamps."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((group, port))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(iface))
    _big_buffer(sock, socket.SO_RCVBUF)
    if timestamps:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE)
    return sock


def _big_buffer(sock: socket.socket, opt: int, size: int = 8 << 20) -> None:
    forced = SO_RCVBUFFORCE if opt == socket.SO_RCVBUF else SO_SNDBUFFORCE
    try:
        sock.setsockopt(socket.SOL_SOCKET, forced, size)  # root: past net.core.*mem_max
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, opt, size)


def kernel_rx_ns(ancdata: list[tuple[int, int, bytes]]) -> int:
    """The software receive timestamp (CLOCK_REALTIME ns) from recvmsg's ancillary data, or 0."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPING and len(data) >= _TIMESPECS.size:
            sec, nsec = _TIMESPECS.unpack_from(data)[:2]
            return sec * 1_000_000_000 + nsec
    return 0
