"""The compiled generator and the Python reference give the same bytes, and both give today's bytes for seed 1:
the generator's output for a seed is a fixed point (sessions written earlier replay into the same books)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from feed_handler._book import Books
from feed_handler._gen import Flow
from feed_handler.generator import GenParams, generate, generate_frames, message_count
from latlab.wire.itch import frame

# sha256 of the BinaryFILE bytes the generator made for these parameters before its flow was compiled.
SEED1 = GenParams(seed=1, messages=100_000, instruments=50, live_orders=5_000)
SEED1_SHA256 = "3a918cb1c9c6e200b56c2dd3f87d6977ca05e4be13e6927d2556e87e28669308"


def _digest(params: GenParams, engine: str) -> str:
    h = hashlib.sha256()
    for chunk in generate_frames(params, engine):
        h.update(chunk)
    return h.hexdigest()


@pytest.mark.parametrize("engine", ["c", "python"])
def test_seed_1_gives_the_bytes_it_gave_before(engine):
    assert _digest(SEED1, engine) == SEED1_SHA256


@pytest.mark.parametrize("params", [
    GenParams(seed=7, messages=150_000, instruments=3, live_orders=400),      # few instruments: crossing pressure
    GenParams(seed=8, messages=20_000, instruments=300, live_orders=50_000),  # live count far under target
    GenParams(seed=9, messages=70_000, instruments=20, live_orders=1),        # live count pinned near one
    GenParams(seed=10, messages=1, instruments=1, live_orders=1),
], ids=["crowded", "filling", "one-live", "tiny"])
def test_compiled_and_reference_engines_write_the_same_bytes(params):
    c = b"".join(generate_frames(params, "c"))
    py = b"".join(generate_frames(params, "python"))
    if c != py:  # say where they part, not just that they do
        at = next(i for i, (a, b) in enumerate(zip(c, py, strict=False)) if a != b)
        pytest.fail(f"engines differ first at byte {at} of {len(py)}")
    messages = list(generate(params))
    assert len(messages) == message_count(params)
    assert b"".join(frame(m) for m in messages) == c


def test_flow_refuses_arrays_of_the_wrong_kind_or_length():
    flow = Flow(Books(capacity=1024), b"AAAA    ", np.array([10_000], dtype=np.int64), 10,
                np.cumsum([0.44, 0.43, 0.09, 0.02, 0.01, 0.01]))
    ints = np.ones(4, dtype=np.int64)
    floats = np.full(4, 0.5)
    with pytest.raises(TypeError, match="locs: an array of int64"):
        flow.build(ints, floats, ints, ints, ints)
    with pytest.raises(ValueError, match="sides"):
        flow.build(ints, ints, ints[:3], ints, ints)
    with pytest.raises(ValueError, match="mids"):
        Flow(Books(capacity=1024), b"AAAA    BBBB    ", np.array([1], dtype=np.int64), 10, np.ones(6))
    assert len(flow.build(ints, ints, ints, ints, ints)) == 4 * 38  # four framed adds
    assert flow.live == 4
