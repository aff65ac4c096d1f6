"""FIX 4.4 session recovery: sequence gaps seen on both sides, ResendRequest, SequenceReset-GapFill, PossDupFlag
resends, Logout with a reason. Sans I/O first (two FixEnds, the venue's FixSession), then over real TCP between
network namespaces with nftables dropping what one side sends while the connection dies."""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import sys
import time

import pytest

from latlab.loss import dropped, tcp_blackhole
from latlab.procs import running
from latlab.topology import BridgeSpec, bridge_lab
from latlab.wire import fix44
from latlab.wire.fix_session import RESEND_REQUEST, SEQUENCE_RESET, FixEnd
from trader.fix_client import FixClient, FixLogonRefused
from venue.matching import MatchingBook
from venue.order_entry import FixSession, Venue

from .conftest import needs_netns


def _deliver(data: bytes, to: FixEnd, now: float = 0.0) -> list[fix44.FixMessage]:
    """Feed what one end sent to the other; the application messages it hands up."""
    return [m for m in (to.receive(msg, now) for msg in fix44.FixReader().feed(data)) if m is not None]


def _order(end: FixEnd, n: int) -> None:
    end.send(fix44.NEW_ORDER_SINGLE, [(11, f"CL{n}"), (55, "LLTRIG"), (54, "1"), (38, 100), (44, "100")])


def test_a_gap_is_asked_for_and_filled_with_resends_and_gap_fills():
    a, b = FixEnd("A", "B"), FixEnd("B", "A")
    a.send(fix44.LOGON, [(98, 0), (108, 30)])
    _order(a, 1)
    # the Logon is handed up (its owner answers it), then CL1
    assert [(m.type, m.get(11)) for m in _deliver(a.take(), b)] == [(fix44.LOGON, ""), (fix44.NEW_ORDER_SINGLE, "CL1")]
    _order(a, 2)
    a.send(fix44.HEARTBEAT, [])
    a.send(fix44.HEARTBEAT, [])
    lost = a.take()                                                          # 3, 4, 5 never arrive
    assert lost
    _order(a, 6)
    assert _deliver(a.take(), b, now=1.0) == []                             # 6 is past the gap: dropped
    request = fix44.FixReader().feed(b.take())
    assert [(m.type, m.get(7), m.get(16)) for m in request] == [(RESEND_REQUEST, "3", "0")]
    assert b.counts["gaps"] == 1 and b.gap_since == 1.0
    _deliver(fix44.encode(RESEND_REQUEST, "B", "A", b.next_out - 1, [(7, 3), (16, 0)]), a)
    resent = fix44.FixReader().feed(a.take())
    # CL2 again (PossDup, with its first SendingTime), one GapFill over the two heartbeats, CL6 again
    assert [(m.type, m.get(34), m.get(43)) for m in resent] == [
        (fix44.NEW_ORDER_SINGLE, "3", "Y"), (SEQUENCE_RESET, "4", "Y"), (fix44.NEW_ORDER_SINGLE, "6", "Y")]
    assert resent[1].get(123) == "Y" and resent[1].get(36) == "6" and resent[0].get(122)
    got = [m.get(11) for m in _deliver(b"".join(m.raw for m in resent), b, now=1.5)]
    assert got == ["CL2", "CL6"] and b.next_in == 7 and b.gap_since is None
    # the same resend once more: every message is below the expected number and marked PossDup, so ignored
    assert _deliver(b"".join(m.raw for m in resent), b) == [] and b.counts["duplicates_ignored"] == 3
    assert b.closed is None


def test_a_number_too_low_without_possdup_ends_the_session_saying_why():
    a, b = FixEnd("A", "B"), FixEnd("B", "A")
    _order(a, 1)
    _order(a, 2)
    _deliver(a.take(), b)
    stale = fix44.encode(fix44.NEW_ORDER_SINGLE, "A", "B", 1, [(11, "CL9")])
    assert _deliver(stale, b) == []
    (logout,) = fix44.FixReader().feed(b.take())
    assert logout.type == fix44.LOGOUT and logout.get(58) == "MsgSeqNum too low, expecting 3 but received 1"
    assert b.closed == logout.get(58)


def test_a_peer_that_never_fills_the_gap_is_logged_out_after_the_timeout():
    b = FixEnd("B", "A", resend_timeout_s=2.0)
    _deliver(fix44.encode(fix44.HEARTBEAT, "A", "B", 5, []), b, now=10.0)
    b.take()
    b.tick(11.9)
    assert b.closed is None
    b.tick(12.1)
    (logout,) = fix44.FixReader().feed(b.take())
    assert logout.type == fix44.LOGOUT
    assert logout.get(58) == "no answer to ResendRequest within 2 s (expecting MsgSeqNum 1)"


def test_sequence_reset_gap_fill_below_the_expected_number_is_rejected_and_reset_moves_it():
    b = FixEnd("B", "A")
    _deliver(fix44.encode(fix44.HEARTBEAT, "A", "B", 1, []), b)
    _deliver(fix44.encode(SEQUENCE_RESET, "A", "B", 2, [(123, "Y"), (36, 1)]), b)
    (reject,) = fix44.FixReader().feed(b.take())
    assert reject.type == fix44.REJECT and "below the next expected" in reject.get(58)
    _deliver(fix44.encode(SEQUENCE_RESET, "A", "B", 99, [(36, 40)]), b)   # Reset: its own number does not count
    assert b.next_in == 40


def _venue_session(ends: dict, now: float = 0.0, timeout: float = 5.0) -> FixSession:
    book = MatchingBook()
    venue = Venue(book, lambda msgs: None)
    return FixSession(venue, {"ALICE": "pw"}, "LATLABX", now, ends, resend_timeout_s=timeout)


def _logon(seq: int, reset: bool = False) -> bytes:
    return fix44.encode(fix44.LOGON, "CLIENT", "LATLABX", seq, [(98, 0), (108, 30), *([(141, "Y")] if reset else []),
                                                                  (553, "ALICE"), (554, "pw")])


def test_the_venue_keeps_the_numbers_across_connections_and_refuses_a_stale_logon():
    ends: dict = {}
    first = _venue_session(ends)
    assert fix44.FixReader().feed(first.receive(_logon(1), 0.0))[0].type == fix44.LOGON
    first.receive(fix44.encode(fix44.HEARTBEAT, "CLIENT", "LATLABX", 2, []), 0.1)
    second = _venue_session(ends)                                     # the same user reconnects, numbers forgotten
    (out,) = fix44.FixReader().feed(second.receive(_logon(1), 1.0))
    assert out.type == fix44.LOGOUT and out.get(58) == "MsgSeqNum too low, expecting 3 but received 1"
    assert second.closed == out.get(58)
    third = _venue_session(ends)                                      # ... or asks for a reset: accepted
    (ack,) = fix44.FixReader().feed(third.receive(_logon(1, reset=True), 2.0))
    assert ack.type == fix44.LOGON and ack.get(141) == "Y" and ack.get(34) == "1"


def test_the_venue_asks_after_its_logon_answer_and_logs_out_a_peer_that_never_resends():
    ends: dict = {}
    s = _venue_session(ends, timeout=1.0)
    out = fix44.FixReader().feed(s.receive(_logon(5), 0.0))       # 1..4 missing
    assert [m.type for m in out] == [fix44.LOGON, RESEND_REQUEST] and out[1].get(7) == "1"
    assert s.tick(0.9) == b"" or s.closed is None
    (logout,) = fix44.FixReader().feed(s.tick(1.2))
    assert logout.type == fix44.LOGOUT and "no answer to ResendRequest within 1 s" in logout.get(58)
    assert s.closed and "ResendRequest" in s.closed


# ---- over TCP, between namespaces, with nftables dropping one direction while the connection dies

FIX_PORT = 26592


@pytest.fixture(scope="module")
def flab():
    spec = BridgeSpec(ipaddress.IPv4Network("10.79.6.0/24"), ("ex",), {"ex": 0})
    tag = secrets.token_hex(3)
    with bridge_lab(spec, tag, root_address="10.79.6.254/24") as lab:
        yield lab
    assert not any(tag in n for n in os.listdir("/run/netns"))


@pytest.fixture
def exchange(flab, tmp_path):
    """The exchange process in namespace ex (FIX on FIX_PORT, no triggers until stopped)."""
    from venue.exchange import ExchangeConfig

    ex = flab.hosts["ex"]
    cfg = ExchangeConfig(iface=ex.address, group="239.77.1.12", fix_port=FIX_PORT, soup_port=FIX_PORT + 1,
                         users={"ALICE": "pw"}, triggers=100_000, interval_ms=20, fix_resend_timeout_s=3.0,
                         out=str(tmp_path / "ex.npz"))
    (tmp_path / "ex.json").write_text(cfg.model_dump_json())
    with running(ex.command([sys.executable, "-m", "venue.exchange", "--config", str(tmp_path / "ex.json")]),
                 tmp_path / "ex.log", "exchange", ready="READY") as proc:
        yield ex, proc


def _reports_for(client: FixClient, cl_ord_id: str) -> list[fix44.FixMessage]:
    return [m for m in client.received if m.type == fix44.EXECUTION_REPORT and m.get(11) == cl_ord_id]


def _done(client: FixClient, cl_ord_id: str) -> bool:
    return any(m.get(39) in ("2", "4", "8") for m in _reports_for(client, cl_ord_id))


@needs_netns
def test_reports_lost_with_a_dying_connection_are_resent_after_the_reconnect(exchange):
    ex, _ = exchange
    client = FixClient((ex.address, FIX_PORT), "ALICE", "pw", sender="CLIENT", resend_timeout_s=5.0)
    client.connect()
    client.order("C1", "LLTRIG", fix44.SIDE_BUY, 100, 1_000_000)
    assert client.pump_until(lambda: _done(client, "C1"), 10)
    with tcp_blackhole(ex, FIX_PORT, "out", "latlab_fix_out"):
        client.order("C2", "LLTRIG", fix44.SIDE_BUY, 100, 1_000_000)  # the venue takes it; its answers vanish
        deadline = time.monotonic() + 10
        while dropped(ex, "latlab_fix_out") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert dropped(ex, "latlab_fix_out") > 0 and _reports_for(client, "C2") == []
        client.drop()                                                  # the connection dies with them
    client.connect()                                                   # the venue's Logon is numbered past them
    assert client.pump_until(lambda: _done(client, "C2"), 10), client.end.counts
    c2 = _reports_for(client, "C2")
    assert len({m.get(17) for m in c2}) == len(c2) and all(m.get(43) == "Y" for m in c2)  # each once, as resends
    assert client.end.counts["gaps"] == 1 and client.end.counts["resend_requests_sent"] == 1
    client.logout()


@needs_netns
def test_an_order_lost_with_a_dying_connection_is_resent_and_filled_once(exchange, tmp_path):
    ex, proc = exchange
    client = FixClient((ex.address, FIX_PORT), "ALICE", "pw", sender="CLIENT")
    client.connect()
    with tcp_blackhole(ex, FIX_PORT, "in", "latlab_fix_in"):
        client.order("C3", "LLTRIG", fix44.SIDE_BUY, 100, 1_000_000)  # never reaches the venue
        deadline = time.monotonic() + 10
        while dropped(ex, "latlab_fix_in") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert dropped(ex, "latlab_fix_in") > 0
        client.drop()
    client.connect()               # the venue sees the Logon past the order's number and asks for it again
    assert client.pump_until(lambda: _done(client, "C3"), 10), client.end.counts
    assert client.end.counts["resend_requests_answered"] == 1 and client.end.counts["resent"] >= 1
    client.order("C4", "LLTRIG", fix44.SIDE_BUY, 100, 1_000_000)
    assert client.pump_until(lambda: _done(client, "C4"), 10)
    assert len([m for m in _reports_for(client, "C3") if m.get(150) == fix44.EXEC_NEW]) == 1
    client.logout()
    proc.stop()
    from latlab import helper
    from venue.exchange import ExchangeResult

    summary = helper.result(proc.output(), ExchangeResult, "exchange")
    assert summary.venue["orders"] == 2                          # C3 once, C4: nothing was entered twice
    assert summary.fix_sessions["ALICE"]["gaps"] == 1


@needs_netns
def test_a_reconnect_with_a_stale_sequence_is_logged_out_with_the_reason(exchange):
    ex, _ = exchange
    client = FixClient((ex.address, FIX_PORT), "ALICE", "pw", sender="CLIENT")
    client.connect()
    client.order("C5", "LLTRIG", fix44.SIDE_BUY, 100, 1_000_000)
    assert client.pump_until(lambda: _done(client, "C5"), 10)
    client.drop()
    stale = FixClient((ex.address, FIX_PORT), "ALICE", "pw", sender="CLIENT")  # a client that lost its numbers
    with pytest.raises(FixLogonRefused, match="MsgSeqNum too low, expecting 3 but received 1"):
        stale.connect()
    stale.connect(reset=True)                                             # ResetSeqNumFlag: both start at 1
    stale.order("C6", "LLTRIG", fix44.SIDE_BUY, 100, 1_000_000)
    assert stale.pump_until(lambda: _done(stale, "C6"), 10)
    stale.logout()


def test_tcp_blackhole_refuses_a_bad_direction():
    from latlab.errors import LatlabError
    from latlab.topology import LabHost

    if subprocess.run(["which", "nft"], capture_output=True).returncode != 0:
        pytest.skip("nft not installed")
    with pytest.raises(LatlabError, match="direction must be 'in' or 'out'"), \
            tcp_blackhole(LabHost("x", "127.0.0.1", None), 1, "both", "x"):
        pass
