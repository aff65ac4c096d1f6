"""What the generated Scapy layers (scapy_messages.py) build on: a price field shown with its decimals, and the
base class of a fixed-length message."""

from __future__ import annotations

from typing import Any

from scapy.fields import Field
from scapy.packet import Packet

from latlab.wire.layout import price_text


class PriceField(Field):
    """A big-endian unsigned price with implied decimals (ITCH/OUCH Price(4), MWCB Price(8)): the integer on the
    wire, shown as dollars."""

    __slots__ = ["decimals"]

    def __init__(self, name: str, default: int, fmt: str, decimals: int) -> None:
        super().__init__(name, default, "!" + fmt)
        self.decimals = decimals

    def i2repr(self, pkt: Packet | None, x: Any) -> str:
        return "None" if x is None else price_text(int(x), f"p{self.decimals}")


class Message(Packet):
    """One fixed-length message: nothing after it belongs to it; summarised by its body fields."""

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def mysummary(self) -> str:
        header = {"message_type", "stock_locate", "tracking", "timestamp"}
        return f"{self.name} " + " ".join(f"{f.name}={f.i2repr(self, getattr(self, f.name))}"
                                          for f in self.fields_desc if f.name not in header)
