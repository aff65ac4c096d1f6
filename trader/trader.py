"""The trader side of tick-to-trade: `python -m trader.trader --config FILE.json`.

Joins the exchange's multicast feed, logs in to its order port, and runs the per-packet path
(compiled by default, the Python reference with engine "python") until the feed ends. One row of
stage timestamps per order goes to the output file. Fail safe: a feed gap or a lost exchange
connection trips the kill switch, and the summary says why.
With `role: floor` it is the floor instead: every datagram answered by a fixed frame, no logic.
"""

from __future__ import annotations

import os
import select
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from latlab.helper import HelperConfig, HelperResult, say_ready, say_result
from latlab.helper_main import start
from latlab.manifest import invariant_tsc
from latlab.mcast import kernel_rx_ns, receiver
from latlab.wire import fix44
from trader._trader import reflect
from trader.risk import RiskLimits
from trader.soup_client import SoupClient
from trader.trader_core import OrderTemplate, TraderCore, TraderSpec, compiled, stage_rows


class TraderConfig(HelperConfig):
    """One trader (or floor) process of tick-to-trade; written as a JSON file (it holds its password)."""

    iface: str
    exchange: str                       # host of the exchange
    group: str = "239.77.1.1"
    port: int = 26490
    soup_port: int = 26491
    fix_port: int = 26492
    user: str = "TRADER"
    password: str = ""
    role: Literal["trader", "floor"] = "trader"
    engine: Literal["c", "python"] = "c"
    protocol: Literal["ouch", "fix"] = "ouch"
    receive: Literal["blocking", "busy-poll"] = "blocking"
    locate: int = Field(51, ge=1, le=65535)
    stock: str = Field("LLTRIG", max_length=8)
    limit: int = Field(1_000_000, ge=1)
    clip: int = Field(100, ge=1)
    prefix: str = Field("AA", min_length=2, max_length=2)
    last_trade: int = 1_000_000
    risk: dict[str, Any] = Field(default_factory=dict)
    store: str = ""                     # sqlite file: the full-risk path also consults it per order
    max_rows: int = Field(100_000, ge=1)
    out: str = "trader.npz"
    # Paired mode (compiled trader): the floor on the same loop, with its own feed group and session;
    # the exchange alternates triggers between the two, so they are measured trigger by trigger.
    floor_group: str = ""
    floor_user: str = "FLOOR"
    floor_prefix: str = Field("FL", min_length=2, max_length=2)
    cpu: int | None = None              # pinned to this CPU


class TraderResult(HelperResult):
    """What the trader (or floor) did: its path's counters (the compiled and the reference path count alike)."""

    status: str
    user: str = ""
    engine: str = ""
    role: str = ""
    replies: dict[str, int] = Field(default_factory=dict)
    rows: int = 0
    packets: int = 0
    messages: int = 0
    malformed: int = 0
    gaps: int = 0
    duplicates: int = 0
    heartbeats: int = 0
    triggers: int = 0
    orders: int = 0
    sent: int = 0
    reply_bytes: int = 0
    passed: int = 0
    rejects: dict[str, int] = Field(default_factory=dict)
    killed: str = ""
    ended: int = 0
    last_trade: int = 0
    stage_clock: str = ""
    floor_rows: int = 0
    floor_datagrams: int = 0
    floor_reply_bytes: int = 0
    warm_orders: int = 0
    fix_seq: int = 0


class SqliteStore:
    """The slower store of the full-risk path: a position limit read, and the order written, per order."""

    def __init__(self, path: str, stock: str, position_limit: int = 10**9) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS limits (stock TEXT PRIMARY KEY, max_position INTEGER)")
        self.db.execute("CREATE TABLE IF NOT EXISTS orders (token BLOB PRIMARY KEY, shares INTEGER, price INTEGER)")
        self.db.execute("INSERT OR REPLACE INTO limits VALUES (?, ?)", (stock, position_limit))
        self.db.commit()
        self.stock = stock
        self.position = 0

    def __call__(self, token: bytes, shares: int, price: int) -> str | None:
        (limit,) = self.db.execute("SELECT max_position FROM limits WHERE stock = ?", (self.stock,)).fetchone()
        if self.position + shares > limit:
            return "position_limit"
        self.db.execute("INSERT INTO orders VALUES (?, ?, ?)", (token, shares, price))
        self.db.commit()
        self.position += shares
        return None


def _login(cfg: TraderConfig) -> tuple[Any, Any]:
    """(client, socket): SoupBinTCP for OUCH, a FIX Logon otherwise."""
    if cfg.protocol == "fix":
        import socket

        sock = socket.create_connection((cfg.exchange, cfg.fix_port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(fix44.encode(fix44.LOGON, cfg.user, "LATLABX", 1, [(98, 0), (108, 1), (553, cfg.user),
                                                                         (554, cfg.password)]))
        reader = fix44.FixReader()
        replies: list[fix44.FixMessage] = []
        while not replies:
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("FIX logon: the exchange closed the connection")
            replies = reader.feed(data)
        if replies[0].type != fix44.LOGON:
            raise ConnectionError(f"FIX logon refused: {replies[0].get(58)}")
        return None, sock
    client = SoupClient.connect((cfg.exchange, cfg.soup_port), cfg.user, cfg.password)
    return client, client.sock


def run(cfg: TraderConfig) -> TraderResult:
    feed = receiver(cfg.group, cfg.port, cfg.iface)
    feed.setblocking(False)
    client, tcp = _login(cfg)
    tcp.setblocking(False)
    rows = stage_rows(cfg.max_rows)
    acks = np.zeros(cfg.max_rows, np.int64)  # per order: when its first answer was seen (the order round trip)
    spec = TraderSpec(locate=cfg.locate, stock=cfg.stock, limit=cfg.limit, clip=cfg.clip, prefix=cfg.prefix,
                      last_trade=cfg.last_trade, risk=RiskLimits(**cfg.risk))
    store = SqliteStore(cfg.store, cfg.stock) if cfg.store else None
    paired = bool(cfg.floor_group)
    if paired and (cfg.engine != "c" or cfg.role != "trader"):
        raise SystemExit("paired mode (floor_group) needs the compiled trader")
    floor_rows = stage_rows(cfg.max_rows if paired else 0)
    floor_client = None
    if paired:
        floor_feed = receiver(cfg.floor_group, cfg.port, cfg.iface)
        floor_feed.setblocking(False)
        floor_client = SoupClient.connect((cfg.exchange, cfg.soup_port), cfg.floor_user, cfg.password)
        floor_client.sock.setblocking(False)
    say_ready()
    busy = cfg.receive == "busy-poll"
    replies = {"bytes": 0}
    status = "ok"
    fix_seq = [2]

    def fix_encode(token: bytes, shares: int, price: int) -> bytes:
        msg = fix44.new_order_single(cfg.user, "LATLABX", fix_seq[0], token.decode(), cfg.stock, fix44.SIDE_BUY,
                                     shares, price)
        fix_seq[0] += 1
        return msg

    engine: Any
    # The floor sends the same order as the trader (so the exchange answers it the same way); only the token
    # changes, to the prefix and the datagram's sequence number.
    template = OrderTemplate.ouch(cfg.stock)
    seq_off = template.token_off + 2

    def floor_frame(prefix: str) -> bytearray:
        return bytearray(template.fill(prefix.encode() + b"0" * 12, cfg.clip, cfg.limit))

    if cfg.role == "floor":
        engine = None
        frame = floor_frame(cfg.prefix)
        nrows = 0
    elif cfg.engine == "c":
        fix = (cfg.user, "LATLABX", cfg.stock, fix_seq[0]) if cfg.protocol == "fix" else None
        engine = compiled(spec, rows, store, tsc=invariant_tsc(), fix=fix, acks=acks)
        if floor_client is not None:
            engine.attach_floor(udp_fd=floor_feed.fileno(), tcp_fd=floor_client.sock.fileno(),
                                frame=floor_frame(cfg.floor_prefix), rows=floor_rows, seq_off=seq_off)
    else:
        engine = TraderCore(spec, rows, store, encode=fix_encode if cfg.protocol == "fix" else None)
    try:
        while True:
            if engine is None:
                why, nrows, read = reflect(udp_fd=feed.fileno(), tcp_fd=tcp.fileno(), frame=frame, rows=rows,
                                           start=nrows, wait_ms=100, busy=busy, seq_off=seq_off)
                replies["bytes"] += read
            elif cfg.engine == "c":
                why = engine.run(feed.fileno(), tcp.fileno(), wait_ms=100, busy=busy)
            else:
                why = _python_round(engine, feed, tcp)
            if why == "end":
                break
            if why in ("send_failed", "exchange_lost"):
                status = "exchange_lost"
                break
            if why == "tcp" and isinstance(engine, TraderCore) and engine.awaiting:
                acks[engine.awaiting - 1] = time.time_ns()
                engine.awaiting = 0
            if why == "tcp" and not _drain_replies(tcp, replies):
                status = "exchange_lost"
                if engine is not None:
                    engine.kill("exchange connection lost: orders stopped (fail safe)")
                break
            for c in (client, floor_client):
                if c is not None:
                    c.heartbeat_if_idle()
    except KeyboardInterrupt:
        status = "interrupted"
    for c in (client, floor_client):
        if c is not None:
            c.logout()
    if client is None:
        tcp.close()
    if engine is None:
        stats: dict[str, Any] = {"rows": nrows}
    else:
        stats = engine.stats()
        nrows = int(stats["rows"])
    tmp = Path(cfg.out + ".tmp.npz")
    np.savez(tmp, stages=rows[:nrows], acks=acks[:nrows], floor_stages=floor_rows[:int(stats.get("floor_rows", 0))])
    os.replace(tmp, cfg.out)
    return TraderResult(status=status, user=cfg.user, engine=cfg.engine, role=cfg.role, replies=replies, **stats)


def _python_round(core: TraderCore, feed: Any, tcp: Any) -> str:
    """The reference loop: wait up to 100 ms, then handle every datagram there."""
    ready, _, _ = select.select([feed, tcp], [], [], 0.1)
    if tcp in ready:
        return "tcp"
    if feed not in ready:
        return "timeout"
    while True:
        try:
            data, anc, _, _ = feed.recvmsg(65536, 256)
        except BlockingIOError:
            return "end" if core.ended else "timeout"
        frame = core.on_packet(data, kernel_rx_ns(anc))
        if frame:
            try:
                tcp.send(frame)
            except OSError:
                core.kill("exchange connection lost: orders stopped (fail safe)")
                return "send_failed"
            if core.nrows:
                core.rows[core.nrows - 1, 7] = time.time_ns()
                core.awaiting = core.nrows
        core.finish_packet()
        if core.ended:
            return "end"


def _drain_replies(tcp: Any, replies: dict[str, int]) -> bool:
    """Read what the exchange sent (acks, executions, heartbeats); False when it closed the connection."""
    while True:
        try:
            data = tcp.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        replies["bytes"] += len(data)


def main(argv: list[str] | None = None) -> int:
    config = start(TraderConfig, "python -m trader.trader", argv)
    say_result(run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
