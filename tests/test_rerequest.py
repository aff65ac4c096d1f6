"""The re-request server: what it answers, what it refuses, rate limits, and a real process fed garbage."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from latlab import helper
from latlab.wire import moldudp64 as m
from udp_multicast.rerequest import RerequestResult, Store, TokenBucket


def store_with(n: int) -> Store:
    s = Store()
    msgs = [bytes([i % 256]) * 30 for i in range(n)]
    for seq, batch in m.pack(msgs, "S", 1, max_payload=200):
        s.add_packet(m.encode_packet("S", seq, batch))
    return s


def test_answers_what_it_has_in_one_packet():
    s = store_with(200)
    reply = m.decode_packet(s.answer(b"S         ", 10, 100, 1472))
    assert reply.sequence == 10 and 0 < reply.count < 100  # as much as fits 1472 bytes
    assert len(s.answer(b"S         ", 10, 100, 1472)) <= 1472
    tail = m.decode_packet(s.answer(b"S         ", 195, 100, 1472))
    assert tail.count == 6  # what it has, no more


def test_refuses_unknown_session_and_far_future():
    s = store_with(50)
    assert s.answer(b"OTHER     ", 1, 5, 1472) is None
    assert s.answer(b"S         ", 51, 5, 1472) is None
    assert s.answer(b"S         ", 10**12, 5, 1472) is None
    s.add_packet(b"garbage")
    assert s.stored == 50


def test_each_session_is_answered_from_its_own_messages():
    s = Store(max_sessions=2)
    s.add_packet(m.encode_packet("A", 1, [b"a1", b"a2", b"a3"]))
    s.add_packet(m.encode_packet("B", 1, [b"b1", b"b2"]))      # a rollover: a new session on the same group
    s.add_packet(m.encode_packet("A", 4, [b"a4"]))
    assert m.decode_packet(s.answer(m.session_bytes("A"), 1, 10, 1472)).messages == [b"a1", b"a2", b"a3", b"a4"]
    assert m.decode_packet(s.answer(m.session_bytes("B"), 1, 10, 1472)).messages == [b"b1", b"b2"]
    assert s.answer(m.session_bytes("B"), 3, 1, 1472) is None    # A's sequence 3 is not B's
    s.add_packet(m.encode_packet("C", 1, [b"c1"]))              # room for two: B, seen longest ago, goes
    assert s.answer(m.session_bytes("B"), 1, 1, 1472) is None and s.stored == 5


def test_token_bucket_limits_each_requester():
    bucket = TokenBucket(rate=10, burst=3)
    a, b = ("10.0.0.1", 1), ("10.0.0.2", 1)
    assert [bucket.allow(a, 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert bucket.allow(b, 0.0)
    assert bucket.allow(a, 0.2)  # refilled two tokens


def test_real_server_survives_garbage_and_rate_limits():
    group, port = "239.77.9.9", 26991
    proc = subprocess.Popen([sys.executable, "-m", "udp_multicast.rerequest", "--group", group, "--port", str(port),
                             "--iface", "127.0.0.1", "--rate-limit", "5", "--burst", "5", "--idle-timeout", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        rr_port = int(helper.ready_fields(proc.stdout.readline())["port"])
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(0.3)
        for junk in (b"", b"x", b"y" * 19, b"z" * 21, bytes(2000)):
            client.sendto(junk, ("127.0.0.1", rr_port))
        for _ in range(20):
            client.sendto(m.encode_request("S", 1, 1), ("127.0.0.1", rr_port))
        _wait_until_read(rr_port, proc.pid)
        assert proc.poll() is None, "garbage must not stop it"
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    stats = helper.result(out, RerequestResult, "re-request server")
    assert stats.malformed == 5  # every datagram that is not exactly a 20-byte request
    assert stats.rate_limited >= 10
    assert stats.answered == 0  # it has seen no feed, so it has nothing to send


def _queued(port: int) -> int | None:
    """Bytes waiting in the receive queue of this namespace's UDP socket on `port` (/proc/net/udp)."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            return int(fields[4].split(":")[1], 16)
    return None


def _wait_until_read(port: int, pid: int, timeout_s: float = 30.0) -> None:
    """Until the server has read every datagram sent to it and sleeps again in its select()."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if _queued(port) == 0 and state == "S":
            return
        time.sleep(0.005)
    raise AssertionError("the re-request server did not read its requests")
