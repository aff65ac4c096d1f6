"""FIX 4.4, the second order protocol: Logon, Heartbeat, Logout, NewOrderSingle, ExecutionReport.

Encoding uses simplefix (BodyLength and CheckSum computed there); `FixReader` frames a TCP stream
itself so that it can refuse what simplefix would accept: a wrong BeginString, a BodyLength that
does not match, a bad CheckSum, an oversized message.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import simplefix

BEGIN = b"8=FIX.4.4\x01"
SOH = b"\x01"
LOGON, HEARTBEAT, LOGOUT, NEW_ORDER_SINGLE, EXECUTION_REPORT, REJECT = "A", "0", "5", "D", "8", "3"
SIDE_BUY, SIDE_SELL = "1", "2"
ORD_TYPE_LIMIT = "2"
TIF_IOC = "3"
EXEC_NEW, EXEC_TRADE, EXEC_CANCELED, EXEC_REJECTED = "0", "F", "4", "8"
_HEAD = re.compile(rb"8=FIX\.4\.4\x019=(\d{1,6})\x01")


def utc_timestamp(ns: int | None = None) -> str:
    """FIX UTCTimestamp with milliseconds."""
    ns = time.time_ns() if ns is None else ns
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns // 1_000_000 % 1000:03d}"


def encode(msg_type: str, sender: str, target: str, seq: int, fields: list[tuple[int, str | int]],
           sending_time: str | None = None, poss_dup_of: str | None = None) -> bytes:
    """A whole message: header (35, 49, 56, 34, 52; with `poss_dup_of`, a resend: PossDupFlag 43=Y and
    OrigSendingTime 122), then `fields` in order, then the trailer."""
    m = simplefix.FixMessage()
    m.append_pair(8, "FIX.4.4", header=True)
    m.append_pair(35, msg_type, header=True)
    m.append_pair(49, sender, header=True)
    m.append_pair(56, target, header=True)
    m.append_pair(34, seq, header=True)
    if poss_dup_of is not None:
        m.append_pair(43, "Y", header=True)
    m.append_pair(52, sending_time or utc_timestamp(), header=True)
    if poss_dup_of is not None:
        m.append_pair(122, poss_dup_of, header=True)
    for tag, value in fields:
        m.append_pair(tag, value)
    return m.encode()


def price_text(price: int) -> str:
    """ITCH/OUCH prices have 4 implied decimals."""
    return f"{price // 10_000}.{price % 10_000:04d}"


REJECT_INCORRECT_DATA_FORMAT = 6  # SessionRejectReason(373)
_INTEGER = re.compile(r"-?[0-9]{1,18}")


class FieldError(ValueError):
    """A client's field that is missing, not a number, or out of range; `tag` names it."""

    def __init__(self, tag: int, text: str) -> None:
        super().__init__(f"tag {tag}: {text}")
        self.tag = tag


def int_field(msg: FixMessage, tag: int, lo: int, hi: int, default: int | None = None) -> int:
    """An integer field within lo..hi (FIX int: optional sign, digits only; no nan, inf or 1e3)."""
    text = msg.get(tag)
    if not text:
        if default is None:
            raise FieldError(tag, "missing")
        return default
    if not _INTEGER.fullmatch(text):
        raise FieldError(tag, f"{text[:20]!r} is not an integer")
    value = int(text)
    if not lo <= value <= hi:
        raise FieldError(tag, f"{value} is outside {lo}..{hi}")
    return value


def price_field(msg: FixMessage, tag: int) -> int:
    """A price field in units of 1/10,000 (0 when absent: the order's checks refuse it)."""
    text = msg.get(tag)
    if not text:
        return 0
    try:
        price = parse_price(text)
    except ValueError:
        raise FieldError(tag, f"{text[:20]!r} is not a price (digits, at most 4 decimals)") from None
    if price >= 1 << 32:
        raise FieldError(tag, f"{text[:20]!r} is above the largest price ({price_text((1 << 32) - 1)})")
    return price


def parse_price(text: str) -> int:
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > 4:
        raise ValueError(f"price {text!r}")
    return int(whole) * 10_000 + int(frac.ljust(4, "0") or 0)


@dataclass
class FixMessage:
    """A received message: its tags as text (first occurrence wins) and the raw bytes."""

    fields: dict[int, str]
    raw: bytes

    @property
    def type(self) -> str:
        return self.fields.get(35, "")

    def get(self, tag: int, default: str = "") -> str:
        return self.fields.get(tag, default)


class FixReader:
    """Splits a TCP stream into checked FIX 4.4 messages; anything malformed raises ValueError."""

    def __init__(self, max_length: int = 4096) -> None:
        self.buf = bytearray()
        self.max_length = max_length

    def feed(self, data: bytes) -> list[FixMessage]:
        self.buf += data
        out = []
        while self.buf:
            start = bytes(self.buf[:len(BEGIN)])
            if not BEGIN.startswith(start):
                raise ValueError(f"FIX: stream does not start with 8=FIX.4.4: {bytes(self.buf[:16])!r}")
            head = _HEAD.match(self.buf)
            if head is None:
                if len(self.buf) > 32:
                    raise ValueError("FIX: no BodyLength after BeginString")
                break
            body_len = int(head.group(1))
            total = head.end() + body_len + 7  # 10=NNN<SOH>
            if total > self.max_length:
                raise ValueError(f"FIX: message of {total} bytes is over {self.max_length}")
            if len(self.buf) < total:
                break
            raw = bytes(self.buf[:total])
            del self.buf[:total]
            trailer = raw[-7:]
            if not (trailer.startswith(b"10=") and trailer.endswith(SOH) and trailer[3:6].isdigit()):
                raise ValueError("FIX: BodyLength does not end at the CheckSum field")
            if sum(raw[:-7]) % 256 != int(trailer[3:6]):
                raise ValueError(f"FIX: CheckSum {trailer[3:6].decode()} is wrong (want {sum(raw[:-7]) % 256:03d})")
            out.append(FixMessage(_fields(raw), raw))
        return out


def _fields(raw: bytes) -> dict[int, str]:
    parser = simplefix.FixParser()
    parser.append_buffer(raw)
    msg = parser.get_message()
    fields: dict[int, str] = {}
    for tag, value in msg.pairs if msg else []:
        fields.setdefault(int(tag), value.decode("latin-1"))
    return fields


def new_order_single(sender: str, target: str, seq: int, cl_ord_id: str, symbol: str, side: str, qty: int,
                     price: int, ns: int | None = None) -> bytes:
    """A limit IOC order; SendingTime and TransactTime are `ns` (CLOCK_REALTIME ns), or now."""
    stamp = utc_timestamp(ns)
    return encode(NEW_ORDER_SINGLE, sender, target, seq, [
        (11, cl_ord_id), (55, symbol), (54, side), (60, stamp), (38, qty), (40, ORD_TYPE_LIMIT),
        (44, price_text(price)), (59, TIF_IOC)], sending_time=stamp)


@dataclass
class OrderState:
    """An order's running totals, as every ExecutionReport states them: CumQty is the sum of the fills,
    AvgPx their volume-weighted price, LeavesQty what is still open (0 once the order is done)."""

    qty: int
    cum_qty: int = 0
    notional: int = 0  # sum of shares × price (4 implied decimals)
    done: bool = False

    def fill(self, shares: int, price: int) -> None:
        self.cum_qty += shares
        self.notional += shares * price
        self.done = self.done or self.cum_qty >= self.qty

    @property
    def leaves_qty(self) -> int:
        return 0 if self.done else self.qty - self.cum_qty

    @property
    def avg_px(self) -> str:
        """The volume-weighted price of the fills, exact to 8 decimals (0 before any)."""
        if not self.cum_qty:
            return "0"
        avg = Decimal(self.notional) / Decimal(self.cum_qty) / 10_000
        return format(avg.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN).normalize(), "f")

    def status(self, exec_type: str) -> str:
        """OrdStatus(39) after this report."""
        if exec_type == EXEC_REJECTED:
            return "8"
        if exec_type == EXEC_CANCELED:
            return "4"
        if self.cum_qty >= self.qty:
            return "2"
        return "1" if self.cum_qty else "0"


def execution_report_fields(*, order_id: str, cl_ord_id: str, exec_id: str, exec_type: str, symbol: str, side: str,
                            qty: int, state: OrderState, last_qty: int = 0, last_px: int = 0,
                            text: str = "", commission: int = 0) -> list[tuple[int, str | int]]:
    """The body of an ExecutionReport(8) whose CumQty/AvgPx/LeavesQty/OrdStatus come from the order's state."""
    fields: list[tuple[int, str | int]] = [
        (37, order_id), (11, cl_ord_id), (17, exec_id), (150, exec_type), (39, state.status(exec_type)),
        (55, symbol), (54, side), (38, qty), (32, last_qty), (31, price_text(last_px)),
        (151, state.leaves_qty), (14, state.cum_qty), (6, state.avg_px)]
    if commission:  # the venue's fee for this fill: Commission(12) in dollars, CommType(13) 3 = absolute
        fields += [(12, price_text(commission)), (13, "3")]
    if text:
        fields.append((58, text))
    return fields
