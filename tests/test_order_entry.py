"""The exchange's order entry: OUCH 4.2 through SoupBinTCP and FIX 4.4, validation, IOC matching."""

from __future__ import annotations

import contextlib
import copy

import pytest

from latlab.wire import fix44, itch, ouch
from latlab.wire import soupbintcp as soup
from venue.matching import MatchingBook
from venue.order_entry import FixSession, OuchHandler, Venue
from venue.soup_session import ServerSession, SoupConfig


def book() -> MatchingBook:
    b = MatchingBook()
    b.apply(itch.encode(itch.make("R", stock_locate=7, stock="LLTRIG")))
    for ref, side, price, shares in ((1, "S", 1_000_100, 100), (2, "S", 1_000_100, 50), (3, "S", 1_000_200, 300),
                                     (4, "B", 999_900, 200)):
        b.apply(itch.encode(itch.make("A", stock_locate=7, order_ref=ref, side=side, shares=shares, stock="LLTRIG",
                                      price=price)))
    return b


def ouch_session() -> tuple[ServerSession, Venue, list[list[bytes]]]:
    published: list[list[bytes]] = []
    venue = Venue(book(), published.append)
    s = ServerSession(SoupConfig(users={"ALICE": "pw"}), {}, OuchHandler(venue), 0.0)
    s.receive(soup.login_request("ALICE", "pw"), 0.0)
    return s, venue, published


def enter(s: ServerSession, token: str, shares: int, price: int, stock: str = "LLTRIG", side: str = "B") -> list:
    order = ouch.INBOUND.make("O", token=token, side=side, shares=shares, stock=stock, price=price,
                              time_in_force=ouch.IOC, firm="LLAB", display="Y", capacity="A", intermarket_sweep="N",
                              cross_type="N", customer_type="R")
    out = soup.FrameReader().feed(s.receive(soup.frame("U", ouch.INBOUND.encode(order)), 1.0))
    return [ouch.OUTBOUND.decode(p.payload) for p in out]


def test_ioc_buy_takes_the_best_asks_in_time_order_and_cancels_the_rest():
    s, venue, published = ouch_session()
    msgs = enter(s, "T1", 200, 1_000_100)
    assert [m.type for m in msgs] == ["A", "E", "E", "C"]
    assert [(m.executed_shares, m.execution_price) for m in msgs[1:3]] == [(100, 1_000_100), (50, 1_000_100)]
    assert msgs[3].decrement_shares == 50 and msgs[3].reason == "I"
    # the executions are published on the feed and applied to the exchange's own book
    assert [itch.decode(m).order_ref for m in published[0]] == [1, 2]
    assert 1 not in venue.book.orders and 2 not in venue.book.orders and 3 in venue.book.orders


@pytest.mark.parametrize(("shares", "price", "stock", "reason"), [
    (0, 1_000_100, "LLTRIG", "Z"), (100, 1_000_150, "LLTRIG", "X"), (100, 0, "LLTRIG", "X"),
    (100, 1_000_100, "NOSUCH", "S")])
def test_bad_orders_are_rejected_and_leave_the_book_intact(shares, price, stock, reason):
    s, venue, published = ouch_session()
    before = copy.deepcopy(venue.book.orders)
    msgs = enter(s, "BAD1", shares, price, stock)
    assert [(m.type, m.reason) for m in msgs] == [("J", reason)]
    assert venue.book.orders == before and not published
    assert venue.counts["rejected"] == 1 and any("rejected" in line for line in venue.log)


def test_duplicate_token_is_ignored():
    s, venue, _ = ouch_session()
    assert enter(s, "T1", 10, 1_000_100)
    assert enter(s, "T1", 10, 1_000_100) == []
    assert venue.counts["duplicate_tokens"] == 1


def test_malformed_ouch_is_counted_and_the_session_lives_on():
    s, _, _ = ouch_session()
    s.receive(soup.frame("U", b"O" + b"\x00" * 10), 1.0)
    assert s.logged_in and s.handler.malformed == 1  # type: ignore[attr-defined]
    assert [m.type for m in enter(s, "T2", 10, 1_000_100)] == ["A", "E"]


def test_fix_roundtrip_and_framing_checks():
    raw = fix44.new_order_single("TRADER", "LATLABX", 2, "CL1", "LLTRIG", fix44.SIDE_BUY, 100, 1_000_100)
    (msg,) = fix44.FixReader().feed(raw)
    assert msg.type == "D" and msg.get(11) == "CL1" and msg.get(38) == "100" and msg.get(44) == "100.0100"
    assert fix44.parse_price(msg.get(44)) == 1_000_100 and msg.get(59) == fix44.TIF_IOC
    reader = fix44.FixReader()
    assert reader.feed(raw[:20]) == [] and len(reader.feed(raw[20:] + raw)) == 2     # split and joined streams
    bad_sum = raw[:-4] + b"000\x01" if not raw.endswith(b"000\x01") else raw[:-4] + b"001\x01"
    with pytest.raises(ValueError, match="CheckSum"):
        fix44.FixReader().feed(bad_sum)
    with pytest.raises(ValueError, match=r"8=FIX\.4\.4"):
        fix44.FixReader().feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(ValueError, match="over"):
        fix44.FixReader(max_length=64).feed(raw)


def fix_session() -> tuple[FixSession, Venue]:
    venue = Venue(book(), lambda msgs: None)
    return FixSession(venue, {"ALICE": "pw"}, "LATLABX", 0.0), venue


def logon(user: str = "ALICE", password: str = "pw") -> bytes:
    return fix44.encode(fix44.LOGON, "CLIENT", "LATLABX", 1, [(98, 0), (108, 1), (553, user), (554, password)])


def test_fix_logon_order_and_execution_reports():
    s, _ = fix_session()
    (ack,) = fix44.FixReader().feed(s.receive(logon(), 0.0))
    assert ack.type == fix44.LOGON and ack.get(56) == "CLIENT"
    order = fix44.new_order_single("CLIENT", "LATLABX", 2, "CL1", "LLTRIG", fix44.SIDE_BUY, 200, 1_000_100)
    reports = fix44.FixReader().feed(s.receive(order, 0.1))
    assert [r.get(150) for r in reports] == ["0", "F", "F", "4"]
    assert [r.get(32) for r in reports[1:3]] == ["100", "50"] and reports[1].get(31) == "100.0100"
    assert [int(r.get(34)) for r in reports] == [2, 3, 4, 5]  # 1 was the logon answer
    bad = fix44.new_order_single("CLIENT", "LATLABX", 3, "CL2", "LLTRIG", fix44.SIDE_BUY, 0, 1_000_100)
    (rej,) = fix44.FixReader().feed(s.receive(bad, 0.2))
    assert rej.get(150) == fix44.EXEC_REJECTED and "shares" in rej.get(58)
    assert [m.type for m in fix44.FixReader().feed(s.tick(1.3))] == [fix44.HEARTBEAT]


def test_fix_bad_logon_and_silence():
    s, _ = fix_session()
    (out,) = fix44.FixReader().feed(s.receive(logon(password="nope"), 0.0))
    assert out.type == fix44.LOGOUT and s.closed == "logon rejected"
    s2, _ = fix_session()
    s2.receive(logon(), 0.0)
    s2.tick(2.6)
    assert s2.closed and s2.closed.startswith("silent")
    s3, _ = fix_session()
    s3.receive(b"8=FIX.4.4\x019=5\x0135=0\x0110=999\x01", 0.0)
    assert s3.closed and s3.closed.startswith("garbage")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def loopback_exchange():
    """The exchange in this process on loopback (no feed is sent): drive it with poll()."""
    from venue.exchange import Exchange, ExchangeConfig

    cfg = ExchangeConfig(iface="127.0.0.1", soup_port=_free_port(), fix_port=_free_port(), users={"TRADER": "tr4der"})
    ex = Exchange(cfg)
    yield ex
    for conn in list(ex.conns.values()):
        conn.sock.close()
    for key in list(ex.sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    ex.feed.sock.close()


def _logged_in(ex, rcvbuf: int = 0):
    """A raw client socket logged in as TRADER (its receive buffer shrunk when rcvbuf > 0), and its Conn."""
    import socket
    import time

    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", ex.cfg.soup_port))
    sock.sendall(soup.login_request("TRADER", "tr4der"))
    deadline = time.monotonic() + 10
    while not any(c.session.user == "TRADER" for c in ex.conns.values()) and time.monotonic() < deadline:
        ex.poll(0.01)
    [conn] = ex.conns.values()
    return sock, conn


def test_exchange_times_the_first_order_not_a_heartbeat(loopback_exchange):
    """Wire-to-wire ends at the first order after a trigger: a heartbeat that comes first is not an answer."""
    from trader.trader_core import OrderTemplate, token_for

    ex = loopback_exchange
    sock, conn = _logged_in(ex)
    with sock:
        for _ in range(3):
            sock.sendall(soup.frame("R"))
            ex.poll(0.05)
        assert conn.first_rx == 0
        sock.sendall(OrderTemplate.ouch("LLTRIG").fill(token_for("AA", 1), 100, 1_000_000))
        for _ in range(20):
            ex.poll(0.01)
            if conn.first_rx:
                break
        assert conn.first_rx > 0 and ex.venue.counts["orders"] == 1


def test_exchange_drops_a_client_that_stops_reading(loopback_exchange):
    """A client that sends orders and never reads the answers is dropped with the reason; nothing blocks."""
    import time

    from trader.trader_core import OrderTemplate, token_for

    ex = loopback_exchange
    sock, conn = _logged_in(ex, rcvbuf=4096)
    template = OrderTemplate.ouch("LLTRIG")
    sock.setblocking(False)
    with sock:
        deadline, k, pending = time.monotonic() + 60, 0, b""
        while conn.sock.fileno() in ex.conns and time.monotonic() < deadline:
            if not pending:
                pending = b"".join(template.fill(token_for("SR", k + i), 100, 1_000_000) for i in range(200))
                k += 200
            with contextlib.suppress(BlockingIOError):
                pending = pending[sock.send(pending):]
            ex.poll(0.001)
        assert conn.sock.fileno() == -1 and not ex.conns
        assert any("stops reading" in line for line in ex.closed_log), ex.closed_log
        assert ex.venue.counts["orders"] > 1000


@pytest.mark.parametrize("heartbeat", ["abc", "nan", "inf", "-5", "0", "1e3", "99999999999999999999999"])
def test_a_bad_heartbtint_ends_that_logon_alone_with_the_reason(heartbeat):
    s, venue = fix_session()
    raw = fix44.encode(fix44.LOGON, "CLIENT", "LATLABX", 1, [(98, 0), (108, heartbeat), (553, "ALICE"), (554, "pw")])
    (out,) = fix44.FixReader().feed(s.receive(raw, 0.0))
    assert out.type == fix44.LOGOUT and "108" in out.get(58) and s.closed and s.user is None
    other, _ = fix_session()                     # another session on the same venue is untouched
    other.venue = venue
    (ack,) = fix44.FixReader().feed(other.receive(logon(), 0.0))
    assert ack.type == fix44.LOGON


@pytest.mark.parametrize(("tag", "value"), [(38, "abc"), (38, "nan"), (38, "1e3"), (44, "inf"), (44, "1.23456"),
                                            (44, "99999999999")])
def test_a_bad_numeric_order_field_gets_a_session_reject_naming_the_tag(tag, value):
    s, venue = fix_session()
    s.receive(logon(), 0.0)
    fields = {11: "CL9", 55: "LLTRIG", 54: fix44.SIDE_BUY, 38: "100", 40: "2", 44: "100.0100", 59: fix44.TIF_IOC}
    fields[tag] = value
    raw = fix44.encode(fix44.NEW_ORDER_SINGLE, "CLIENT", "LATLABX", 2, list(fields.items()))
    (rej,) = fix44.FixReader().feed(s.receive(raw, 0.1))
    assert rej.type == fix44.REJECT and rej.get(371) == str(tag) and rej.get(373) == "6" and rej.get(45) == "2"
    assert not s.closed and venue.counts["orders"] == 0
    order = fix44.new_order_single("CLIENT", "LATLABX", 3, "CL1", "LLTRIG", fix44.SIDE_BUY, 10, 1_000_100)
    assert [r.get(150) for r in fix44.FixReader().feed(s.receive(order, 0.2))] == ["0", "F"]


def _fix_reports(qty: int, price: int, side: str = fix44.SIDE_BUY) -> list:
    s, _ = fix_session()
    s.receive(logon(), 0.0)
    order = fix44.new_order_single("CLIENT", "LATLABX", 2, "CL1", "LLTRIG", side, qty, price)
    return fix44.FixReader().feed(s.receive(order, 0.1))


@pytest.mark.parametrize(("qty", "price"), [(200, 1_000_100), (120, 1_000_100), (150, 1_000_100), (500, 1_000_200),
                                            (10, 999_000), (0, 1_000_100)])
def test_every_execution_report_states_the_running_totals(qty, price):
    """CumQty = sum of LastQty; LeavesQty = OrderQty - CumQty while open, 0 when done; AvgPx = the VWAP."""
    from decimal import Decimal

    cum, notional = 0, Decimal(0)
    reports = _fix_reports(qty, price)
    for r in reports:
        if r.get(150) == fix44.EXEC_TRADE:
            cum += int(r.get(32))
            notional += int(r.get(32)) * Decimal(r.get(31))
        done = r.get(39) in ("2", "4", "8")
        assert int(r.get(14)) == cum
        assert int(r.get(151)) == (0 if done else int(r.get(38)) - cum)
        assert Decimal(r.get(6)) == (notional / cum if cum else Decimal(0)).quantize(Decimal("0.00000001"))
    assert reports[-1].get(39) in ("2", "4", "8")
    if reports[0].get(150) == fix44.EXEC_NEW:
        assert reports[0].get(151) == str(qty) and reports[0].get(14) == "0" and reports[0].get(39) == "0"


def test_a_200_share_order_filled_100_then_50_then_canceled_reads_as_fix_says():
    new, f1, f2, cxl = _fix_reports(200, 1_000_100)
    assert (new.get(14), new.get(151), new.get(39)) == ("0", "200", "0")
    assert (f1.get(14), f1.get(151), f1.get(39)) == ("100", "100", "1")
    assert (f2.get(14), f2.get(151), f2.get(39)) == ("150", "50", "1")
    assert (cxl.get(14), cxl.get(151), cxl.get(39), cxl.get(6)) == ("150", "0", "4", "100.01")


def test_ouch_timestamps_are_since_midnight_and_match_numbers_are_the_feeds():
    import time

    s, _, published = ouch_session()
    enter(s, "T1", 120, 1_000_100)             # takes ref 1 and 20 of ref 2: match numbers 1, 2
    msgs = enter(s, "T2", 330, 1_000_200)      # the rest of ref 2 and ref 3: match numbers 3, 4
    day = 86_400 * 10**9
    assert all(0 <= m.timestamp < day for m in msgs)
    assert abs(msgs[0].timestamp - time.time_ns() % day) < 5 * 10**9 or time.time_ns() % day < 5 * 10**9
    feed = [itch.decode(m) for m in published[1]]
    assert [m.match_number for m in msgs if m.type == "E"] == [e.match_number for e in feed] == [3, 4]
    assert [e.order_ref for e in feed] == [2, 3]


def test_exchange_refuses_a_second_soupbintcp_login_of_the_same_user(loopback_exchange):
    import socket
    import time

    ex = loopback_exchange
    sock, conn = _logged_in(ex)
    second = socket.create_connection(("127.0.0.1", ex.cfg.soup_port), timeout=5)
    second.sendall(soup.login_request("TRADER", "tr4der"))
    deadline = time.monotonic() + 10
    while not any("already logged in" in line for line in ex.closed_log) and time.monotonic() < deadline:
        ex.poll(0.01)
    answer = soup.FrameReader().feed(second.recv(4096))
    assert [p.type for p in answer] == ["J"] and conn.session.logged_in
    assert any("already logged in" in line for line in ex.closed_log)
    sock.close()
    second.close()


FLOOD = """
import socket, sys, time
held = []
for _ in range(int(sys.argv[2])):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5))
    except OSError:
        pass
print(len(held), flush=True)
time.sleep(float(sys.argv[3]))
"""


def _order_answered(sock, token: str) -> bool:
    order = ouch.INBOUND.make("O", token=token, side="B", shares=10, stock="NOSUCH", price=1_000_100,
                              time_in_force=ouch.IOC, firm="LLAB", display="Y", capacity="A", intermarket_sweep="N",
                              cross_type="N", customer_type="R")
    sock.sendall(soup.frame("U", ouch.INBOUND.encode(order)))
    return True


def _serve_until(ex, done, seconds: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        ex.poll(0.01)


def test_a_connection_flood_to_the_descriptor_limit_does_not_stop_the_exchange(loopback_exchange):
    import os
    import resource
    import subprocess
    import sys

    ex = loopback_exchange
    sock, conn = _logged_in(ex)
    sock.settimeout(5)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    used = {int(fd) for fd in os.listdir("/proc/self/fd")}
    limit = next(n for n in range(1, 1 << 16) if sum(fd not in used for fd in range(n)) == 6)  # 6 free below it
    flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(ex.cfg.soup_port), "14", "2"], stdout=subprocess.PIPE,
                             text=True)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))   # a real EMFILE after a few accepts
        _serve_until(ex, lambda: ex.accept_failures > 0)
        assert ex.accept_failures > 0
        _order_answered(sock, "F1")                                     # the logged-in session is served
        got = _answers(ex, sock, soup.FrameReader(), lambda got: any(p.type == "S" for p in got))
        assert [ouch.OUTBOUND.decode(p.payload).type for p in got if p.type == "S"] == ["J"]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        flood.wait(timeout=20)
    # the flood is gone: its descriptors are free and a new login goes through
    _serve_until(ex, lambda: len(ex.conns) == 1, 5)
    second = _logged_in_again(ex)
    assert conn.session.logged_in and second
    sock.close()


def _answers(ex, sock, reader, enough) -> list:
    """Serve the exchange while reading what it sends on `sock`, until `enough(got)` (or 10 s)."""
    got: list = []
    sock.settimeout(0.01)

    def read() -> bool:
        with contextlib.suppress(TimeoutError):
            got.extend(reader.feed(sock.recv(4096)))
        return enough(got)

    _serve_until(ex, read)
    return got


def _logged_in_again(ex) -> bool:
    import socket

    s = socket.create_connection(("127.0.0.1", ex.cfg.fix_port), timeout=5)
    s.sendall(fix44.encode(fix44.LOGON, "CLIENT", "LATLABX", 1, [(98, 0), (108, 30), (553, "TRADER"),
                                                                  (554, "tr4der")]))
    got = _answers(ex, s, fix44.FixReader(), bool)
    s.close()
    return bool(got) and got[0].type == fix44.LOGON


def test_connections_past_max_sessions_are_refused(loopback_exchange):
    import subprocess
    import sys

    ex = loopback_exchange
    ex.cfg = ex.cfg.model_copy(update={"max_sessions": 3})
    sock, conn = _logged_in(ex)
    flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(ex.cfg.soup_port), "6", "2"], stdout=subprocess.PIPE,
                             text=True)
    try:
        _serve_until(ex, lambda: ex.refused >= 4)
        assert ex.refused == 4 and len(ex.conns) == 3 and conn.session.logged_in
    finally:
        flood.wait(timeout=20)
    sock.close()


def _fix_exchange(**cfg_fields):
    """An exchange in this process on loopback with FIX users SLOW and FAST (no feed is sent)."""
    from venue.exchange import Exchange, ExchangeConfig

    cfg = ExchangeConfig(iface="127.0.0.1", soup_port=_free_port(), fix_port=_free_port(),
                         users={"SLOW": "pw", "FAST": "pw"}, **cfg_fields)
    ex = Exchange(cfg)
    ex.book.apply(itch.encode(itch.make("R", stock_locate=7, stock="LLTRIG")))
    ex.book.apply(itch.encode(itch.make("A", stock_locate=7, order_ref=90_001, side="S", shares=500, stock="LLTRIG",
                                        price=1_000_000)))
    return ex


def _close(ex) -> None:
    for conn in list(ex.conns.values()):
        conn.sock.close()
    for key in list(ex.sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    ex.feed.sock.close()


def _fix_answers(ex, socks: dict, until, timeout: float = 10.0) -> dict:
    """Poll the exchange and read each socket until until(answers) holds; {user: [(monotonic, message)]}."""
    import time

    answers: dict = {user: [] for user in socks}
    readers = {user: fix44.FixReader() for user in socks}
    deadline = time.monotonic() + timeout
    while not until(answers) and time.monotonic() < deadline:
        ex.poll(0.001)
        for user, sock in socks.items():
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            answers[user] += [(time.monotonic(), m) for m in readers[user].feed(data)]
    return answers


def test_the_venue_holds_what_a_distant_session_sends_and_not_a_colocated_one():
    import socket
    import time

    ex = _fix_exchange(extra_response_us=80_000, colocated=["FAST"])
    try:
        socks = {user: socket.create_connection(("127.0.0.1", ex.cfg.fix_port)) for user in ("SLOW", "FAST")}
        for sock in socks.values():
            sock.setblocking(False)
        for user, sock in socks.items():
            sock.sendall(fix44.encode(fix44.LOGON, user, "LATLABX", 1, [(98, 0), (108, 30), (553, user),
                                                                         (554, "pw")]))
        _fix_answers(ex, socks, lambda a: all(a.values()))  # logons are not held
        start = time.monotonic()
        for user, sock in socks.items():  # both orders at once
            sock.sendall(fix44.new_order_single(user, "LATLABX", 2, f"{user}1", "LLTRIG", fix44.SIDE_BUY, 10,
                                                1_000_000))
        answers = _fix_answers(ex, socks, lambda a: all(len(v) >= 2 for v in a.values()))  # New, then the fill
        (slow_at, slow), (fast_at, fast) = answers["SLOW"][0], answers["FAST"][0]
        assert slow.get(11) == "SLOW1" and fast.get(11) == "FAST1" and slow.get(150) == fix44.EXEC_NEW
        assert slow_at - start >= 0.08 and fast_at < slow_at  # held 80 ms by the venue itself; FAST is not
    finally:
        _close(ex)


def test_a_taker_fee_is_charged_per_share_and_stated_in_the_fill_and_the_summary():
    import socket

    ex = _fix_exchange(taker_fee=30, maker_fee=-20)  # $0.003 a share; the resting side gets $0.002 back
    try:
        sock = socket.create_connection(("127.0.0.1", ex.cfg.fix_port))
        sock.setblocking(False)
        sock.sendall(fix44.encode(fix44.LOGON, "SLOW", "LATLABX", 1, [(98, 0), (108, 30), (553, "SLOW"),
                                                                       (554, "pw")]))
        sock.sendall(fix44.new_order_single("SLOW", "LATLABX", 2, "F1", "LLTRIG", fix44.SIDE_BUY, 200, 1_000_000))
        answers = _fix_answers(ex, {"SLOW": sock}, lambda a: any(m.get(150) == fix44.EXEC_TRADE
                                                                 for _, m in a["SLOW"]))
        [trade] = [m for _, m in answers["SLOW"] if m.get(150) == fix44.EXEC_TRADE]
        assert trade.get(32) == "200" and trade.get(12) == "0.6000" and trade.get(13) == "3"   # 200 × $0.003
        assert ex.venue.fees == {"SLOW": 6000} and ex.venue.maker_fees == -4000 and ex.venue.executed == {"SLOW": 200}
    finally:
        _close(ex)


def test_quotes_mode_refuses_a_quote_life_or_a_hold_that_does_not_fit_its_round():
    from pydantic import ValidationError

    from venue.exchange import ExchangeConfig

    ok = ExchangeConfig(iface="127.0.0.1", mode="quotes", interval_ms=20, answer_timeout_ms=15, extra_response_us=8000)
    assert ok.quote_locate == ok.trigger_locate + 1
    with pytest.raises(ValidationError, match="below interval_ms"):
        ExchangeConfig(iface="127.0.0.1", mode="quotes", interval_ms=10, answer_timeout_ms=15)
    with pytest.raises(ValidationError, match="below a quote's life"):
        ExchangeConfig(iface="127.0.0.1", mode="quotes", interval_ms=20, answer_timeout_ms=15,
                       extra_response_us=15_000)
    with pytest.raises(ValidationError, match="quotes: 1 or more"):
        ExchangeConfig(iface="127.0.0.1", mode="quotes", interval_ms=20, answer_timeout_ms=15, quotes=[(0, 0)])
