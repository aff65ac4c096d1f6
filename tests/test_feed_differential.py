"""The compiled books against the reference on generated sessions, after every N messages, and under fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feed_handler.generator import GenParams, generate
from feed_handler.replay import book_counts, new_books
from latlab.wire import itch


def _state(books):
    counts, errors, _ = book_counts(books)
    snap = {k: (list(map(tuple, b)), list(map(tuple, a)), n) for k, (b, a, n) in books.snapshot().items()}
    return snap, errors, counts, books.messages


@pytest.fixture(scope="module")
def session_frames() -> list[bytes]:
    return [itch.frame(m) for m in generate(GenParams(seed=11, messages=60_000, instruments=40, live_orders=3000))]


def test_books_agree_after_every_n_messages(session_frames):
    c, py = new_books("c"), new_books("python")
    step = 5_000
    for start in range(0, len(session_frames), step):
        chunk = b"".join(session_frames[start:start + step])
        c.feed(chunk, start)
        py.feed(chunk, start)
        assert _state(c) == _state(py), f"books differ after {start + step} messages"
    snap, errors, _, _ = _state(c)
    assert errors == {} and len(snap) == 40


def test_books_agree_on_a_damaged_session(session_frames):
    """Drop every 97th message: orders go missing, so later references fail the same way in both."""
    data = b"".join(f for i, f in enumerate(session_frames) if i % 97 != 50)
    c, py = new_books("c"), new_books("python")
    c.feed(data)
    py.feed(data)
    assert _state(c) == _state(py)
    assert _state(c)[1].get("unknown_ref", 0) > 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.integers(0, 200), st.binary(max_size=64))
def test_fuzz_compiled_books_with_the_reference_as_oracle(session_frames, junk, cut, splice):
    """Arbitrary bytes, and real messages with bytes spliced in: no crash, and the same books and errors."""
    base = b"".join(session_frames[:60])
    mutated = base[:cut * 7] + splice + base[cut * 7:]
    for data in (junk, mutated, junk + base):
        c, py = new_books("c"), new_books("python")
        c.feed(data)
        py.feed(data)
        assert _state(c) == _state(py)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=8, max_size=8))
def test_both_books_show_any_stock_directory_symbol_the_same(raw):
    """Alpha fields are space padded: spaces only are stripped, other bytes (tab, NBSP, ...) shown escaped."""
    frame = itch.frame(itch.encode(itch.make("R", stock_locate=7, stock=raw)))
    shown = []
    for engine in ("c", "python"):
        books = new_books(engine)
        books.feed(frame)
        shown.append((books.symbols() if callable(books.symbols) else books.symbols)[7])
    assert shown[0] == shown[1]
    assert shown[0].isascii() and shown[0].isprintable() and not shown[0].endswith(" ")


def test_a_symbol_with_a_tab_or_nbsp_is_not_mistaken_for_padding():
    for raw, text in ((b"AB\t     ", "AB\\x09"), (b"AB\xa0     ", "AB\\xa0"), (b"AB C    ", "AB C")):
        frame = itch.frame(itch.encode(itch.make("R", stock_locate=7, stock=raw)))
        for engine in ("c", "python"):
            books = new_books(engine)
            books.feed(frame)
            assert (books.symbols() if callable(books.symbols) else books.symbols)[7] == text
