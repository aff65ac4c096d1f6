"""Declarative fixed-layout binary messages (big-endian): one declaration per message, encode and decode from it.

A field is `(name, kind)` or `(name, kind, enum)`. Kinds:

    c, aN      1 character, an N-byte alpha field (space padded; kept as sent)
    u8 … u64   unsigned integers
    ts         6-byte timestamp, nanoseconds since midnight (ITCH)
    p4, p8     a price: u32 with 4 implied decimals, u64 with 8 (decoded as the integer sent)

`enum` maps a c/alpha field's values to their meanings (`B` → `buy`): decoding keeps the raw value, the
meaning is for display (`Layout.describe`, the Scapy layers) and for validation in tests. Every protocol of
latlab.wire (ITCH 5.0, OUCH 4.2) is declared with this; the Scapy layers are generated from the same tables.
"""

from __future__ import annotations

import struct
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any

Field = tuple[str, str] | tuple[str, str, dict[str, str]]

# kind → struct code(s); "ts" is packed as u16 + u32
_CODES = {"c": "1s", "u8": "B", "u16": "H", "u32": "I", "u64": "Q", "ts": "HI", "p4": "I", "p8": "Q"}
INT_BITS = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "ts": 48, "p4": 32, "p8": 64}
DECIMALS = {"p4": 4, "p8": 8}


def code(kind: str) -> str:
    """The struct code of a kind."""
    return _CODES.get(kind) or f"{int(kind[1:])}s"


def width(kind: str) -> int:
    """A character or alpha field's width in bytes."""
    return 1 if kind == "c" else int(kind[1:])


def is_text(kind: str) -> bool:
    return kind == "c" or kind.startswith("a")


def price_text(value: int, kind: str) -> str:
    """A price field as dollars with its decimals (p4: 4, p8: 8)."""
    d = DECIMALS[kind]
    return f"{value // 10**d}.{value % 10**d:0{d}d}"


@dataclass(frozen=True)
class Layout:
    """One message: its type byte, name, fields (after the type byte), their enums, and its namedtuple."""

    type: str
    name: str
    fields: tuple[tuple[str, str], ...]
    struct: struct.Struct
    tuple_type: type
    enums: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, mtype: str, name: str, fields: tuple[Field, ...]) -> Layout:
        pairs = tuple((f[0], f[1]) for f in fields)
        enums = {f[0]: f[2] for f in fields if len(f) == 3}
        fmt = ">1s" + "".join(code(k) for _, k in pairs)
        return cls(mtype, name, pairs, struct.Struct(fmt), namedtuple(name, ["type", *(f for f, _ in pairs)]),
                   enums)

    @property
    def length(self) -> int:
        return self.struct.size

    def make(self, **values: Any) -> Any:
        """A message with the given fields; others are 0 or spaces."""
        out = []
        for name, kind in self.fields:
            if name in values:
                out.append(values.pop(name))
            else:
                out.append(" " * width(kind) if is_text(kind) else 0)
        if values:
            raise TypeError(f"{self.name} has no field(s) {', '.join(values)}")
        return self.tuple_type(self.type, *out)

    def encode(self, msg: Any) -> bytes:
        """The message's bytes; a value that does not fit its field raises ValueError naming the field."""
        values: list[Any] = [self.type.encode()]
        for (name, kind), value in zip(self.fields, msg[1:], strict=True):
            if is_text(kind):
                raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
                if len(raw) > width(kind):
                    raise ValueError(f"{self.name}.{name}: {value!r} is longer than {width(kind)}")
                values.append(raw.ljust(width(kind), b" "))
            elif kind == "ts":
                if not 0 <= value < 1 << 48:
                    raise ValueError(f"{self.name}.{name}: timestamp out of range: {value}")
                values += [value >> 32, value & 0xFFFFFFFF]
            else:
                values.append(value)
        return self.struct.pack(*values)

    def decode(self, data: bytes | memoryview, offset: int = 0) -> Any:
        """The message at `offset` (the caller has checked its type and length)."""
        raw = self.struct.unpack_from(data, offset)
        out: list[Any] = [raw[0].decode()]
        i = 1
        for _, kind in self.fields:
            if kind == "ts":
                out.append((raw[i] << 32) | raw[i + 1])
                i += 2
            else:
                value = raw[i]
                out.append(value.decode("latin-1") if isinstance(value, bytes) else value)
                i += 1
        return self.tuple_type(*out)

    def describe(self, msg: Any) -> str:
        """One line: the name, then each field, prices with their decimals and enums with their meaning."""
        parts = []
        for (name, kind), value in zip(self.fields, msg[1:], strict=True):
            if kind in DECIMALS:
                text = price_text(value, kind)
            elif name in self.enums:
                shown = value.rstrip() or repr(value)  # an all-space value shows as such
                text = f"{shown} ({self.enums[name].get(value, 'unknown')})"
            else:
                text = value.rstrip() if isinstance(value, str) else str(value)
            parts.append(f"{name}={text}")
        return f"{self.name} " + " ".join(parts)


class Codec:
    """The messages of one protocol, by type byte."""

    def __init__(self, name: str, layouts: tuple[Layout, ...]) -> None:
        self.name = name
        self.layouts = {layout.type: layout for layout in layouts}

    def __getitem__(self, mtype: str) -> Layout:
        return self.layouts[mtype]

    def make(self, mtype: str, **values: Any) -> Any:
        return self.layouts[mtype].make(**values)

    def encode(self, msg: Any) -> bytes:
        return self.layouts[msg.type].encode(msg)

    def decode(self, data: bytes | memoryview) -> Any:
        """Decode one whole message; a wrong type or length raises ValueError naming the problem."""
        if not data:
            raise ValueError(f"{self.name}: empty message")
        layout = self.layouts.get(chr(data[0]))
        if layout is None:
            raise ValueError(f"{self.name}: unknown message type {chr(data[0])!r}")
        if len(data) != layout.length:
            raise ValueError(f"{self.name}: {layout.name} is {layout.length} bytes, got {len(data)}")
        return layout.decode(data)
