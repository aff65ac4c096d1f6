"""OUCH 4.2 order entry: inbound Enter Order and Cancel Order; outbound messages start with an 8-byte timestamp."""

from __future__ import annotations

from latlab.wire.layout import Codec, Layout

SIDE = {"B": "buy", "S": "sell", "T": "sell short", "E": "sell short exempt"}
LIQUIDITY = {"A": "added", "R": "removed"}

INBOUND = Codec("OUCH 4.2 inbound", (
    Layout.of("O", "EnterOrder", (
        ("token", "a14"), ("side", "c", SIDE), ("shares", "u32"), ("stock", "a8"), ("price", "p4"),
        ("time_in_force", "u32"), ("firm", "a4"), ("display", "c"), ("capacity", "c"),
        ("intermarket_sweep", "c"), ("minimum_quantity", "u32"), ("cross_type", "c"), ("customer_type", "c"))),
    Layout.of("X", "CancelOrder", (("token", "a14"), ("shares", "u32"))),
))

OUTBOUND = Codec("OUCH 4.2 outbound", (
    Layout.of("S", "SystemEvent", (("timestamp", "u64"), ("event_code", "c"))),
    Layout.of("A", "Accepted", (
        ("timestamp", "u64"), ("token", "a14"), ("side", "c", SIDE), ("shares", "u32"), ("stock", "a8"),
        ("price", "p4"), ("time_in_force", "u32"), ("firm", "a4"), ("display", "c"), ("order_ref", "u64"),
        ("capacity", "c"), ("intermarket_sweep", "c"), ("minimum_quantity", "u32"), ("cross_type", "c"),
        ("order_state", "c"), ("bbo_weight", "c"))),
    Layout.of("E", "Executed", (("timestamp", "u64"), ("token", "a14"), ("executed_shares", "u32"),
                                ("execution_price", "p4"), ("liquidity_flag", "c", LIQUIDITY),
                                ("match_number", "u64"))),
    Layout.of("C", "Canceled", (("timestamp", "u64"), ("token", "a14"), ("decrement_shares", "u32"),
                                ("reason", "c"))),
    Layout.of("J", "Rejected", (("timestamp", "u64"), ("token", "a14"), ("reason", "c"))),
))

IOC = 0  # time in force 0: immediate or cancel

# Lengths from the spec; the layouts above must agree.
SPEC_LENGTHS = {("in", "O"): 49, ("in", "X"): 19, ("out", "S"): 10, ("out", "A"): 66, ("out", "E"): 40,
                ("out", "C"): 28, ("out", "J"): 24}
for (_side, _t), _n in SPEC_LENGTHS.items():
    if (INBOUND if _side == "in" else OUTBOUND)[_t].length != _n:
        raise AssertionError(f"OUCH {_side} {_t}: layout length differs from the spec's {_n}")
