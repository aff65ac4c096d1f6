"""The subscriber's protocol logic, driven packet by packet: order, gaps, re-requests, bad packets."""

from __future__ import annotations

import hashlib

from latlab.wire import moldudp64 as m
from udp_multicast.subscriber import Subscriber

MSGS = [f"message-{i:04d}".encode() for i in range(1, 101)]


def packet(first: int, n: int, session: str = "S") -> bytes:
    return m.encode_packet(session, first, MSGS[first - 1:first - 1 + n])


def digest(upto: int) -> str:
    h = hashlib.sha256()
    for msg in MSGS[:upto]:
        h.update(len(msg).to_bytes(2, "big") + msg)
    return h.hexdigest()


def make() -> tuple[Subscriber, list[tuple[int, int]]]:
    requests: list[tuple[int, int]] = []
    return Subscriber(None, lambda first, count: requests.append((first, count)), retry_ns=1000), requests


def test_in_order_delivery():
    sub, requests = make()
    for first in range(1, 101, 10):
        sub.on_packet(packet(first, 10), first)
    sub.on_packet(m.encode_end_of_session("S", 101), 200)
    assert sub.done and sub.delivered == 100 and sub.summary()["sha256"] == digest(100)
    assert requests == [] and sub.samples == 10


def test_gap_is_requested_buffered_and_filled_in_order():
    sub, requests = make()
    sub.on_packet(packet(1, 10), 1)
    sub.on_packet(packet(21, 10), 2)          # 11..20 lost
    assert requests == [(11, 10)] and sub.delivered == 10
    sub.tick(500)                              # within retry_ns: no second request
    sub.tick(5000)                             # past it: ask again
    assert requests == [(11, 10), (11, 10)]
    sub.on_packet(packet(11, 10), 6000, live=False)   # the retransmission
    assert sub.delivered == 30 and sub.summary()["sha256"] == digest(30)
    assert sub.recovered == 10 and sub.counts["gaps"] == 1 and len(sub.recovery_ns) == 1


def test_partial_retransmission_overlapping_what_was_delivered():
    sub, _ = make()
    sub.on_packet(packet(1, 10), 1)
    sub.on_packet(packet(21, 5), 2)
    sub.on_packet(packet(5, 20), 3, live=False)  # starts before `expected`: the overlap is skipped
    assert sub.delivered == 25 and sub.summary()["sha256"] == digest(25)


def test_duplicates_reordering_and_backwards_sequences():
    sub, _ = make()
    sub.on_packet(packet(1, 10), 1)
    sub.on_packet(packet(1, 10), 2)             # exact duplicate
    sub.on_packet(packet(21, 10), 3)
    sub.on_packet(packet(11, 10), 4)            # arrives late on the feed: reordered, fills the gap
    sub.on_packet(packet(5, 3), 5)              # behind what was delivered
    assert sub.counts["duplicates"] == 1 and sub.counts["reordered"] == 1
    assert sub.malformed["sequence_backwards"] == 1
    assert sub.delivered == 30 and sub.summary()["sha256"] == digest(30)


def test_bad_packets_are_counted_logged_and_never_delivered():
    logged: list[str] = []
    sub = Subscriber(b"S         ", lambda f, c: None, log=logged.append)
    good = packet(1, 10)
    sub.on_packet(good[:15], 1)
    sub.on_packet(good[:-2], 2)
    sub.on_packet(good[:18] + b"\x00\x09" + good[20:], 3)
    sub.on_packet(good[:20] + b"\x00\x00" + good[20:], 4)
    sub.on_packet(packet(1, 10, session="OTHER"), 5)
    assert dict(sub.malformed) == {"short_header": 1, "length_past_end": 1, "count_mismatch": 1, "zero_length": 1,
                                   "wrong_session": 1}
    assert sub.delivered == 0 and len(logged) == 5 and "count_mismatch" in logged[2]
    sub.on_packet(good, 6)                      # and it keeps running
    assert sub.delivered == 10


def test_heartbeat_and_end_of_session_reveal_a_lost_tail():
    sub, requests = make()
    sub.on_packet(packet(1, 10), 1)
    sub.on_packet(m.encode_heartbeat("S", 16), 2)
    assert requests == [(11, 5)]
    sub.on_packet(m.encode_end_of_session("S", 21), 3)
    assert not sub.done
    sub.on_packet(packet(11, 10), 10_000, live=False)
    assert sub.done and sub.summary()["sha256"] == digest(20)


def test_a_sequence_past_int64_is_malformed_and_the_subscriber_runs_on():
    sub, _ = make()
    sub.on_packet(packet(1, 10), 1)
    for seq in ((1 << 64) - 1, 1 << 63, (1 << 63) - 5):
        sub.on_packet(m.HEADER.pack(m.session_bytes("S"), seq, 10) + packet(11, 10)[20:], 2)
    sub.on_packet(m.encode_heartbeat("S", (1 << 64) - 1), 3)
    assert sub.malformed["sequence_out_of_range"] == 4 and sub.samples == 1
    sub.on_packet(packet(11, 10), 4)
    sub.on_packet(m.encode_end_of_session("S", 21), 5)
    assert sub.done and sub.delivered == 20 and sub.summary()["sha256"] == digest(20)


def test_an_end_of_session_behind_what_was_delivered_is_malformed_not_the_end():
    sub, _ = make()
    sub.on_packet(packet(1, 20), 1)
    sub.on_packet(m.encode_end_of_session("S", 5), 2)
    assert not sub.done and sub.malformed["sequence_backwards"] == 1 and not sub.summary()["complete"]
    sub.on_packet(packet(21, 10), 3)
    sub.on_packet(m.encode_end_of_session("S", 31), 4)
    assert sub.done and sub.delivered == 30


def test_complete_needs_no_gap_outstanding():
    sub, requests = make()
    sub.on_packet(packet(1, 10), 1)
    sub.on_packet(packet(21, 10), 2)             # 11..20 missing
    sub.on_packet(m.encode_end_of_session("S", 31), 3)
    assert not sub.done and requests[0] == (11, 10)
    sub.on_packet(m.encode_end_of_session("S", 41), 4)   # a second end that disagrees is refused
    assert sub.malformed["end_of_session_moved"] == 1 and sub.end_sequence == 31
    sub.on_packet(packet(11, 10), 5, live=False)
    assert sub.done and sub.delivered == 30


def _scenario() -> list[bytes]:
    """In order, a gap, duplicates, a heartbeat, every malformed kind, a wrong session, and the end."""
    good = [packet(1, 10), packet(11, 10), packet(21, 10)]
    bad = [b"\x00" * 5, packet(41, 3)[:-1], packet(41, 3)[:18] + b"\x00\x05" + packet(41, 3)[20:],
           m.HEADER.pack(m.session_bytes("S"), 41, 1) + b"\x00\x00", packet(31, 5, session="OTHER")]
    return [*good, packet(11, 10), packet(41, 10), m.encode_heartbeat("S", 51), *bad, packet(31, 10),
            packet(51, 10), packet(1, 5), packet(61, 40), m.encode_end_of_session("S", 101)]


def _through_socket(packets: list[bytes], engine: str) -> tuple[dict[str, object], int]:
    """Send the packets over loopback, then receive them with one engine, as the subscriber process does."""
    import socket

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        for p in packets:
            tx.sendto(p, rx.getsockname())
        sub, requests = make()
        calls = []
        reference_on_packet = sub.on_packet
        sub.on_packet = lambda *a, **k: calls.append(1) or reference_on_packet(*a, **k)  # type: ignore[method-assign]
        sub.on_packet(packets[0], 1)  # the first packet teaches the session (so drain_live may run)
        if engine == "c":
            while sub.fast_path_open and (left := sub.drain_live(rx.fileno())) is not None:
                sub.on_packet(left[0], left[1], left[2])
        while True:
            try:
                data = rx.recv(65536)
            except BlockingIOError:
                break
            sub.on_packet(data, 10)
            while engine == "c" and sub.fast_path_open and (left := sub.drain_live(rx.fileno())) is not None:
                sub.on_packet(left[0], left[1], left[2])
        summary = sub.summary()
        summary["requests"] = requests
        summary["samples"] = sub.first_seq[:sub.samples].tolist()
        return summary, len(calls)
    finally:
        rx.close()
        tx.close()


def test_compiled_path_agrees_with_the_reference():
    """Differential: _mold.drain for in-order packets, on_packet for the rest, gives what on_packet alone gives."""
    packets = _scenario()
    (compiled, c_calls), (reference, py_calls) = _through_socket(packets, "c"), _through_socket(packets, "python")
    assert compiled == reference
    assert c_calls < py_calls - 3, "the compiled path took none of the in-order packets"
    assert reference["complete"] and reference["sha256"] == digest(100)
    assert set(reference["malformed"]) == {"short_header", "length_past_end", "count_mismatch", "zero_length",
                                           "wrong_session"}
