"""MoldUDP64 codec: round trips, every malformed kind, and the compiled validator against the reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latlab.wire import moldudp64 as m
from udp_multicast._mold import check_packet

messages = st.lists(st.binary(min_size=1, max_size=60), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJ0123456789", min_size=1, max_size=10), st.integers(0, m.MAX_SEQUENCE - 30), messages)
def test_round_trip(session, seq, msgs):
    raw = m.encode_packet(session, seq, msgs)
    pkt = m.decode_packet(raw)
    assert pkt.session == session.ljust(10).encode() and pkt.sequence == seq and pkt.messages == msgs
    assert check_packet(raw) is None or not msgs  # an empty list encodes a heartbeat (count 0)


def test_heartbeat_end_of_session_and_request():
    hb = m.decode_packet(m.encode_heartbeat("S", 42))
    assert hb.is_heartbeat and hb.next_sequence == 42 and check_packet(m.encode_heartbeat("S", 42)) is None
    eos = m.decode_packet(m.encode_end_of_session("S", 7))
    assert eos.is_end_of_session and eos.sequence == 7
    req = m.encode_request("S", 100, 5)
    assert len(req) == 20 and m.decode_header(req) == (b"S         ", 100, 5)


GOOD = m.encode_packet("S", 1, [b"abc", b"defg"])


@pytest.mark.parametrize(("raw", "kind"), [
    (GOOD[:10], "short_header"),
    (GOOD[:-1], "length_past_end"),
    (GOOD + b"\x00", "length_past_end"),
    (GOOD[:18] + b"\x00\x03" + GOOD[20:], "count_mismatch"),
    (GOOD[:18] + b"\x00\x01" + GOOD[20:], "count_mismatch"),
    (GOOD[:20] + b"\x00\x00" + GOOD[20:], "zero_length"),
    (m.encode_heartbeat("S", 1) + b"x", "trailing_bytes"),
    (m.encode_heartbeat("S", (1 << 64) - 1), "sequence_out_of_range"),
    (m.HEADER.pack(m.session_bytes("S"), (1 << 63) - 1, 2) + GOOD[20:], "sequence_out_of_range"),
])
def test_every_malformed_kind(raw, kind):
    with pytest.raises(m.MoldError) as err:
        m.decode_packet(raw)
    assert err.value.kind == kind
    assert check_packet(raw)[0] == kind


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_compiled_validator_agrees_with_the_reference(raw):
    got = check_packet(raw)
    assert (got[0] if got else None) == m.problem(raw)


def test_pack_fills_packets_up_to_the_payload_and_keeps_sequence():
    msgs = [bytes([i % 256]) * (10 + i % 40) for i in range(500)]
    packets = list(m.pack(msgs, "S", 1, max_payload=300))
    assert packets[0][0] == 1
    total = 0
    for seq, batch in packets:
        raw = m.encode_packet("S", seq, batch)
        assert len(raw) <= 300
        assert seq == total + 1
        total += len(batch)
    assert total == 500
    with pytest.raises(ValueError, match="does not fit"):
        list(m.pack([b"x" * 400], "S", max_payload=300))
