"""ITCH 5.0 codec: every type's layout and length, round trips, and malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latlab.wire import itch
from latlab.wire.layout import INT_BITS as _INT_BITS


def _field_strategy(kind: str) -> st.SearchStrategy:
    if kind in _INT_BITS:
        return st.integers(0, (1 << _INT_BITS[kind]) - 1)
    width = 1 if kind == "c" else int(kind[1:])
    return st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=width, max_size=width)


@st.composite
def messages(draw: st.DrawFn):
    spec = draw(st.sampled_from(list(itch.SPECS.values())))
    return spec.tuple_type(spec.type, *(draw(_field_strategy(kind)) for _, kind in spec.fields))


def test_every_type_of_the_spec_is_declared_with_its_length():
    assert set(itch.SPECS) == set("SRHYLVWKJhAFECXDUPQBINO")
    for t, spec in itch.SPECS.items():
        assert spec.length == itch.SPEC_LENGTHS[t]


@settings(max_examples=600, deadline=None)
@given(messages())
def test_round_trip_every_type(msg):
    raw = itch.encode(msg)
    assert len(raw) == itch.SPECS[msg.type].length
    assert raw[0] == ord(msg.type)
    assert itch.decode(raw) == msg
    assert itch.encode(itch.decode(raw)) == raw


def test_field_offsets_follow_the_spec():
    raw = itch.encode(itch.make("U", stock_locate=0x0102, tracking=0x0304, timestamp=0x0A0B0C0D0E0F,
                                original_ref=11, new_ref=22, shares=33, price=44))
    assert raw[1:3] == b"\x01\x02" and raw[3:5] == b"\x03\x04" and raw[5:11] == bytes.fromhex("0a0b0c0d0e0f")
    assert int.from_bytes(raw[11:19], "big") == 11 and int.from_bytes(raw[19:27], "big") == 22
    assert int.from_bytes(raw[27:31], "big") == 33 and int.from_bytes(raw[31:35], "big") == 44
    add = itch.encode(itch.make("F", order_ref=7, side="S", shares=100, stock="MSFT", price=4_012_300,
                                attribution="ABCD"))
    assert add[19:20] == b"S" and add[24:32] == b"MSFT    " and add[36:40] == b"ABCD"
    assert int.from_bytes(add[32:36], "big") == 4_012_300


@pytest.mark.parametrize(("data", "length", "kind"), [
    (b"Z" + bytes(20), None, "unknown_type"),
    (itch.encode(itch.make("D", order_ref=1))[:10], None, "truncated"),
    (itch.encode(itch.make("D", order_ref=1)), 20, "bad_length"),
    (b"", None, "empty"),
])
def test_malformed_messages_raise_with_their_kind(data, length, kind):
    with pytest.raises(itch.ItchError) as err:
        itch.decode(data, 0, length)
    assert err.value.kind == kind


def test_encode_refuses_values_that_do_not_fit():
    with pytest.raises(ValueError, match="longer"):
        itch.encode(itch.make("A", stock="TOOLONGNAME"))
    with pytest.raises(ValueError, match="timestamp"):
        itch.encode(itch.make("D", timestamp=1 << 48))
    with pytest.raises(TypeError, match="no field"):
        itch.make("D", nonsense=1)


def test_frames_and_prices():
    data = itch.frame(b"abc") + itch.frame(b"de") + b"\x00\x09xy"
    frames = list(itch.iter_frames(data))
    assert frames[:2] == [(0, 2, 3), (5, 7, 2)]
    _, start, length = frames[2]
    assert start + length > len(data)  # the truncated final frame is visible to the caller
    assert itch.price_to_str(1_234_500) == "123.4500" and itch.price_to_str(5) == "0.0005"
