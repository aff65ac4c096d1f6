"""The session generator: same seed same bytes, the real mix, uncrossed books, MoldUDP64 packets in a pcap."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from feed_handler.generator import GenParams, generate, write_binaryfile, write_pcap
from feed_handler.replay import replay
from latlab.wire import moldudp64
from latlab.wire.pcap import read_udp

SMALL = GenParams(seed=5, messages=40_000, instruments=30, live_orders=2_000)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = tmp_path / "a.bin.gz", tmp_path / "b.bin.gz", tmp_path / "c.bin.gz"
    write_binaryfile(SMALL, a)
    write_binaryfile(SMALL, b)
    write_binaryfile(GenParams(seed=6, messages=40_000, instruments=30, live_orders=2_000), c)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]


def test_session_structure_and_mix():
    msgs = list(generate(SMALL))
    types = [chr(m[0]) for m in msgs]
    events = [chr(m[11]) for m in msgs if m[0] == ord("S")]
    assert events == ["O", "S", "Q", "M", "E", "C"]
    assert types.count("R") == 30
    timestamps = [int.from_bytes(m[5:11], "big") for m in msgs]
    assert timestamps == sorted(timestamps)
    q = next(i for i, m in enumerate(msgs) if m[0] == ord("S") and m[11] == ord("Q"))
    flow = Counter(types[q + 1:-3])
    total = sum(flow.values())
    share = {k: v / total for k, v in flow.items()}
    assert total == SMALL.messages
    assert share["A"] + share["F"] == pytest.approx(0.44, abs=0.03)
    assert share["D"] == pytest.approx(0.43, abs=0.03)
    assert share["U"] == pytest.approx(0.09, abs=0.015)
    assert share["E"] + share["C"] == pytest.approx(0.02, abs=0.006)
    assert share["X"] == pytest.approx(0.01, abs=0.005)
    # Open and close are busier than midday (a U-shaped arrival density).
    flow_ts = sorted(timestamps[q + 1:-3])
    hour = 3600 * 10**9
    open_hour = sum(1 for t in flow_ts if t < flow_ts[0] + hour)
    midday = sum(1 for t in flow_ts if 12 * hour <= t < 13 * hour)
    assert open_hour > 1.5 * midday


def test_books_are_uncrossed_and_hold_about_the_target_live_orders(tmp_path):
    path = tmp_path / "s.bin"
    write_binaryfile(SMALL, path)
    result = replay(path)
    assert result.errors == {}
    live = sum(n for _, _, n in result.books.values())
    assert 0.8 * SMALL.live_orders <= live <= 1.2 * SMALL.live_orders
    for bids, asks, _ in result.books.values():
        if bids and asks:
            assert bids[0][0] < asks[0][0]
        assert all(p % 100 == 0 for p, _, _ in bids + asks)  # one-cent tick grid


def test_pcap_holds_moldudp64_packets_of_at_most_1472_bytes(tmp_path):
    path = tmp_path / "s.pcap"
    messages, packets = write_pcap(SMALL, path)
    seq = 1
    n = 0
    for dgram in read_udp(path):
        assert len(dgram.payload) <= 1472 and dgram.dport == 26477
        pkt = moldudp64.decode_packet(dgram.payload)
        assert pkt.session == b"LATLAB0001" and pkt.sequence == seq
        if pkt.is_end_of_session:
            assert pkt.sequence == messages + 1
        seq = pkt.next_sequence
        n += 1
    assert n == packets and seq == messages + 1


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="messages"):
        GenParams(messages=0)
    with pytest.raises(ValueError, match="instruments"):
        GenParams(instruments=70_000)
