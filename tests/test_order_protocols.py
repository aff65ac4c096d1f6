"""OUCH 4.2 and SoupBinTCP 3.00 codecs: spec lengths, field offsets, round trips and bad frames."""

from __future__ import annotations

import pytest

from latlab.wire import ouch, soupbintcp


def test_lengths_follow_the_spec():
    assert ouch.INBOUND["O"].length == 49 and ouch.OUTBOUND["A"].length == 66
    assert ouch.OUTBOUND["E"].length == 40 and ouch.OUTBOUND["C"].length == 28 and ouch.OUTBOUND["J"].length == 24
    login = soupbintcp.login_request("user01", "secret", "", 0)
    assert int.from_bytes(login[:2], "big") == 47 and login[2:3] == b"L"


def test_enter_order_offsets():
    raw = ouch.INBOUND.encode(ouch.INBOUND.make("O", token="ABC", side="S", shares=300, stock="MSFT",
                                                price=4_012_300, time_in_force=0, firm="LTLB",
                                                minimum_quantity=7))
    assert raw[1:15] == b"ABC           " and raw[15:16] == b"S"
    assert int.from_bytes(raw[16:20], "big") == 300 and raw[20:28] == b"MSFT    "
    assert int.from_bytes(raw[28:32], "big") == 4_012_300 and int.from_bytes(raw[32:36], "big") == 0
    assert raw[36:40] == b"LTLB" and int.from_bytes(raw[43:47], "big") == 7


def test_round_trips_and_errors():
    acc = ouch.OUTBOUND.make("A", timestamp=123, token="T", side="B", shares=1, stock="X", price=5, order_ref=9)
    raw = ouch.OUTBOUND.encode(acc)
    assert raw[49:57] == (9).to_bytes(8, "big")
    assert ouch.OUTBOUND.decode(raw) == ouch.OUTBOUND.decode(ouch.OUTBOUND.encode(ouch.OUTBOUND.decode(raw)))
    with pytest.raises(ValueError, match="unknown message type"):
        ouch.OUTBOUND.decode(b"Q" + bytes(10))
    with pytest.raises(ValueError, match="bytes, got"):
        ouch.OUTBOUND.decode(raw[:30])


def test_frame_reader_splits_a_stream_and_refuses_bad_lengths():
    reader = soupbintcp.FrameReader(max_length=100)
    data = soupbintcp.frame("H") + soupbintcp.frame("U", b"hello") + soupbintcp.frame("R")
    assert reader.feed(data[:4]) == [soupbintcp.Packet("H", b"")]
    assert [p.type for p in reader.feed(data[4:])] == ["U", "R"]
    with pytest.raises(ValueError, match="out of range"):
        soupbintcp.FrameReader(max_length=100).feed(b"\x10\x00U")
    with pytest.raises(ValueError, match="out of range"):
        soupbintcp.FrameReader().feed(b"\x00\x00")
