"""Nasdaq TotalView-ITCH 5.0 (spec rev. Feb 2026): every message type, declared once, decoded and encoded.

Big-endian. Every message starts with the 11-byte header: type, stock locate (u16), tracking number (u16),
timestamp (6 bytes, ns since midnight). Prices are u32 with 4 implied decimals (MWCB levels: u64, 8).
Alpha fields are kept exactly as sent (space padded), so decode → encode gives back the same bytes.
"""

from __future__ import annotations

import struct
import time
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass

# field kinds → struct codes; "ts" is the 6-byte timestamp, packed as u16 + u32.
_CODES = {"c": "s", "u16": "H", "u32": "I", "u64": "Q", "a2": "2s", "a4": "4s", "a8": "8s", "a10": "10s",
          "a14": "14s", "a20": "20s"}
_HEADER = (("stock_locate", "u16"), ("tracking", "u16"), ("timestamp", "ts"))

# (type, name, body fields after the header). Lengths follow from the layout and are checked below.
_LAYOUTS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("S", "SystemEvent", (("event_code", "c"),)),
    ("R", "StockDirectory", (("stock", "a8"), ("market_category", "c"), ("financial_status", "c"),
                             ("round_lot_size", "u32"), ("round_lots_only", "c"), ("issue_classification", "c"),
                             ("issue_subtype", "a2"), ("authenticity", "c"), ("short_sale_threshold", "c"),
                             ("ipo_flag", "c"), ("luld_tier", "c"), ("etp_flag", "c"),
                             ("etp_leverage_factor", "u32"), ("inverse_indicator", "c"))),
    ("H", "StockTradingAction", (("stock", "a8"), ("trading_state", "c"), ("reserved", "c"),
                                 ("reason", "a4"))),
    ("Y", "RegSHORestriction", (("stock", "a8"), ("reg_sho_action", "c"))),
    ("L", "MarketParticipantPosition", (("mpid", "a4"), ("stock", "a8"), ("primary_market_maker", "c"),
                                        ("market_maker_mode", "c"), ("participant_state", "c"))),
    ("V", "MWCBDeclineLevel", (("level1", "u64"), ("level2", "u64"), ("level3", "u64"))),
    ("W", "MWCBStatus", (("breached_level", "c"),)),
    ("K", "IPOQuotingPeriodUpdate", (("stock", "a8"), ("ipo_release_time", "u32"),
                                     ("ipo_release_qualifier", "c"), ("ipo_price", "u32"))),
    ("J", "LULDAuctionCollar", (("stock", "a8"), ("reference_price", "u32"), ("upper_price", "u32"),
                                ("lower_price", "u32"), ("extension", "u32"))),
    ("h", "OperationalHalt", (("stock", "a8"), ("market_code", "c"), ("halt_action", "c"))),
    ("A", "AddOrder", (("order_ref", "u64"), ("side", "c"), ("shares", "u32"), ("stock", "a8"),
                       ("price", "u32"))),
    ("F", "AddOrderMPID", (("order_ref", "u64"), ("side", "c"), ("shares", "u32"), ("stock", "a8"),
                           ("price", "u32"), ("attribution", "a4"))),
    ("E", "OrderExecuted", (("order_ref", "u64"), ("executed_shares", "u32"), ("match_number", "u64"))),
    ("C", "OrderExecutedWithPrice", (("order_ref", "u64"), ("executed_shares", "u32"), ("match_number", "u64"),
                                     ("printable", "c"), ("execution_price", "u32"))),
    ("X", "OrderCancel", (("order_ref", "u64"), ("cancelled_shares", "u32"))),
    ("D", "OrderDelete", (("order_ref", "u64"),)),
    ("U", "OrderReplace", (("original_ref", "u64"), ("new_ref", "u64"), ("shares", "u32"), ("price", "u32"))),
    ("P", "Trade", (("order_ref", "u64"), ("side", "c"), ("shares", "u32"), ("stock", "a8"), ("price", "u32"),
                    ("match_number", "u64"))),
    ("Q", "CrossTrade", (("shares", "u64"), ("stock", "a8"), ("cross_price", "u32"), ("match_number", "u64"),
                         ("cross_type", "c"))),
    ("B", "BrokenTrade", (("match_number", "u64"),)),
    ("I", "NOII", (("paired_shares", "u64"), ("imbalance_shares", "u64"), ("imbalance_direction", "c"),
                   ("stock", "a8"), ("far_price", "u32"), ("near_price", "u32"), ("current_reference_price", "u32"),
                   ("cross_type", "c"), ("price_variation_indicator", "c"))),
    ("N", "RetailPriceImprovement", (("stock", "a8"), ("interest_flag", "c"))),
    ("O", "DLCRPriceDiscovery", (("stock", "a8"), ("open_eligibility", "c"), ("min_allowable_price", "u32"),
                                 ("max_allowable_price", "u32"), ("near_execution_price", "u32"),
                                 ("near_execution_time", "u64"), ("lower_price_collar", "u32"),
                                 ("upper_price_collar", "u32"))),
)

# Lengths from the spec (without the 2-byte length prefix of BinaryFILE / MoldUDP64 blocks).
SPEC_LENGTHS = {"S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35, "h": 21,
                "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44, "Q": 40, "B": 19,
                "I": 50, "N": 20, "O": 48}


class ItchError(ValueError):
    """A message that cannot be decoded; `kind` is the error class counted by replays."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True)
class MessageSpec:
    """One message type: its struct, its field names and kinds, and the namedtuple it decodes to."""

    type: str
    name: str
    fields: tuple[tuple[str, str], ...]
    struct: struct.Struct
    tuple_type: type

    @property
    def length(self) -> int:
        return self.struct.size


def _build() -> dict[str, MessageSpec]:
    specs = {}
    for mtype, name, body in _LAYOUTS:
        fields = (*_HEADER, *body)
        fmt = ">s" + "".join("HI" if kind == "ts" else _CODES[kind] for _, kind in fields)
        tuple_type = namedtuple(name, ["type", *(f for f, _ in fields)])
        spec = MessageSpec(mtype, name, fields, struct.Struct(fmt), tuple_type)
        if spec.length != SPEC_LENGTHS[mtype]:  # the declared layout must agree with the spec's length
            raise AssertionError(f"{mtype}: layout gives {spec.length}, spec says {SPEC_LENGTHS[mtype]}")
        specs[mtype] = spec
    return specs


SPECS: dict[str, MessageSpec] = _build()
SPECS_BY_BYTE: dict[int, MessageSpec] = {ord(t): s for t, s in SPECS.items()}
BY_NAME: dict[str, type] = {s.name: s.tuple_type for s in SPECS.values()}


def decode(buf: bytes | memoryview, offset: int = 0, length: int | None = None):
    """Decode one message at `offset` (its length defaults to the type's) into its namedtuple."""
    if length == 0 or offset >= len(buf):
        raise ItchError("empty", f"no message at offset {offset}")
    spec = SPECS_BY_BYTE.get(buf[offset])
    if spec is None:
        raise ItchError("unknown_type", f"type byte 0x{buf[offset]:02x} at offset {offset}")
    if length is not None and length != spec.length:
        raise ItchError("bad_length", f"type {spec.type} is {spec.length} bytes, framed as {length}")
    if offset + spec.length > len(buf):
        raise ItchError("truncated", f"type {spec.type} needs {spec.length} bytes, {len(buf) - offset} left")
    raw = spec.struct.unpack_from(buf, offset)
    values: list[object] = [raw[0].decode()]
    i = 1
    for _, kind in spec.fields:
        if kind == "ts":
            values.append((raw[i] << 32) | raw[i + 1])
            i += 2
        else:
            value = raw[i]
            values.append(value.decode("latin-1") if isinstance(value, bytes) else value)
            i += 1
    return spec.tuple_type(*values)


def encode(msg) -> bytes:
    """Encode a message namedtuple (as `decode` returns, or built with `make`) to its bytes."""
    spec = SPECS[msg.type]
    values: list[object] = [msg.type.encode()]
    for (field, kind), value in zip(spec.fields, msg[1:], strict=True):
        if kind == "ts":
            if not 0 <= value < 1 << 48:
                raise ValueError(f"{field}: timestamp out of range: {value}")
            values += [value >> 32, value & 0xFFFFFFFF]
        elif kind == "c" or kind.startswith("a"):
            width = 1 if kind == "c" else int(kind[1:])
            raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
            if len(raw) > width:
                raise ValueError(f"{field}: {value!r} is longer than {width}")
            values.append(raw.ljust(width, b" "))
        else:
            values.append(value)
    return spec.struct.pack(*values)


def make(mtype: str, **fields: object):
    """A message of `mtype` from keyword fields; header fields default to 0, alpha fields to spaces."""
    spec = SPECS[mtype]
    values = []
    for field, kind in spec.fields:
        if field in fields:
            values.append(fields.pop(field))
        else:
            values.append(" " * (1 if kind == "c" else int(kind[1:])) if kind == "c" or kind.startswith("a")
                          else 0)
    if fields:
        raise TypeError(f"{spec.name} has no field(s) {', '.join(fields)}")
    return spec.tuple_type(mtype, *values)


NS_PER_DAY = 86_400_000_000_000


def timestamp_now() -> int:
    """The header timestamp for a message sent now: nanoseconds since midnight (UTC here)."""
    return time.time_ns() % NS_PER_DAY


def frame(payload: bytes) -> bytes:
    """The 2-byte big-endian length prefix of BinaryFILE and MoldUDP64 message blocks."""
    return len(payload).to_bytes(2, "big") + payload


def iter_frames(data: bytes | memoryview, start: int = 0) -> Iterator[tuple[int, int, int]]:
    """(offset of the length prefix, offset of the message, length) for each framed message.

    A final frame whose length runs past the end is yielded with the length it claims; the caller
    sees `offset + length > len(data)` and counts it as truncated.
    """
    pos, end = start, len(data)
    while pos < end:
        if pos + 2 > end:
            yield pos, pos + 2, end - pos - 2
            return
        length = (data[pos] << 8) | data[pos + 1]
        yield pos, pos + 2, length
        pos += 2 + length


def price_to_str(price: int) -> str:
    """A Price(4) as dollars with 4 decimals."""
    return f"{price // 10000}.{price % 10000:04d}"


def symbol(stock: str) -> str:
    """A stock field without its space padding."""
    return stock.rstrip()
