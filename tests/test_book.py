"""Order books against hand-worked sequences, for the reference (Python) and the compiled (C) books alike."""

from __future__ import annotations

import pytest

from feed_handler.book import Books as PyBooks
from feed_handler.replay import new_books
from latlab.wire import itch

ENGINES = ["python", "c"]


def msg(t: str, **fields) -> bytes:
    return itch.frame(itch.encode(itch.make(t, **fields)))


def add(ref, side, shares, price, locate=1, t="A"):
    extra = {"attribution": "MPID"} if t == "F" else {}
    return msg(t, stock_locate=locate, order_ref=ref, side=side, shares=shares, stock="AAA", price=price, **extra)


def state(books):
    snap = books.snapshot()
    errors = books.errors() if callable(books.errors) else dict(books.errors)
    return {loc: (list(map(tuple, b)), list(map(tuple, a)), n) for loc, (b, a, n) in snap.items()}, errors


@pytest.fixture(params=ENGINES)
def books(request):
    return new_books(request.param)


def test_adds_build_levels_best_first(books):
    books.feed(add(1, "B", 100, 100_000) + add(2, "B", 200, 100_100) + add(3, "B", 50, 100_000, t="F")
               + add(4, "S", 300, 100_300) + add(5, "S", 100, 100_200))
    snap, errors = state(books)
    assert errors == {}
    assert snap == {1: ([(100_100, 200, 1), (100_000, 150, 2)], [(100_200, 100, 1), (100_300, 300, 1)], 5)}


def test_executions_and_cancels_are_cumulative_and_remove_at_zero(books):
    books.feed(add(1, "B", 300, 100_000) + add(2, "B", 100, 100_000))
    books.feed(msg("E", order_ref=1, executed_shares=100, match_number=1))
    books.feed(msg("C", order_ref=1, executed_shares=50, match_number=2, printable="Y", execution_price=99_900))
    books.feed(msg("X", order_ref=1, cancelled_shares=100))
    assert state(books)[0] == {1: ([(100_000, 150, 2)], [], 2)}
    books.feed(msg("E", order_ref=1, executed_shares=50, match_number=3))  # reaches zero: removed
    assert state(books)[0] == {1: ([(100_000, 100, 1)], [], 1)}
    books.feed(msg("D", order_ref=2))
    assert state(books) == ({}, {})


def test_replace_keeps_side_and_stock_with_new_ref_shares_and_price(books):
    books.feed(add(1, "S", 100, 200_000, locate=7))
    books.feed(msg("U", stock_locate=999, original_ref=1, new_ref=2, shares=500, price=199_900))
    assert state(books)[0] == {7: ([], [(199_900, 500, 1)], 1)}
    books.feed(msg("D", order_ref=1))  # the old reference is gone
    books.feed(msg("X", order_ref=2, cancelled_shares=100))
    snap, errors = state(books)
    assert snap == {7: ([], [(199_900, 400, 1)], 1)} and errors == {"unknown_ref": 1}


def test_trades_and_other_types_leave_the_books_alone(books):
    books.feed(add(1, "B", 100, 100_000))
    before = state(books)
    books.feed(msg("P", order_ref=0, side="B", shares=100, stock="AAA", price=100_000, match_number=9)
               + msg("Q", shares=10, stock="AAA", cross_price=1, match_number=10, cross_type="O")
               + msg("B", match_number=9) + msg("S", event_code="Q") + msg("I", stock="AAA"))
    assert state(books) == before


def test_bad_messages_are_counted_and_skipped_and_the_books_stay_consistent(books):
    books.feed(add(1, "B", 100, 100_000))
    books.feed(add(1, "B", 100, 100_000)                                  # duplicate_ref
               + add(2, "X", 100, 100_000)                                # bad_side
               + add(3, "S", 0, 100_000)                                  # zero_shares
               + msg("E", order_ref=77, executed_shares=1, match_number=1)  # unknown_ref
               + msg("D", order_ref=78)                                   # unknown_ref
               + msg("U", original_ref=79, new_ref=80, shares=1, price=1)  # unknown_ref
               + b"\x00\x05Zxxxx"                                         # unknown_type
               + b"\x00\x05Dxxxx"                                         # bad_length
               + b"\x00\x00"                                              # bad_length (empty)
               + add(4, "S", 100, 100_100))
    snap, errors = state(books)
    assert errors == {"duplicate_ref": 1, "bad_side": 1, "zero_shares": 1, "unknown_ref": 3, "unknown_type": 1,
                      "bad_length": 2}
    assert snap == {1: ([(100_000, 100, 1)], [(100_100, 100, 1)], 2)}  # replay went on after the errors


def test_over_execution_and_over_cancel_take_the_order_down_and_count(books):
    books.feed(add(1, "B", 100, 100_000) + add(2, "B", 100, 100_000))
    books.feed(msg("E", order_ref=1, executed_shares=150, match_number=1) + msg("X", order_ref=2,
                                                                              cancelled_shares=101))
    assert state(books) == ({}, {"over_execute": 1, "over_cancel": 1})


def test_replace_onto_an_existing_ref_is_refused(books):
    books.feed(add(1, "B", 100, 100_000) + add(2, "B", 100, 100_100))
    books.feed(msg("U", original_ref=1, new_ref=2, shares=5, price=5))
    snap, errors = state(books)
    assert errors == {"duplicate_ref": 1}
    assert snap == {1: ([(100_100, 100, 1), (100_000, 100, 1)], [], 2)}


def test_truncated_final_message_is_counted_with_its_offset(books):
    good = add(1, "B", 100, 100_000)
    books.feed(good + good[:-5], 1000)
    errors = books.errors() if callable(books.errors) else dict(books.errors)
    samples = books.error_samples() if callable(books.error_samples) else \
        [(s.kind, s.offset, s.data) for s in books.error_samples]
    assert errors == {"truncated": 1}
    assert samples[0][:2] == ("truncated", 1000 + len(good))
    assert state(books)[0] == {1: ([(100_000, 100, 1)], [], 1)}


def test_symbols_come_from_the_stock_directory(books):
    books.feed(msg("R", stock_locate=5, stock="ZVZZT"))
    symbols = books.symbols() if callable(books.symbols) else books.symbols
    assert symbols == {5: "ZVZZT"}


def test_compiled_bbo_matches_the_reference_best():
    from feed_handler._book import Books

    data = add(1, "B", 100, 100_000) + add(2, "B", 300, 100_100) + add(3, "S", 70, 100_300)
    c, py = Books(), PyBooks()
    c.feed(data)
    py.feed(data)
    bid, ask = py.books[1].best(0), py.books[1].best(1)
    assert c.bbo(1) == (bid.price, bid.shares, ask.price, ask.shares) == (100_100, 300, 100_300, 70)
    assert c.bbo(2) == (0, 0, 0, 0)
    with pytest.raises(ValueError):
        c.bbo(70_000)
