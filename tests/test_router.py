"""The smart order router: splits on hand-worked consolidated books (price, then quantity, then fee, then response
time), the compiled split against the reference on random books, partial fills re-routed, duplicate-safe child
tokens under retry, a venue lost mid-order."""

from __future__ import annotations

import numpy as np
import pytest

from latlab.wire import itch
from trader.router import Router, VenueSpec, VenueView, split
from venue.matching import MatchingBook
from venue.order_entry import Venue

LOCATE = 7
ENGINES = ["c", "python"]


def framed(*msgs: bytes) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in msgs)


def add(ref: int, side: str, price: int, shares: int, locate: int = LOCATE) -> bytes:
    return itch.encode(itch.make("A", stock_locate=locate, order_ref=ref, side=side, shares=shares, stock="LLTRIG",
                                 price=price))


def router(engine: str, books: dict[int, list[tuple[str, int, int]]], fees: tuple[int, ...] = (0, 0, 0),
           latency: tuple[int, ...] = (0, 0, 0)) -> Router:
    """Three venues A, B, C; `books` gives each venue's resting orders (side, price, shares)."""
    r = Router([VenueSpec(name, LOCATE, taker_fee=fee) for name, fee in zip("ABC", fees, strict=True)],
               engine=engine, latency_ns=list(latency))
    refs = iter(range(1, 10_000))
    for venue, orders in books.items():
        r.on_market_data(venue, framed(*(add(next(refs), s, p, q) for s, p, q in orders)))
    return r


def children(r: Router, side: str, shares: int, limit: int) -> list[tuple[str, int, int]]:
    return [(r.venues[c.venue].name, c.shares, c.price) for c in r.submit(side, shares, limit, 1_000)]


A, B, C = 0, 1, 2


@pytest.mark.parametrize("engine", ENGINES)
def test_price_first_then_the_rest_at_the_next_price(engine):
    r = router(engine, {A: [("S", 1_000_000, 100)], B: [("S", 999_900, 50)]})
    assert children(r, "B", 120, 1_000_000) == [("B", 50, 999_900), ("A", 70, 1_000_000)]


@pytest.mark.parametrize("engine", ENGINES)
def test_at_one_price_more_shares_then_lower_fee_then_faster_venue(engine):
    r = router(engine, {A: [("S", 1_000_000, 100)], B: [("S", 1_000_000, 300)]})
    assert children(r, "B", 200, 1_000_000) == [("B", 200, 1_000_000)]                      # quantity
    r = router(engine, {A: [("S", 1_000_000, 100)], B: [("S", 1_000_000, 100)]}, fees=(30, 10, 0))
    assert children(r, "B", 150, 1_000_000) == [("B", 100, 1_000_000), ("A", 50, 1_000_000)]  # fee
    r = router(engine, {A: [("S", 1_000_000, 100)], B: [("S", 1_000_000, 100)]}, latency=(50_000, 20_000, 0))
    assert children(r, "B", 100, 1_000_000) == [("B", 100, 1_000_000)]                      # response time


@pytest.mark.parametrize("engine", ENGINES)
def test_the_limit_bounds_the_split_a_sell_takes_bids_and_a_down_venue_gets_nothing(engine):
    r = router(engine, {A: [("S", 1_000_100, 500), ("B", 999_000, 80)], B: [("S", 1_000_000, 30),
                                                                         ("B", 999_500, 40)]})
    assert children(r, "B", 100, 1_000_000) == [("B", 30, 1_000_000)]   # A's ask is past the limit: 30 placed
    assert children(r, "S", 100, 999_000) == [("B", 40, 999_500), ("A", 60, 999_000)]
    r.up[B] = False
    assert children(r, "S", 100, 999_000) == [("A", 80, 999_000)]


def test_the_compiled_split_agrees_with_the_reference_on_random_books():
    rng = np.random.default_rng(7)
    for case in range(300):
        nvenues = int(rng.integers(1, 5))
        fees = tuple(int(f) for f in rng.choice([0, 10, 30], nvenues))
        lat = tuple(int(x) for x in rng.choice([0, 20_000, 50_000], nvenues))
        specs = [VenueSpec(f"V{i}", LOCATE, taker_fee=fees[i]) for i in range(nvenues)]
        c, py = (Router(specs, engine=e, latency_ns=list(lat)) for e in ENGINES)
        for v in range(nvenues):
            orders = [add(case * 1000 + v * 100 + k, str(rng.choice(["B", "S"])),
                          int(rng.integers(9990, 10010)) * 100, int(rng.integers(1, 4)) * 100)
                      for k in range(int(rng.integers(0, 25)))]
            for r in (c, py):
                r.on_market_data(v, framed(*orders))
            if rng.random() < 0.2:
                c.up[v] = py.up[v] = False
        side = str(rng.choice(["B", "S"]))
        shares, limit = int(rng.integers(1, 3000)), int(rng.integers(9985, 10015)) * 100
        assert c._split(side, shares, limit) == py._split(side, shares, limit), case  # type: ignore[arg-type]


def test_the_reference_split_refuses_a_bad_side():
    with pytest.raises(ValueError, match="side"):
        split([VenueView([(1, 1)], 0, 0)], "X", 1, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_partial_fill_is_rerouted_and_the_outcome_counts_fees_against_the_best(engine):
    r = router(engine, {A: [("S", 1_000_000, 100)], B: [("S", 999_900, 100)]}, fees=(30, 10, 0))
    first = r.submit("B", 150, 1_000_000, 1_000)
    assert [(r.venues[c.venue].name, c.shares) for c in first] == [("B", 100), ("A", 50)]
    on_b, on_a = first
    r.on_ack(on_b.token, 21_000)
    assert r.latency_ns[B] == 20_000
    r.on_fill(on_a.token, 50, 1_000_000, 30_000)
    assert r.on_done(on_a.token, 30_000) == []            # B still open: nothing is re-routed yet
    r.on_fill(on_b.token, 60, 999_900, 40_000)            # someone else took 40 of B's 100 first
    r.on_market_data(B, framed(itch.encode(itch.make("D", stock_locate=LOCATE, order_ref=2))))
    again = r.on_done(on_b.token, 40_000)
    assert [(r.venues[c.venue].name, c.shares, c.price) for c in again] == [("A", 40, 1_000_000)]
    assert again[0].token == f"SR{1:06d}{3:06d}"           # the parent's third child
    r.on_fill(again[0].token, 40, 1_000_000, 55_000)
    assert r.on_done(again[0].token, 55_000) == []
    out = r.outcome(1)
    assert out["filled"] == 150 and out["fill_rate"] == 1.0 and out["done"] and out["reroutes"] == 1
    assert out["completion_ns"] == 54_000 and out["best_at_decision"] == 999_900
    notional = 50 * 1_000_000 + 60 * 999_900 + 40 * 1_000_000
    fees = 90 * 30 + 60 * 10
    assert out["effective_price"] == pytest.approx((notional + fees) / 150)
    assert out["slippage"] == pytest.approx((notional + fees) / 150 - 999_900)


def test_a_retry_keeps_the_token_so_the_venue_takes_the_child_once():
    r = router("c", {A: [("S", 1_000_000, 100)]})
    [child] = r.submit("B", 100, 1_000_000, 1_000)
    assert r.retry(child.token) is child and r.counts["retries"] == 1
    book = MatchingBook()
    book.apply(itch.encode(itch.make("R", stock_locate=LOCATE, stock="LLTRIG")))
    book.apply(add(1, "S", 1_000_000, 500))
    venue = Venue(book, lambda msgs: None)
    sent = [venue.enter("ROUTER", c.token, c.side, c.shares, "LLTRIG", c.price) for c in (child, r.retry(child.token))]
    assert sent[0] is not None and sum(f.shares for f in sent[0].fills) == 100
    assert sent[1] is None and venue.counts["duplicate_tokens"] == 1   # the retry did not make a second order


def test_reports_for_unknown_children_and_overfills_are_counted_not_applied():
    r = router("python", {A: [("S", 1_000_000, 100)]})
    [child] = r.submit("B", 100, 1_000_000, 1_000)
    r.on_fill("SR999999000001", 10, 1_000_000, 2_000)
    r.on_fill(child.token, 200, 1_000_000, 2_000)
    assert child.filled == 0 and r.counts["unknown_token_reports"] == 2 and "unknown child token" in r.log[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_venue_lost_mid_order_keeps_its_share_unknown_and_routes_the_rest_elsewhere(engine):
    r = router(engine, {A: [("S", 999_800, 100)], B: [("S", 999_900, 100)], C: [("S", 1_000_000, 300)]})
    first = r.submit("B", 300, 1_000_000, 1_000)
    assert [(r.venues[c.venue].name, c.shares) for c in first] == [("A", 100), ("B", 100), ("C", 100)]
    on_a, on_b, on_c = first
    r.on_fill(on_c.token, 100, 1_000_000, 5_000)
    r.on_done(on_c.token, 5_000)
    r.on_done(on_b.token, 6_000)                          # B's IOC found nothing: canceled whole
    r.on_market_data(B, framed(itch.encode(itch.make("D", stock_locate=LOCATE, order_ref=2))))
    again = r.venue_down(A, 7_000)                        # A never answered: its 100 may or may not have filled
    assert on_a.lost and not on_a.done
    assert [(r.venues[c.venue].name, c.shares) for c in again] == [("C", 100)]  # B's 100 again, on C
    assert all(c.venue != A for c in again) and r.up[A] is False
    r.on_fill(again[0].token, 60, 1_000_000, 9_000)
    r.on_market_data(C, framed(itch.encode(itch.make("D", stock_locate=LOCATE, order_ref=3))))  # C is empty now
    assert r.on_done(again[0].token, 9_000) == []          # nowhere left to route the last 40
    out = r.outcome(1)
    assert (out["filled"], out["unknown"], out["unfilled"]) == (160, 100, 40) and out["done"]
    assert out["venues"] == ["A", "B", "C"] and r.counts["venues_lost"] == 1
