"""Pre-trade risk (each check, the kill switch) and the trader path: the compiled one against the reference."""

from __future__ import annotations

import calendar
import time

import numpy as np
import pytest

from latlab.wire import itch, moldudp64
from trader.risk import RiskGate, RiskLimits
from trader.trader_core import TraderCore, TraderSpec, compiled, stage_rows, token_for

LIMITS = RiskLimits(max_order_shares=500, max_notional=60_000.0, price_band_bps=100, max_orders_per_second=3)
LAST = 1_000_000  # $100.00


@pytest.fixture(params=["python", "c"])
def gate(request):
    """The same checks through RiskGate and through the compiled trader's gate."""
    if request.param == "python":
        g = RiskGate(LIMITS, LAST)
        return g.check, g.kill
    t = compiled(TraderSpec(locate=1, stock="X", limit=LAST, last_trade=LAST, risk=LIMITS), stage_rows(4))
    return (lambda tok, sh, px, now: t.check_order(tok, sh, px, now)), t.kill


def tok(i: int) -> bytes:
    return token_for("RK", i)


def test_each_check_rejects_with_its_reason(gate):
    check, kill = gate
    assert check(tok(1), 100, LAST, 0) is None
    assert check(tok(1), 100, LAST, 1) == "duplicate_token"
    assert check(tok(2), 501, LAST, 2) == "max_quantity"                 # fat finger
    assert check(tok(3), 500, 1_300_000, 3) == "max_notional"            # $60,000 < 500 × $130
    assert check(tok(4), 100, 1_010_100, 4) == "price_band"              # 1.01 % away from the last trade
    assert check(tok(5), 100, 1_010_000, 5) is None                      # exactly 1 %: inside the band
    assert check(tok(6), 100, LAST, 6) is None
    assert check(tok(7), 100, LAST, 7) == "throttle"                     # a 4th order within a second
    assert check(tok(8), 100, LAST, 1_000_000_001) is None               # a second after the first: room again
    kill("operator")
    assert check(tok(9), 1, LAST, 2_000_000_000) == "kill_switch"        # nothing passes any more


def test_compiled_gate_agrees_on_random_orders():
    rng = np.random.default_rng(7)
    ref = RiskGate(LIMITS, LAST)
    t = compiled(TraderSpec(locate=1, stock="X", limit=LAST, last_trade=LAST, risk=LIMITS), stage_rows(4))
    now = 0
    for i in range(3000):
        now += int(rng.integers(0, 600_000_000))
        token = tok(int(rng.integers(0, 400)))
        shares, price = int(rng.integers(1, 700)), LAST + int(rng.integers(-150, 150)) * 100
        assert t.check_order(token, shares, price, now) == ref.check(token, shares, price, now), i
    stats = t.stats()
    assert stats["rejects"] == dict(ref.rejects) and stats["passed"] == ref.passed
    assert set(ref.rejects) >= {"duplicate_token", "max_quantity", "price_band", "throttle"}


SPEC = TraderSpec(locate=9, stock="LLTRIG", limit=1_000_000, clip=100, prefix="AA", last_trade=1_000_000,
                  risk=RiskLimits(max_order_shares=1000, max_notional=1e9, price_band_bps=500,
                                  max_orders_per_second=10_000))


def add(ref: int, side: str, price: int, shares: int, locate: int = 9) -> bytes:
    return itch.encode(itch.make("A", stock_locate=locate, order_ref=ref, side=side, shares=shares,
                                 stock="LLTRIG" if locate == 9 else "OTHER", price=price))


def feed() -> list[bytes]:
    """A resting book, triggers (one below the limit, one above), other instruments, bad packets, a gap."""
    seq = 1
    packets = []

    def send(*msgs: bytes) -> None:
        nonlocal seq
        packets.append(moldudp64.encode_packet("S", seq, list(msgs)))
        seq += len(msgs)

    send(add(1, "B", 999_000, 500), add(2, "S", 1_001_000, 500), add(3, "B", 500_000, 10, locate=4))
    send(add(4, "B", 400_000, 10, locate=4), add(5, "S", 999_900, 300))            # trigger: ask below limit
    send(add(6, "S", 1_000_500, 100))                                               # above the limit: nothing
    send(itch.encode(itch.make("E", stock_locate=9, order_ref=5, executed_shares=300, match_number=1)))
    send(add(7, "S", 1_000_000, 40))                                                # at the limit, 40 shares
    packets.append(b"\x01\x02")                                                     # malformed
    packets.append(moldudp64.encode_packet("S", 2, [add(99, "S", 1, 1)]))          # duplicate (old sequence)
    send(add(8, "S", 1_200_000, 50), add(9, "S", 900_000, 100))                     # trigger outside the band
    send(itch.encode(itch.make("D", stock_locate=9, order_ref=9)), add(10, "S", 990_000, 1000))  # clipped to 100
    seq += 5                                                                        # a gap: fail safe
    send(add(11, "S", 980_000, 100))
    packets.append(moldudp64.encode_end_of_session("S", seq))
    return packets


def test_compiled_trader_agrees_with_the_reference():
    c_rows, py_rows = stage_rows(16), stage_rows(16)
    c, py = compiled(SPEC, c_rows), TraderCore(SPEC, py_rows)
    c_frames = [c.on_packet(p, 123) for p in feed()]
    py_frames = [py.handle(p, 123) for p in feed()]
    assert c_frames == py_frames
    orders = [f for f in c_frames if f]
    assert len(orders) == 3
    # OUCH Enter Order inside a SoupBinTCP U frame: token, shares, price where the spec puts them
    tokens = [f[4:18] for f in orders]
    assert tokens == [token_for("AA", 5), token_for("AA", 8), token_for("AA", 12)]
    assert [int.from_bytes(f[19:23], "big") for f in orders] == [100, 40, 100]
    assert [int.from_bytes(f[31:35], "big") for f in orders] == [999_900, 1_000_000, 990_000]
    cs, ps = c.stats(), py.stats()
    for key in ("packets", "messages", "malformed", "gaps", "duplicates", "triggers", "orders", "passed", "rejects",
                "killed", "ended", "rows"):
        assert cs[key] == ps[key], key
    assert cs["rejects"] == {"price_band": 1, "kill_switch": 1} and cs["gaps"] == 1
    assert "feed gap" in cs["killed"] and cs["ended"] == 1
    rows = c_rows[:cs["rows"]]
    assert (rows[:, 0] == 123).all() and (np.diff(rows[:, 1:], axis=1) >= 0).all()


def test_store_rejection_counts_and_is_not_sent():
    calls = []

    def store(token: bytes, shares: int, price: int) -> str | None:
        calls.append(token)
        return "position_limit" if len(calls) > 1 else None

    for core in (compiled(SPEC, stage_rows(4), store), TraderCore(SPEC, stage_rows(4), store)):
        calls.clear()
        handle = core.on_packet if hasattr(core, "check_order") else core.handle
        frames = [handle(p, 0) for p in feed()]
        assert sum(1 for f in frames if f) == 1 and core.stats()["rejects"].get("store") == 2 and len(calls) == 3


def test_a_store_that_fails_fails_the_packet_with_its_own_error():
    class StoreDown(Exception):
        pass

    def store(token: bytes, shares: int, price: int) -> str | None:
        raise StoreDown("sqlite is locked")

    for core in (compiled(SPEC, stage_rows(4), store), TraderCore(SPEC, stage_rows(4), store)):
        handle = core.on_packet if hasattr(core, "check_order") else core.handle
        with pytest.raises(StoreDown, match="sqlite is locked"):
            for p in feed():
                handle(p, 0)


def test_cache_warming_changes_nothing_and_tsc_stages_are_ordered():
    """The busy-poll loop's warm pass between packets leaves orders, counters and the book as they were; the TSC
    stage clock gives ordered stamps on the CLOCK_REALTIME scale."""
    from latlab.manifest import invariant_tsc

    plain_rows, warm_rows = stage_rows(16), stage_rows(16)
    plain, warmed = compiled(SPEC, plain_rows), compiled(SPEC, warm_rows, tsc=invariant_tsc())
    plain_frames, warm_frames = [], []
    for p in feed():
        for _ in range(50):
            warmed.warm()
        plain_frames.append(plain.on_packet(p, 123))
        warm_frames.append(warmed.on_packet(p, 123))
    assert warm_frames == plain_frames and sum(1 for f in warm_frames if f) == 3
    ps, ws = plain.stats(), warmed.stats()
    for key in ("packets", "messages", "malformed", "gaps", "duplicates", "triggers", "orders", "passed", "rejects",
                "killed", "ended", "rows", "last_trade"):
        assert ws[key] == ps[key], key
    rows = warm_rows[:ws["rows"]]
    assert (np.diff(rows[:, 1:7], axis=1) >= 0).all()
    assert (rows[:, 6] - rows[:, 1] < 50_000_000).all()  # stamps on the ns scale of CLOCK_REALTIME, not ticks
    assert ws["stage_clock"] == ("tsc" if invariant_tsc() else "clock_gettime")
    assert ws["warm_orders"] == 50 * len(feed())        # each warm pass took a made-up trigger to an order


def test_paired_floor_is_checked_when_attached():
    t = compiled(SPEC, stage_rows(4))
    with pytest.raises(ValueError, match="seq_off"):
        t.attach_floor(udp_fd=0, tcp_fd=1, frame=bytearray(20), rows=stage_rows(4), seq_off=10)
    with pytest.raises(ValueError, match="rows"):
        t.attach_floor(udp_fd=0, tcp_fd=1, frame=bytearray(64), rows=np.zeros((4, 3), np.int64), seq_off=10)
    t.attach_floor(udp_fd=0, tcp_fd=1, frame=bytearray(64), rows=stage_rows(4), seq_off=10)
    with pytest.raises(ValueError, match="already"):
        t.attach_floor(udp_fd=0, tcp_fd=1, frame=bytearray(64), rows=stage_rows(4), seq_off=10)
    assert t.stats()["floor_rows"] == 0


def test_compiled_fix_orders_match_the_reference_bytes():
    """With FIX, the compiled trader's NewOrderSingle is the reference encoder's, byte for byte, once its own
    SendingTime/TransactTime is given to the reference; each passes the exchange's framing checks."""
    from latlab.wire import fix44

    c = compiled(SPEC, stage_rows(16), fix=("TRADER", "LATLABX", "LLTRIG", 2))
    frames = [f for f in (c.on_packet(p, 123) for p in feed()) if f]
    assert len(frames) == 3 and c.stats()["fix_seq"] == 5
    messages = fix44.FixReader().feed(b"".join(frames))
    expected = [(token_for("AA", 5), 100, 999_900), (token_for("AA", 8), 40, 1_000_000),
                (token_for("AA", 12), 100, 990_000)]
    for seq, (msg, (token, shares, price)) in enumerate(zip(messages, expected, strict=True), start=2):
        stamp = msg.get(52)
        assert msg.get(60) == stamp and len(stamp) == 21
        ns = calendar.timegm(time.strptime(stamp[:17], "%Y%m%d-%H:%M:%S")) * 10**9 + int(stamp[18:]) * 10**6
        assert fix44.utc_timestamp(ns) == stamp
        ref = fix44.new_order_single("TRADER", "LATLABX", seq, token.decode(), "LLTRIG", fix44.SIDE_BUY, shares,
                                     price, ns=ns)
        assert msg.raw == ref


def test_fix_identity_is_checked():
    for bad in (("", "X", "Y", 1), ("TRADER", "A=B", "Y", 1), ("T" * 16, "X", "Y", 1)):
        with pytest.raises(ValueError, match="printable"):
            compiled(SPEC, stage_rows(4), fix=bad)


def test_a_zero_price_ask_is_no_ask_for_either_trader():
    """Found by `make bench-fuzz`: the compiled book says 0 for 'no ask', the reference took a price-0 ask as real
    and sent it to the risk gate, so the two counted different rejects."""
    c, py = compiled(SPEC, stage_rows(4)), TraderCore(SPEC, stage_rows(4))
    packet = moldudp64.encode_packet("S", 1, [add(1, "S", 0, 100)])
    assert c.on_packet(packet, 1) == py.handle(packet, 1) == b""
    cs, ps = c.stats(), py.stats()
    assert cs["triggers"] == ps["triggers"] == 1 and cs["rejects"] == ps["rejects"] == {}
