"""Scapy layers for building and reading captures: MoldUDP64 and ITCH 5.0 (every type, from itch.SPECS).

    from feed_handler.scapy_layers import MoldUDP64, bind_moldudp64
    bind_moldudp64(26477)
    for pkt in rdpcap("feed.pcap"): pkt[MoldUDP64].messages[0].message.order_ref
"""

from __future__ import annotations

from scapy.fields import (
    BitField,
    FieldLenField,
    IntField,
    LongField,
    PacketLenField,
    PacketListField,
    ShortField,
    StrFixedLenField,
    StrLenField,
)
from scapy.layers.inet import UDP
from scapy.packet import Packet, Raw, bind_layers

from feed_handler.itch import SPECS
from udp_multicast.moldudp64 import END_OF_SESSION, HEARTBEAT


def _field(name: str, kind: str):
    if kind == "u16":
        return ShortField(name, 0)
    if kind == "u32":
        return IntField(name, 0)
    if kind == "u64":
        return LongField(name, 0)
    if kind == "ts":
        return BitField(name, 0, 48)
    width = 1 if kind == "c" else int(kind[1:])
    return StrFixedLenField(name, b" " * width, width)


class _ItchMessage(Packet):
    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


ITCH_LAYERS: dict[str, type[Packet]] = {}
for _t, _spec in SPECS.items():
    ITCH_LAYERS[_t] = type(f"ITCH{_spec.name}", (_ItchMessage,), {
        "name": f"ITCH 5.0 {_spec.name}",
        "fields_desc": [StrFixedLenField("message_type", _t.encode(), 1),
                        *(_field(name, kind) for name, kind in _spec.fields)],
    })
globals().update({cls.__name__: cls for cls in ITCH_LAYERS.values()})


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


def _wire_layer(prefix: str, layout) -> type[Packet]:
    fields = [StrFixedLenField("message_type", layout.type.encode(), 1)]
    for name, kind in layout.fields:
        fields.append(_field(name, {"u8": "u16"}.get(kind, kind)))
    return type(f"{prefix}{layout.name}", (_ItchMessage,), {"name": f"{prefix} {layout.name}", "fields_desc": fields})


def _ouch_layers() -> tuple[dict[str, type[Packet]], dict[str, type[Packet]]]:
    from feed_handler import ouch

    inbound = {t: _wire_layer("OUCHIn", lay) for t, lay in ouch.INBOUND.layouts.items()}
    outbound = {t: _wire_layer("OUCHOut", lay) for t, lay in ouch.OUTBOUND.layouts.items()}
    return inbound, outbound


OUCH_IN_LAYERS, OUCH_OUT_LAYERS = _ouch_layers()


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
