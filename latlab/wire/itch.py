"""Nasdaq TotalView-ITCH 5.0 (spec rev. Feb 2026): every message type, declared once, decoded and encoded.

Big-endian. Every message starts with the 11-byte header: type, stock locate (u16), tracking number (u16),
timestamp (6 bytes, ns since midnight). Prices are u32 with 4 implied decimals (MWCB levels: u64, 8).
Alpha fields are kept exactly as sent (space padded), so decode → encode gives back the same bytes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from latlab.wire.layout import Layout

SIDE = {"B": "buy", "S": "sell"}
EVENT = {"O": "start of messages", "S": "start of system hours", "Q": "start of market hours",
         "M": "end of market hours", "E": "end of system hours", "C": "end of messages"}
TRADING_STATE = {"H": "halted", "P": "paused", "Q": "quotation only", "T": "trading"}
PRINTABLE = {"Y": "printable", "N": "non-printable"}
CROSS_TYPE = {"O": "opening", "C": "closing", "H": "IPO or halted", "I": "intraday"}
YES_NO = {"Y": "yes", "N": "no"}

_HEADER = (("stock_locate", "u16"), ("tracking", "u16"), ("timestamp", "ts"))

# (type, name, body fields after the header): kinds and enums as latlab.wire.layout declares them; p4 is a
# Price(4), p8 a Price(8). Lengths follow from the layout and are checked against the spec's below.
_LAYOUTS: tuple[tuple[str, str, tuple], ...] = (
    ("S", "SystemEvent", (("event_code", "c", EVENT),)),
    ("R", "StockDirectory", (("stock", "a8"), ("market_category", "c"), ("financial_status", "c"),
                             ("round_lot_size", "u32"), ("round_lots_only", "c", YES_NO),
                             ("issue_classification", "c"), ("issue_subtype", "a2"), ("authenticity", "c"),
                             ("short_sale_threshold", "c"), ("ipo_flag", "c"), ("luld_tier", "c"),
                             ("etp_flag", "c"), ("etp_leverage_factor", "u32"), ("inverse_indicator", "c"))),
    ("H", "StockTradingAction", (("stock", "a8"), ("trading_state", "c", TRADING_STATE), ("reserved", "c"),
                                 ("reason", "a4"))),
    ("Y", "RegSHORestriction", (("stock", "a8"), ("reg_sho_action", "c"))),
    ("L", "MarketParticipantPosition", (("mpid", "a4"), ("stock", "a8"), ("primary_market_maker", "c", YES_NO),
                                        ("market_maker_mode", "c"), ("participant_state", "c"))),
    ("V", "MWCBDeclineLevel", (("level1", "p8"), ("level2", "p8"), ("level3", "p8"))),
    ("W", "MWCBStatus", (("breached_level", "c"),)),
    ("K", "IPOQuotingPeriodUpdate", (("stock", "a8"), ("ipo_release_time", "u32"),
                                     ("ipo_release_qualifier", "c"), ("ipo_price", "p4"))),
    ("J", "LULDAuctionCollar", (("stock", "a8"), ("reference_price", "p4"), ("upper_price", "p4"),
                                ("lower_price", "p4"), ("extension", "u32"))),
    ("h", "OperationalHalt", (("stock", "a8"), ("market_code", "c"), ("halt_action", "c"))),
    ("A", "AddOrder", (("order_ref", "u64"), ("side", "c", SIDE), ("shares", "u32"), ("stock", "a8"),
                       ("price", "p4"))),
    ("F", "AddOrderMPID", (("order_ref", "u64"), ("side", "c", SIDE), ("shares", "u32"), ("stock", "a8"),
                           ("price", "p4"), ("attribution", "a4"))),
    ("E", "OrderExecuted", (("order_ref", "u64"), ("executed_shares", "u32"), ("match_number", "u64"))),
    ("C", "OrderExecutedWithPrice", (("order_ref", "u64"), ("executed_shares", "u32"), ("match_number", "u64"),
                                     ("printable", "c", PRINTABLE), ("execution_price", "p4"))),
    ("X", "OrderCancel", (("order_ref", "u64"), ("cancelled_shares", "u32"))),
    ("D", "OrderDelete", (("order_ref", "u64"),)),
    ("U", "OrderReplace", (("original_ref", "u64"), ("new_ref", "u64"), ("shares", "u32"), ("price", "p4"))),
    ("P", "Trade", (("order_ref", "u64"), ("side", "c", SIDE), ("shares", "u32"), ("stock", "a8"), ("price", "p4"),
                    ("match_number", "u64"))),
    ("Q", "CrossTrade", (("shares", "u64"), ("stock", "a8"), ("cross_price", "p4"), ("match_number", "u64"),
                         ("cross_type", "c", CROSS_TYPE))),
    ("B", "BrokenTrade", (("match_number", "u64"),)),
    ("I", "NOII", (("paired_shares", "u64"), ("imbalance_shares", "u64"), ("imbalance_direction", "c"),
                   ("stock", "a8"), ("far_price", "p4"), ("near_price", "p4"), ("current_reference_price", "p4"),
                   ("cross_type", "c", CROSS_TYPE), ("price_variation_indicator", "c"))),
    ("N", "RetailPriceImprovement", (("stock", "a8"), ("interest_flag", "c"))),
    ("O", "DLCRPriceDiscovery", (("stock", "a8"), ("open_eligibility", "c"), ("min_allowable_price", "p4"),
                                 ("max_allowable_price", "p4"), ("near_execution_price", "p4"),
                                 ("near_execution_time", "u64"), ("lower_price_collar", "p4"),
                                 ("upper_price_collar", "p4"))),
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


MessageSpec = Layout  # an ITCH message type is a Layout with the 11-byte header first


def _build() -> dict[str, Layout]:
    specs = {}
    for mtype, name, body in _LAYOUTS:
        spec = Layout.of(mtype, name, (*_HEADER, *body))
        if spec.length != SPEC_LENGTHS[mtype]:  # the declared layout must agree with the spec's length
            raise AssertionError(f"{mtype}: layout gives {spec.length}, spec says {SPEC_LENGTHS[mtype]}")
        specs[mtype] = spec
    return specs


SPECS: dict[str, Layout] = _build()
SPECS_BY_BYTE: dict[int, Layout] = {ord(t): s for t, s in SPECS.items()}
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
    return spec.decode(buf, offset)


def encode(msg) -> bytes:
    """Encode a message namedtuple (as `decode` returns, or built with `make`) to its bytes."""
    return SPECS[msg.type].encode(msg)


def make(mtype: str, **fields: object):
    """A message of `mtype` from keyword fields; header fields default to 0, alpha fields to spaces."""
    return SPECS[mtype].make(**fields)


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
