"""Declarative fixed-layout binary messages (big-endian): one table per protocol, encode and decode from it."""

from __future__ import annotations

import struct
from collections import namedtuple
from dataclasses import dataclass
from typing import Any

# kind → struct code: c = 1 char, aN = N-byte alpha (space padded), uN = unsigned integer.
_CODES = {"c": "1s", "u8": "B", "u16": "H", "u32": "I", "u64": "Q"}


def _code(kind: str) -> str:
    return _CODES.get(kind) or f"{int(kind[1:])}s"


def _width(kind: str) -> int:
    return 1 if kind == "c" else int(kind[1:])


@dataclass(frozen=True)
class Layout:
    """One message: its type byte, name, fields (after the type byte) and the namedtuple it decodes to."""

    type: str
    name: str
    fields: tuple[tuple[str, str], ...]
    struct: struct.Struct
    tuple_type: type

    @classmethod
    def of(cls, mtype: str, name: str, fields: tuple[tuple[str, str], ...]) -> Layout:
        fmt = ">1s" + "".join(_code(k) for _, k in fields)
        return cls(mtype, name, fields, struct.Struct(fmt), namedtuple(name, ["type", *(f for f, _ in fields)]))

    @property
    def length(self) -> int:
        return self.struct.size

    def make(self, **values: Any) -> Any:
        """A message with the given fields; others are 0 or spaces."""
        out = []
        for field, kind in self.fields:
            if field in values:
                out.append(values.pop(field))
            else:
                out.append(0 if kind in _CODES and kind != "c" else " " * _width(kind))
        if values:
            raise TypeError(f"{self.name} has no field(s) {', '.join(values)}")
        return self.tuple_type(self.type, *out)

    def encode(self, msg: Any) -> bytes:
        values: list[Any] = [self.type.encode()]
        for (field, kind), value in zip(self.fields, msg[1:], strict=True):
            if kind == "c" or kind.startswith("a"):
                raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
                if len(raw) > _width(kind):
                    raise ValueError(f"{self.name}.{field}: {value!r} is longer than {_width(kind)}")
                values.append(raw.ljust(_width(kind), b" "))
            else:
                values.append(value)
        return self.struct.pack(*values)

    def decode(self, data: bytes | memoryview, offset: int = 0) -> Any:
        raw = self.struct.unpack_from(data, offset)
        return self.tuple_type(raw[0].decode(), *(v.decode("latin-1") if isinstance(v, bytes) else v
                                                  for v in raw[1:]))


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
