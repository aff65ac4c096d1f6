"""Scapy layers for building and reading captures: MoldUDP64 and SoupBinTCP framing here; every ITCH 5.0 and
OUCH 4.2 message in scapy_messages.py (generated from the tables in itch.py and ouch.py).

    from latlab.wire.scapy_layers import MoldUDP64, bind_moldudp64
    bind_moldudp64(26477)
    for pkt in rdpcap("feed.pcap"): pkt[MoldUDP64].messages[0].message.order_ref
"""

from __future__ import annotations

from scapy.fields import (
    FieldLenField,
    LongField,
    PacketLenField,
    PacketListField,
    StrFixedLenField,
    StrLenField,
)
from scapy.layers.inet import UDP
from scapy.packet import Packet, Raw, bind_layers

from latlab.wire.moldudp64 import END_OF_SESSION, HEARTBEAT
from latlab.wire.scapy_messages import ITCH_LAYERS, OUCH_IN_LAYERS, OUCH_OUT_LAYERS

__all__ = ["ITCH_LAYERS", "OUCH_IN_LAYERS", "OUCH_OUT_LAYERS", "MoldBlock", "MoldUDP64", "SoupBinTCP",
           "bind_moldudp64", "itch_message"]


def itch_message(raw: bytes) -> Packet:
    """The ITCH layer for a message's type byte (Raw for an unknown type)."""
    cls = ITCH_LAYERS.get(chr(raw[0])) if raw else None
    return cls(raw) if cls else Raw(raw)


class MoldBlock(Packet):
    """One message block: u16 length, then the message."""

    name = "MoldUDP64 message block"
    fields_desc = [FieldLenField("length", None, fmt="!H", length_of="message"),
                   PacketLenField("message", None, itch_message, length_from=lambda p: p.length)]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class MoldUDP64(Packet):
    """A downstream packet or re-request: session, sequence, count, then `count` blocks."""

    name = "MoldUDP64"
    fields_desc = [
        StrFixedLenField("session", b" " * 10, 10),
        LongField("sequence", 0),
        FieldLenField("count", None, fmt="!H", count_of="messages"),
        PacketListField("messages", [], MoldBlock,
                        count_from=lambda p: 0 if p.count in (HEARTBEAT, END_OF_SESSION) else p.count),
    ]


def bind_moldudp64(port: int) -> None:
    """Dissect UDP traffic to or from `port` as MoldUDP64."""
    bind_layers(UDP, MoldUDP64, dport=port)
    bind_layers(UDP, MoldUDP64, sport=port)


class SoupBinTCP(Packet):
    """One SoupBinTCP packet: length (of type + payload), type, payload (OUCH inside S and U packets)."""

    name = "SoupBinTCP"
    fields_desc = [FieldLenField("length", None, fmt="!H", length_of="data", adjust=lambda p, x: x + 1),
                   StrFixedLenField("packet_type", b"U", 1),
                   StrLenField("data", b"", length_from=lambda p: p.length - 1)]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def ouch(self) -> Packet:
        """The OUCH message inside a U (client) or S (server) packet."""
        raw = bytes(self.data)
        table = OUCH_IN_LAYERS if self.packet_type == b"U" else OUCH_OUT_LAYERS
        cls = table.get(chr(raw[0])) if raw else None
        return cls(raw) if cls else Raw(raw)
