"""The SoupBinTCP 3.00 server state machine, driven with explicit times (no sockets)."""

from __future__ import annotations

import pytest

from latlab.wire import soupbintcp as soup
from venue.soup_session import ServerSession, SoupConfig, Stream

CFG = SoupConfig(session="SESSION01", users={"ALICE": "pw1", "BOB": "pw2"})


def packets(data: bytes) -> list[soup.Packet]:
    return soup.FrameReader().feed(data)


def echo_handler(payload: bytes, session: ServerSession) -> None:
    session.send_sequenced(b"ack:" + payload, 0.0)


def new(streams: dict[str, Stream] | None = None, now: float = 0.0) -> ServerSession:
    return ServerSession(CFG, {} if streams is None else streams, echo_handler, now)


def login(s: ServerSession, user: str = "ALICE", password: str = "pw1", session: str = "", seq: int = 0,
          now: float = 0.0) -> list[soup.Packet]:
    return packets(s.receive(soup.login_request(user, password, session, seq), now))


def test_login_accepted_then_sequenced_answers():
    s = new()
    (accepted,) = login(s)
    assert accepted.type == "A"
    msg = soup.PACKETS.decode(b"A" + accepted.payload)
    assert msg.session.strip() == "SESSION01" and int(msg.sequence) == 1
    out = packets(s.receive(soup.frame("U", b"order1") + soup.frame("U", b"order2"), 0.1))
    assert [(p.type, p.payload) for p in out] == [("S", b"ack:order1"), ("S", b"ack:order2")]
    assert s.logged_in


@pytest.mark.parametrize(("user", "password", "session", "code"), [
    ("ALICE", "wrong", "", "A"), ("MALLOR", "pw1", "", "A"), ("ALICE", "pw1", "OTHER", "S")])
def test_login_rejected_with_its_reason(user, password, session, code):
    s = new()
    (rejected,) = login(s, user, password, session)
    assert rejected.type == "J" and rejected.payload.decode() == code
    assert s.closed and not s.logged_in


def test_heartbeat_after_a_second_without_sending():
    s = new()
    login(s, now=0.0)
    assert s.tick(0.5) == b""
    assert [p.type for p in packets(s.tick(1.0))] == ["H"]
    assert s.tick(1.5) == b""                       # the heartbeat counts as sending
    s.receive(soup.frame("R"), 1.9)                 # a client heartbeat keeps it alive
    assert [p.type for p in packets(s.tick(2.0))] == ["H"]


def test_silent_client_is_dropped_after_15_seconds():
    s = new()
    login(s, now=0.0)
    s.receive(soup.frame("R"), 10.0)
    s.tick(24.9)
    assert not s.closed
    s.tick(25.0)
    assert s.closed == "silent for 15 s"


def test_connection_without_login_is_dropped_after_30_seconds():
    s = new(now=100.0)
    s.tick(129.0)
    assert not s.closed
    s.receive(soup.frame("R"), 129.5)               # talking is not logging in
    assert s.closed == "'R' packet before login"
    s2 = new(now=100.0)
    s2.receive(b"\x00", 120.0)                       # a partial frame: something, but never a login
    s2.tick(130.0)
    assert s2.closed == "no login within 30 s"


def test_logout_and_relogin_from_a_sequence_replays():
    streams: dict[str, Stream] = {}
    s = new(streams)
    login(s)
    s.receive(b"".join(soup.frame("U", f"o{i}".encode()) for i in range(1, 6)), 0.1)
    s.receive(soup.frame("O"), 0.2)
    assert s.closed == "logout"
    again = new(streams)
    out = login(again, seq=3)
    assert out[0].type == "A" and int(soup.PACKETS.decode(b"A" + out[0].payload).sequence) == 3
    assert [p.payload for p in out[1:]] == [b"ack:o3", b"ack:o4", b"ack:o5"]
    fresh = new(streams)
    out = login(fresh, seq=0)                       # 0: from the next message, nothing replayed
    assert len(out) == 1 and int(soup.PACKETS.decode(b"A" + out[0].payload).sequence) == 6
    other = new(streams)
    assert len(login(other, "BOB", "pw2")) == 1     # another user's stream is separate


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x00\x00L", "garbage"),                       # zero length
    (b"\xff\xffU" + b"x" * 10, "garbage"),           # a length past what the server takes
    (soup.frame("L", b"short"), "login of 5 bytes"),
    (soup.frame("U", b"order"), "'U' packet before login"),
])
def test_bad_frames_close_the_connection_with_a_reason(data, reason):
    s = new()
    s.receive(data, 0.0)
    assert s.closed and s.closed.startswith(reason)


def test_end_of_session():
    s = new()
    login(s)
    assert [p.type for p in packets(s.end_of_session(1.0))] == ["Z"]
    assert s.closed == "end of session"


def test_a_second_login_of_a_logged_in_user_is_refused_and_the_first_goes_on():
    streams: dict[str, Stream] = {}
    active: set[str] = set()
    first = ServerSession(CFG, streams, echo_handler, 0.0, active)
    assert login(first)[0].type == "A"
    second = ServerSession(CFG, streams, echo_handler, 0.1, active)
    out = login(second, now=0.1)
    assert [p.type for p in out] == ["J"] and soup.PACKETS.decode(b"J" + out[0].payload).reason == "A"
    assert second.closed and "already logged in" in second.closed and first.logged_in
    assert [p.payload for p in packets(first.receive(soup.frame("U", b"o1"), 0.2))] == [b"ack:o1"]
    first.receive(soup.frame("O"), 0.3)               # the first logs out: the user may log in again
    third = ServerSession(CFG, streams, echo_handler, 0.4, active)
    assert login(third, now=0.4)[0].type == "A"
    third.release()                                   # the server dropped the connection
    assert "ALICE" not in active
