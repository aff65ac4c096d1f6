"""Tick-to-trade across namespace hosts: the bench case with its race, tshark on the simulator's traffic,
bad clients against the exchange, and the trader's fail safe when the exchange goes away."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from latlab import helper
from latlab.netstat import namespace_counters
from latlab.procs import Proc, running
from latlab.topology import BridgeSpec, bridge_lab
from latlab.wire import soupbintcp as soup
from trader.soup_client import LoginRejected, SoupClient
from trader.t2t_run import TraderSetup, run_t2t
from trader.trader import TraderResult
from venue.exchange import ExchangeConfig, ExchangeResult

from .conftest import REPO, latlab_cmd, needs_netns

pytestmark = needs_netns
ROOT = "10.79.5.254/24"


@pytest.fixture(scope="module")
def tlab():
    spec = BridgeSpec(ipaddress.IPv4Network("10.79.5.0/24"), ("ex", "t1", "t2"), {"ex": 0, "t1": 1, "t2": 1})
    tag = secrets.token_hex(3)
    with bridge_lab(spec, tag, root_address=ROOT) as lab:
        yield lab
    assert not any(tag in n for n in os.listdir("/run/netns"))


def test_bench_tick_to_trade_case_with_race(tmp_path):
    config = tmp_path / "t2t.yaml"
    config.write_text(yaml.safe_dump({
        "lab": {"hosts": {"a": {"address": "10.77.7.1/24"}, "b": {"address": "10.77.7.2/24"}}},
        "tick_to_trade": {"network": "10.79.6.0/24", "triggers": 300, "rounds": 1, "interval_ms": 1,
                          "race": {"triggers": 150}},
        "budgets": {"tick_to_trade_us": 1_000_000}}))
    out = subprocess.run(latlab_cmd("bench", "--config", str(config), "--results", str(tmp_path / "r")),
                         capture_output=True, text=True, cwd=REPO, timeout=300, env={**os.environ, "CI": "true"})
    assert out.returncode == 0, out.stderr
    [run] = list((tmp_path / "r").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    cases = {(c["group"], c["engine"]): c for c in summary["cases"]}
    trader = cases[("tick-to-trade OUCH (busy-poll)", "latlab trader (c)")]
    # the order round trip at the trader (order out → the exchange's answer seen), one per order
    round_trip = cases[("tick-to-trade OUCH (busy-poll) order round trip", "latlab trader (c)")]
    assert round_trip["stats_ns"]["count"] >= 290 and round_trip["stats_ns"]["p50"] > 0
    # each path against its configured budget (1 s for tick-to-trade: within on any machine), in the report too
    budgets = {b["path"]: b for b in summary["budgets"]["rows"]}
    budget = budgets["tick_to_trade"]
    assert budget["engine"] == "latlab trader (c)" and budget["within"]
    assert budget["p50_us"] == pytest.approx(trader["stats_ns"]["p50"] / 1000)
    assert budget["headroom_p99_us"] == pytest.approx(1_000_000 - trader["stats_ns"]["p99"] / 1000)
    assert budgets["order_round_trip"]["budget_us"] == 10_000 and set(budgets) == {"tick_to_trade", "order_round_trip"}
    assert "latency budgets" in out.stdout and "tick_to_trade ≤ 1,000,000: within" in out.stdout
    assert "not measured in this run: market_data_one_way (≤ 10,000)" in out.stdout
    floor = cases[("tick-to-trade OUCH (busy-poll)", "floor (UDP→TCP reflector)")]
    assert trader["stats_ns"]["count"] >= 290 and floor["stats_ns"]["count"] >= 290
    assert trader["figures"]["orders"] >= 290 and trader["figures"]["fills"] >= 290
    assert "app cost p50 µs" in trader["figures"]
    assert trader["stats_ns"]["count"] <= trader["figures"]["orders"]       # only orders end a wire-to-wire
    f = trader["figures"]
    assert f["app cost p50 95% CI low µs"] <= f["app cost p50 µs"] <= f["app cost p50 95% CI high µs"]
    assert f["trigger pairs"] >= 250 and "resampled jointly" in trader["note"]  # the paired floor's pairs
    from_rx = cases[("tick-to-trade OUCH (busy-poll) from kernel rx", "latlab trader (c)")]
    floor_rx = cases[("tick-to-trade OUCH (busy-poll) from kernel rx", "floor (UDP→TCP reflector)")]
    assert from_rx["stats_ns"]["count"] >= 290 and floor_rx["stats_ns"]["count"] >= 290
    assert from_rx["stats_ns"]["p50"] < trader["stats_ns"]["p50"]           # the feed's delivery left out
    assert "app cost p50 µs" in from_rx["figures"]
    stages = {e: c for (g, e), c in cases.items() if g.endswith("stages")}
    for name in ("decoded", "book", "decision", "risk", "encoded", "sent"):
        assert stages[f"stage {name}"]["stats_ns"]["count"] >= 290
    # the stages add up to the whole in-trader time (same rows)
    assert stages["stage application (decode → encoded)"]["stats_ns"]["p50"] < \
        stages["stage in trader (kernel rx → sent)"]["stats_ns"]["p50"]
    fast = cases[("tick-to-trade race", "minimal risk (quantity only)")]
    full = cases[("tick-to-trade race", "full risk + sqlite store")]
    wins = fast["figures"]["full wins %"] + fast["figures"]["minimal wins %"]
    assert 95 <= wins <= 100.0001 and fast["figures"]["triggers both answered"] >= 140
    assert full["stats_ns"]["count"] >= 140
    assert "tick-to-trade" in out.stdout
    # the notebook shows the stage breakdown of this run
    os.environ["LATLAB_RUN"], os.environ["LATLAB_PLOTS"] = str(run), str(tmp_path / "plots")
    try:
        nb = nbformat.read(REPO / "notebooks" / "latency_analysis.ipynb", as_version=4)
        NotebookClient(nb, timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        del os.environ["LATLAB_RUN"], os.environ["LATLAB_PLOTS"]
    assert (tmp_path / "plots" / run.name / "tick_to_trade.png").stat().st_size > 10_000
    assert "application cost p50" in (run / "report.html").read_text()  # the run's own page, written at its end
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "app cost p50 µs" in text
    assert "tick_to_trade ≤ 1,000,000: within" in text and "latency budgets" in (run / "report.html").read_text()


def test_paired_floor_answers_only_its_own_triggers(tlab, tmp_path):
    """Paired mode: one busy-polling loop serves the trader and the floor; the exchange sends one trigger of each
    pair to the floor's group (the pairs in alternating order), and each answers only its own."""
    n = 120
    run = run_t2t(tlab, [TraderSetup("t1", "TRADER", "AA", receive="busy-poll", paired_floor="FLOOR")],
                  {"triggers": n, "interval_ms": 1, "group": "239.77.1.8", "floor_group": "239.77.1.9"}, tmp_path,
                  "paired")
    to_floor = run.to_floor
    assert to_floor.reshape(-1, 2).sum(axis=1).tolist() == [1] * (n // 2)   # one of each pair
    assert (to_floor[2::2] != to_floor[:-2:2]).all()                        # ... the pairs alternating
    trader, floor = run.users.index("TRADER"), run.users.index("FLOOR")
    assert (run.t_rx[~to_floor, trader] > 0).sum() >= n // 2 - 2 and (run.t_rx[to_floor, trader] == 0).all()
    assert (run.t_rx[to_floor, floor] > 0).sum() >= n // 2 - 2 and (run.t_rx[~to_floor, floor] == 0).all()
    assert (run.filled[to_floor] == -1).all() and (run.filled[~to_floor] == trader).sum() >= n // 2 - 2
    stats = run.traders["TRADER"]
    assert stats.floor_datagrams == n // 2 and stats.orders == n // 2 and not stats.killed
    assert len(run.stages["FLOOR"]) == n // 2 and len(run.stages["TRADER"]) == n // 2
    assert (run.stages["FLOOR"][:, 7] >= run.stages["FLOOR"][:, 1]).all()
    assert len(run.wire_to_wire("FLOOR")) >= n // 2 - 2


def test_floor_as_its_own_process(tlab, tmp_path):
    """The other floor mode (and the one for the Python engine): the reflector alone in its process."""
    run = run_t2t(tlab, [TraderSetup("t1", "FLOOR", "FL", role="floor", receive="busy-poll")],
                  {"triggers": 40, "interval_ms": 1, "group": "239.77.1.10"}, tmp_path, "floor")
    assert len(run.wire_to_wire("FLOOR")) >= 38 and not run.to_floor.any()
    assert run.traders["FLOOR"].role == "floor" and len(run.stages["FLOOR"]) >= 38


def _tshark_fields(pcap, decode: list[str], fields: list[str], display: str) -> list[list[str]]:
    argv = ["tshark", "-r", str(pcap), *[a for d in decode for a in ("-d", d)], "-Y", display, "-T", "fields",
            "-E", "separator=|", *[a for f in fields for a in ("-e", f)]]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split("|") for line in out.stdout.splitlines() if line.strip()]


def _captured_marker(src, dst, pcap, marker: bytes, timeout_s: float = 30.0) -> None:
    """Send a datagram holding `marker` from src to dst (a port nobody serves) until the capture file holds it:
    the capture is running and has written what came before."""
    deadline = time.monotonic() + timeout_s
    send = f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto({marker!r}, ({dst.address!r}, 9))"
    while time.monotonic() < deadline:
        subprocess.run(src.command([sys.executable, "-c", send]), check=True, timeout=30)
        for _ in range(50):
            if pcap.exists() and marker in pcap.read_bytes():
                return
            time.sleep(0.01)
    raise AssertionError(f"the capture never held {marker!r}")


def test_tshark_decodes_the_simulators_traffic(tlab, tmp_path):
    ex = tlab.hosts["ex"]
    pcap = tmp_path / "t2t.pcap"
    os.chmod(tmp_path, 0o777)
    capture = Proc(ex.command(["tshark", "-i", ex.ifname, "-w", str(pcap), "-f", "udp or tcp"]),
                   tmp_path / "tshark.log", "tshark")
    try:
        capture.wait_for_output("Capturing on", 20)
        _captured_marker(ex, tlab.hosts["t1"], pcap, b"latlab-capture-start")
        run = run_t2t(tlab, [TraderSetup("t1", "OUCH1", "OU", receive="blocking"),
                             TraderSetup("t2", "FIX1", "FX", protocol="fix", receive="blocking"),      # compiled
                             TraderSetup("t2", "FIXPY", "FP", engine="python", protocol="fix", receive="blocking")],
                      {"triggers": 20, "interval_ms": 5, "group": "239.77.1.5"}, tmp_path, "cap")
        _captured_marker(ex, tlab.hosts["t1"], pcap, b"latlab-capture-end")  # everything before it is in too
    finally:
        capture.stop()
    assert [run.traders[u].orders for u in ("OUCH1", "FIX1", "FIXPY")] == [20, 20, 20]
    cfg = ExchangeConfig(iface=ex.address)
    mold = _tshark_fields(pcap, [f"udp.port=={cfg.port},moldudp64"], ["moldudp64.session", "moldudp64.sequence",
                                                                      "moldudp64.count"], "moldudp64")
    assert mold and all(r[0].strip() == "LATLAB0001" for r in mold)
    seqs = [int(r[1]) for r in mold if 0 < int(r[2]) < 0xFFFF]
    assert seqs == sorted(seqs) and seqs[0] == 1
    logins = _tshark_fields(pcap, [f"tcp.port=={cfg.soup_port},soupbintcp"],
                            ["soupbintcp.packet_type", "soupbintcp.username"], "soupbintcp.username")
    assert logins and logins[0][1].strip() == "OUCH1"
    orders = _tshark_fields(pcap, [f"tcp.port=={cfg.soup_port},soupbintcp"],
                            ["ouch.order_token", "ouch.buy_sell_indicator", "ouch.shares", "ouch.stock", "ouch.price"],
                            f"ouch.stock && tcp.dstport == {cfg.soup_port}")
    assert len(orders) >= 20
    token, side, shares, stock, price = orders[0]
    assert token.startswith("OU") and side.strip("'") == "B" and int(shares) == 100 and stock.strip() == "LLTRIG"
    assert float(price) in (100.0, 1_000_000)
    fills = _tshark_fields(pcap, [f"tcp.port=={cfg.soup_port},soupbintcp"],
                           ["ouch.order_token", "ouch.executed_shares"], "ouch.executed_shares")
    assert fills and all(int(r[1]) > 0 for r in fills)
    fix = _tshark_fields(pcap, [f"tcp.port=={cfg.fix_port},fix"],
                         ["fix.MsgType", "fix.ClOrdID", "fix.OrderQty", "fix.Symbol"],
                         f"fix.OrderQty && tcp.dstport == {cfg.fix_port}")
    for prefix in ("FX", "FP"):  # the compiled trader's orders and the reference's
        mine = [r for r in fix if r[1].startswith(prefix)]
        assert len(mine) >= 20 and all(r[0] == "D" and r[2] == "100" and r[3] == "LLTRIG" for r in mine), fix[:3]
    reports = _tshark_fields(pcap, [f"tcp.port=={cfg.fix_port},fix"], ["fix.ExecType"], "fix.ExecType")
    exec_types = {v for r in reports for v in r[0].split(",")}   # one segment may carry several reports
    assert "0" in exec_types and exec_types & {"F", "4"}          # new, then filled or canceled (IOC)


def test_exchange_survives_bad_clients_and_keeps_serving(tlab, tmp_path):
    ex = tlab.hosts["ex"]
    cfg = ExchangeConfig(iface=ex.address, group="239.77.1.6", expect=["GOOD"], users={"GOOD": "secret"},
                         triggers=30, interval_ms=5, login_s=1.0, wait_login_s=30, out=str(tmp_path / "ex.npz"))
    (tmp_path / "ex.json").write_text(cfg.model_dump_json())
    address = (ex.address, cfg.soup_port)
    with running(ex.command([sys.executable, "-m", "venue.exchange", "--config", str(tmp_path / "ex.json")]),
                 tmp_path / "ex.log", "exchange", ready="READY") as proc:
        with contextlib.ExitStack() as stack:
            garbage = stack.enter_context(socket.create_connection(address, timeout=5))
            garbage.sendall(b"\x00\x00GARBAGE")
            oversized = stack.enter_context(socket.create_connection(address, timeout=5))
            oversized.sendall(b"\xff\xf0L" + b"x" * 100)
            idle = stack.enter_context(socket.create_connection(address, timeout=5))  # never logs in
            with pytest.raises(LoginRejected) as rejected:
                SoupClient.connect(address, "GOOD", "wrong")
            assert rejected.value.reason == "A"
            with pytest.raises(LoginRejected):
                SoupClient.connect(address, "GOOD", "secret", session="NOSUCH")
            fix = stack.enter_context(socket.create_connection((ex.address, cfg.fix_port), timeout=5))
            fix.sendall(b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01")  # bad checksum
            idle.settimeout(5)
            assert idle.recv(100) == b"", "no login within 1 s: the exchange closes it"  # the timeout has passed
            good = SoupClient.connect(address, "GOOD", "secret")
            order = b"O" + b"T1".ljust(14) + b"B" + (0).to_bytes(4, "big") + b"LLTRIG  " + (10**6).to_bytes(4, "big")
            order += (0).to_bytes(4, "big") + b"LLABYAN" + (0).to_bytes(4, "big") + b"NR"
            good.send(order)                                         # zero shares: rejected, the session lives
            answers: list[soup.Packet] = []
            deadline = time.monotonic() + 10
            while not any(p.type == "S" for p in answers) and time.monotonic() < deadline:
                answers += good.receive(timeout=0.5)
            assert any(p.type == "S" and p.payload[:1] == b"J" for p in answers)
            for sock in (garbage, oversized, idle):
                sock.settimeout(5)
                assert sock.recv(100) == b"", "the exchange closes a bad connection"
            good.logout()
        proc.wait(timeout=60)
    summary = helper.result(proc.output(), ExchangeResult)
    closed = " | ".join(summary.closed)
    for reason in ("garbage", "no login within 1 s", "login rejected: not authorized", "session 'NOSUCH'",
                   "CheckSum"):
        assert reason in closed, closed
    assert summary.venue["rejected"] >= 1 and summary.status == "ok"


def _wait_for_datagrams(host, n: int, timeout_s: float = 60.0) -> None:
    """Until the host's kernel has taken in n more UDP datagrams than when called."""
    start = namespace_counters(host)["Udp"]["InDatagrams"]
    deadline = time.monotonic() + timeout_s
    while namespace_counters(host)["Udp"]["InDatagrams"] - start < n:
        assert time.monotonic() < deadline, f"{host.name} took in fewer than {n} datagrams"
        time.sleep(0.02)


def test_trader_stops_when_the_exchange_is_lost(tlab, tmp_path):
    ex, t1 = tlab.hosts["ex"], tlab.hosts["t1"]
    cfg = ExchangeConfig(iface=ex.address, group="239.77.1.7", expect=["TRADER"], triggers=100_000, interval_ms=5,
                         out=str(tmp_path / "ex.npz"), users={"TRADER": "tr4der"})
    (tmp_path / "ex.json").write_text(cfg.model_dump_json())
    trader_cfg = {"iface": t1.address, "exchange": ex.address, "group": cfg.group, "receive": "blocking",
                  "out": str(tmp_path / "t.npz"), "password": "tr4der"}
    (tmp_path / "t.json").write_text(json.dumps(trader_cfg))
    with running(ex.command([sys.executable, "-m", "venue.exchange", "--config", str(tmp_path / "ex.json")]),
                 tmp_path / "ex.log", "exchange", ready="READY") as exchange, \
            running(t1.command([sys.executable, "-m", "trader.trader", "--config", str(tmp_path / "t.json")]),
                    tmp_path / "t.log", "trader", ready="READY") as trader:
        _wait_for_datagrams(t1, 50)  # the feed is flowing to the trader: triggers, orders
        os.kill(exchange.popen.pid, signal.SIGKILL)
        trader.wait(timeout=20)
    result = helper.result(trader.output(), TraderResult)
    assert result.status == "exchange_lost" and "exchange connection lost" in result.killed
    assert result.orders > 0
