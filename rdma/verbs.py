"""Verbs ping-pong on pyverbs: RC SEND/RECV, RC RDMA WRITE (each side polls memory), RDMA READ, UD SEND.

Both sides connect over TCP first (the out-of-band exchange: QP number, PSN, GID, buffer address and
rkey as one JSON line each way), then run the timed loop. Timestamps: CLOCK_MONOTONIC in user space,
before posting the work request and after its answer is seen (a completion, or memory changing for
WRITE), so every figure is a round trip, READ included. A completion error raises VerbsError with the
verbs status text and the work request; every QP, CQ, MR and PD is closed and the peer is told.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from latlab.errors import LatlabError

# ibv_wc_status_str(), by status code.
WC_STATUS = ("success", "local length error", "local QP operation error", "local EE context operation error",
             "local protection error", "Work Request Flushed Error", "memory management operation error",
             "bad response error", "local access error", "remote invalid request error", "remote access error",
             "remote operation error", "transport retry counter exceeded", "RNR retry counter exceeded",
             "local RDD violation error", "remote invalid RD request", "aborted error", "invalid EE context number",
             "invalid EE context state", "fatal error", "response timeout error", "general error",
             "TM error", "TM rendezvous pending")
RD_ATOMIC_MAX = 16  # READs in flight per QP, at most (the device may allow fewer)
TESTS = ("send", "write", "read", "ud", "cm")  # cm: RC SEND with rdma_cm connection set-up (pyverbs)
GRH = 40
SEQ = struct.Struct("<Q")
SIGNAL_EVERY = 32
READ_MARKER = 0x5EAD5EAD5EAD5EAD


class VerbsError(LatlabError):
    """A verbs call or completion failed; says which work request and why."""


class PeerGone(LatlabError):
    """The peer did not connect, or stopped answering."""


@dataclass
class Endpoint:
    qpn: int
    psn: int
    gid: str
    addr: int
    rkey: int


@dataclass
class Options:
    test: str = "send"
    size: int = 64
    iterations: int = 1000
    warmup: int = 100
    duration_s: float = 0.0
    inline: bool = True
    events: bool = False
    timeout_s: float = 10.0
    fault: str = ""  # fault injection for tests of error reporting: "bad-rkey" corrupts the peer's rkey


def status_text(status: int) -> str:
    return WC_STATUS[status] if 0 <= status < len(WC_STATUS) else f"status {status}"


class Resources:
    """Context, PD, CQ (with a completion channel for event mode), one MR and one QP. close() frees all."""

    def __init__(self, device: str, port: int, gid_index: int, opts: Options) -> None:
        from pyverbs import enums as e
        from pyverbs.cq import CQ, CompChannel
        from pyverbs.device import Context
        from pyverbs.mr import MR
        from pyverbs.pd import PD
        from pyverbs.pyverbs_error import PyverbsError, PyverbsRDMAError
        from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr

        self.e = e
        self.opts = opts
        self.port, self.gid_index = port, gid_index
        self._closers: list[Any] = []
        try:
            self.ctx = Context(name=device)
            self._closers.append(self.ctx)
            self.port_attr = self.ctx.query_port(port)
            self.gid = str(self.ctx.query_gid(port, gid_index))
            self.pd = PD(self.ctx)
            self.channel = CompChannel(self.ctx) if opts.events else None
            self.cq = CQ(self.ctx, 256, None, self.channel, 0)
            self.slot = opts.size + GRH
            access = e.IBV_ACCESS_LOCAL_WRITE | e.IBV_ACCESS_REMOTE_WRITE | e.IBV_ACCESS_REMOTE_READ
            self.mr = MR(self.pd, self.slot * 2, access)
            self.mr.write(b"\xff" * (self.slot * 2), self.slot * 2)  # no sequence number matches before a write
            self.ud = traffic_of(opts).ud
            qp_type = e.IBV_QPT_UD if self.ud else e.IBV_QPT_RC
            attr = QPAttr(port_num=port)
            attr.qp_access_flags = access
            if self.ud:
                attr.qkey = 0x11111111
            inline_cap = opts.size if opts.inline else 0
            cap = QPCap(max_send_wr=128, max_recv_wr=128, max_send_sge=1, max_recv_sge=1, max_inline_data=inline_cap)
            try:
                self.qp = QP(self.pd, QPInitAttr(qp_type=qp_type, scq=self.cq, rcq=self.cq, cap=cap), attr)
            except PyverbsRDMAError:
                if not opts.inline:
                    raise
                cap.max_inline_data = 0  # the device cannot inline this size: send from the MR instead
                self.opts.inline = False
                self.qp = QP(self.pd, QPInitAttr(qp_type=qp_type, scq=self.cq, rcq=self.cq, cap=cap), attr)
            self.psn = random.randrange(1 << 24)
        except (PyverbsError, PyverbsRDMAError) as exc:
            self.close()
            raise VerbsError(f"setting up {device} port {port} gid {gid_index}: {exc}") from exc

    def endpoint(self) -> Endpoint:
        return Endpoint(self.qp.qp_num, self.psn, self.gid, self.mr.buf, self.mr.rkey)

    def connect(self, remote: Endpoint) -> None:
        """RC: INIT → RTR → RTS towards the remote QP. UD: already RTS; build the address handle."""
        from pyverbs.addr import AH, GID, AHAttr, GlobalRoute
        from pyverbs.pyverbs_error import PyverbsError, PyverbsRDMAError
        from pyverbs.qp import QPAttr

        gr = GlobalRoute(dgid=GID(remote.gid), sgid_index=self.gid_index)
        ah_attr = AHAttr(gr=gr, is_global=1, port_num=self.port, dlid=self.port_attr.lid)
        try:
            if self.ud:
                self.ah = AH(self.pd, attr=ah_attr)
                self.remote = remote
                return
            attr = QPAttr(port_num=self.port)
            attr.path_mtu = self.port_attr.active_mtu
            attr.dest_qp_num, attr.rq_psn, attr.sq_psn = remote.qpn, remote.psn, self.psn
            device = self.ctx.query_device()  # outstanding READs: the device's limits, as perftest (and _verbs.c)
            attr.max_rd_atomic = max(1, min(RD_ATOMIC_MAX, device.max_qp_init_rd_atom))
            attr.max_dest_rd_atomic = max(1, min(RD_ATOMIC_MAX, device.max_qp_rd_atom))
            attr.min_rnr_timer, attr.timeout, attr.retry_cnt, attr.rnr_retry = 12, 14, 7, 7
            attr.ah_attr = ah_attr
            self.qp.to_rtr(attr)
            self.qp.to_rts(attr)
        except (PyverbsError, PyverbsRDMAError) as exc:
            raise VerbsError(f"QP {self.qp.qp_num} transition towards QP {remote.qpn}: {exc}") from exc
        self.remote = remote

    def close(self) -> None:
        for name in ("qp", "ah", "mr", "cq", "channel", "pd"):
            obj = getattr(self, name, None)
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.close()
        for obj in self._closers:
            with contextlib.suppress(Exception):
                obj.close()


class Engine:
    """The work requests and completion handling of one side."""

    def __init__(self, res: Resources) -> None:
        from pyverbs.wr import SGE, RecvWR, SendWR

        self.res = res
        e = res.e
        self.e = e
        opts = res.opts
        size = opts.size
        self.send_off, self.recv_off = 0, res.slot
        flags = e.IBV_SEND_INLINE if opts.inline else 0
        self.flags = flags
        mr = res.mr
        self.send_sge = SGE(mr.buf + self.send_off, size, mr.lkey)
        self.recv_sge = SGE(mr.buf + self.recv_off, size + (GRH if res.ud else 0), mr.lkey)
        self.recv_wr = RecvWR(wr_id=1, num_sge=1, sg=[self.recv_sge])
        self.opcode = getattr(e, traffic_of(opts).opcode)
        self.SendWR = SendWR
        self.posted = 0
        self.sent_unsignaled = 0
        self.deadline_ns = int(opts.timeout_s * 1e9)
        self.control: socket.socket | None = None  # the server watches it: the client's abort ends a wait

    def peer_spoke(self, what: str) -> None:
        if self.control is not None:
            import select

            if select.select([self.control], [], [], 0)[0]:
                raise PeerGone(f"{what}: the peer aborted")

    def send_wr(self, signaled: bool) -> Any:
        e = self.e
        flags = (e.IBV_SEND_SIGNALED if signaled else 0) | (self.flags if self.opcode != e.IBV_WR_RDMA_READ else 0)
        wr = self.SendWR(wr_id=2, opcode=self.opcode, num_sge=1, sg=[self.send_sge], send_flags=flags)
        remote = self.res.remote
        if self.res.ud:
            wr.set_wr_ud(self.res.ah, remote.qpn, 0x11111111)
        elif self.opcode in (e.IBV_WR_RDMA_WRITE, e.IBV_WR_RDMA_READ):
            # write into / read from the peer's receive slot, where the peer polls
            wr.set_wr_rdma(remote.rkey, remote.addr + self.res.slot)
        return wr

    def post_recv(self) -> None:
        self.res.qp.post_recv(self.recv_wr)

    def post_send(self, what: str) -> None:
        """Post the message; every SIGNAL_EVERY-th is signaled, and a signaled WRITE is reaped at once
        (WRITE sides poll memory, not the CQ, so nobody else would drain it)."""
        e = self.e
        signaled = self.opcode == e.IBV_WR_RDMA_READ or self.sent_unsignaled + 1 >= SIGNAL_EVERY
        try:
            self.res.qp.post_send(self.send_wr(signaled))
        except Exception as exc:
            raise VerbsError(f"post_send of {what}: {exc}") from exc
        self.sent_unsignaled = 0 if signaled else self.sent_unsignaled + 1
        if signaled and self.opcode == e.IBV_WR_RDMA_WRITE:
            self.wait(e.IBV_WC_RDMA_WRITE, f"completion of {what}")

    def wait(self, want_opcode: int, what: str) -> None:
        """Poll (or wait on events) until a completion of `want_opcode`; other successes are absorbed."""
        cq = self.res.cq
        start = time.perf_counter_ns()
        spins = 0
        while True:
            if self.res.channel is not None:
                cq.req_notify()
                n, wcs = cq.poll()
                if n == 0:
                    self.res.channel.get_cq_event(cq)
                    cq.ack_events(1)
                    n, wcs = cq.poll()
            else:
                n, wcs = cq.poll()
            for wc in wcs[:n]:
                if wc.status != 0:
                    raise VerbsError(f"{what}: completion {status_text(wc.status)} (status {wc.status}, "
                                     f"opcode {wc.opcode}, wr_id {wc.wr_id}, vendor_err {wc.vendor_err})")
                if wc.opcode == want_opcode:
                    return
            spins += 1
            if spins % 4096 == 0:
                self.peer_spoke(what)
                if time.perf_counter_ns() - start > self.deadline_ns:
                    raise PeerGone(f"{what}: no completion within {self.res.opts.timeout_s} s")

    def poll_memory(self, seq: int, what: str) -> None:
        """WRITE ping-pong: wait until the peer's write puts `seq` in the last 8 bytes of our slot."""
        mr = self.res.mr
        off = self.recv_off + self.res.opts.size - 8
        start = time.perf_counter_ns()
        spins = 0
        while SEQ.unpack(mr.read(8, off))[0] != seq:
            spins += 1
            if spins % 4096 == 0:
                n, wcs = self.res.cq.poll()  # our own WRITE may have failed: its error completion says why
                for wc in wcs[:n]:
                    if wc.status != 0:
                        raise VerbsError(f"{what}: completion {status_text(wc.status)} (status {wc.status}, "
                                         f"opcode {wc.opcode}, wr_id {wc.wr_id}, vendor_err {wc.vendor_err})")
                self.peer_spoke(what)
                if time.perf_counter_ns() - start > self.deadline_ns:
                    raise PeerGone(f"{what}: the peer's write did not arrive within {self.res.opts.timeout_s} s")

    def stamp(self, seq: int) -> None:
        """Sequence number at both ends of the outgoing message."""
        size = self.res.opts.size
        raw = SEQ.pack(seq)
        self.res.mr.write(raw, 8, self.send_off)
        self.res.mr.write(raw, 8, self.send_off + size - 8)

    def check_read(self, what: str) -> None:
        """READ: the bytes read from the peer carry its READ_MARKER at both ends."""
        size = self.res.opts.size
        head = SEQ.unpack(self.res.mr.read(8, self.send_off))[0]
        tail = SEQ.unpack(self.res.mr.read(8, self.send_off + size - 8))[0]
        if head != READ_MARKER or tail != READ_MARKER:
            raise VerbsError(f"{what}: payload check failed (read {head:#x}/{tail:#x}, want {READ_MARKER:#x})")

    def check_received(self, seq: int, what: str) -> None:
        size = self.res.opts.size
        base = self.recv_off + (GRH if self.res.ud else 0)
        head = SEQ.unpack(self.res.mr.read(8, base))[0]
        tail = SEQ.unpack(self.res.mr.read(8, base + size - 8))[0]
        if head != seq or tail != seq:
            raise VerbsError(f"{what}: payload check failed (sent {seq}, got {head}/{tail})")


class Traffic:
    """One kind of traffic, both sides of it, over the common Resources and Engine (the shape of rdma-core's
    tests: a base, then one class per traffic kind). The client's timed part is `ping`; what it checks after
    the clock stops is `verify`; the server answers each ping with `serve`."""

    name = ""
    opcode = "IBV_WR_SEND"  # the work request each ping posts
    ud = False  # an unreliable-datagram QP (an address handle per peer, a GRH before each receive)
    answers = True  # the server takes part in every iteration (a READ's server only stays up)

    def prepare(self, eng: Engine, server: bool) -> None:
        """Before the QPs connect: what must be in place when the first message arrives."""

    def serve(self, eng: Engine, seq: int) -> None:
        raise NotImplementedError

    def ping(self, eng: Engine, seq: int) -> None:
        raise NotImplementedError

    def verify(self, eng: Engine, seq: int) -> None:
        """After the timed part: the payload check (and the receive the next pong needs)."""


class SendTraffic(Traffic):
    """RC SEND/RECV ping-pong: each side waits for its receive completion, then sends."""

    name = "send"

    def prepare(self, eng: Engine, server: bool) -> None:
        for _ in range(16):
            eng.post_recv()

    def serve(self, eng: Engine, seq: int) -> None:
        eng.wait(eng.e.IBV_WC_RECV, f"receive of ping {seq}")
        eng.post_recv()
        eng.check_received(seq, f"ping {seq}")
        eng.stamp(seq)
        eng.post_send(f"pong {seq}")

    def ping(self, eng: Engine, seq: int) -> None:
        eng.post_send(f"ping {seq}")
        eng.wait(eng.e.IBV_WC_RECV, f"pong {seq}")

    def verify(self, eng: Engine, seq: int) -> None:
        eng.post_recv()
        eng.check_received(seq, f"pong {seq}")


class UDTraffic(SendTraffic):
    """UD SEND/RECV ping-pong: as RC SEND, through an address handle, each receive behind a 40-byte GRH."""

    name = "ud"
    ud = True


class WriteTraffic(Traffic):
    """RC RDMA WRITE ping-pong: each side polls its memory for the peer's write of the sequence number."""

    name = "write"
    opcode = "IBV_WR_RDMA_WRITE"

    def serve(self, eng: Engine, seq: int) -> None:
        eng.poll_memory(seq, f"ping {seq}")
        eng.stamp(seq)
        eng.post_send(f"pong {seq}")

    def ping(self, eng: Engine, seq: int) -> None:
        eng.post_send(f"ping {seq}")
        eng.poll_memory(seq, f"pong {seq}")


class ReadTraffic(Traffic):
    """RC RDMA READ: the client reads the server's marked slot; the server's CPU takes no part."""

    name = "read"
    opcode = "IBV_WR_RDMA_READ"
    answers = False

    def prepare(self, eng: Engine, server: bool) -> None:
        if server:
            marker = SEQ.pack(READ_MARKER)
            eng.res.mr.write(marker, 8, eng.recv_off)
            eng.res.mr.write(marker, 8, eng.recv_off + eng.res.opts.size - 8)

    def ping(self, eng: Engine, seq: int) -> None:
        eng.post_send(f"read {seq}")
        eng.wait(eng.e.IBV_WC_RDMA_READ, f"read {seq}")

    def verify(self, eng: Engine, seq: int) -> None:
        eng.check_read(f"read {seq}")


TRAFFIC: dict[str, Traffic] = {t.name: t for t in (SendTraffic(), UDTraffic(), WriteTraffic(), ReadTraffic())}


def traffic_of(opts: Options) -> Traffic:
    """The traffic class of a test name; an unknown name is refused, naming the known ones."""
    try:
        return TRAFFIC[opts.test]
    except KeyError:
        raise VerbsError(f"unknown test {opts.test!r}: one of {', '.join(TRAFFIC)}") from None


def _sendline(sock: socket.socket, obj: dict[str, Any]) -> None:
    sock.sendall((json.dumps(obj) + "\n").encode())


def _readline(f: Any, what: str) -> dict[str, Any]:
    line = f.readline()
    if not line:
        raise PeerGone(f"the peer closed the control connection during {what}")
    msg = json.loads(line)
    if "abort" in msg:
        raise PeerGone(f"the peer aborted: {msg['abort']}")
    return msg


def run_server(device: str, port: int, gid_index: int, opts: Options, bind: str, tcp_port: int,
               accept_timeout: float = 30.0, ready: Any = None, impl: str = "c") -> dict[str, Any]:
    """Serve one client: answer every ping (or, for READ, just stay up). Returns what it did.
    `impl` "c" runs the compiled endpoint (rdma/_verbs.c), "python" the pyverbs reference."""
    lsock = socket.create_server((bind, tcp_port))
    lsock.settimeout(accept_timeout)
    if ready:
        ready(lsock.getsockname()[1])
    try:
        try:
            conn, _ = lsock.accept()
        except TimeoutError:
            raise PeerGone(f"no client connected within {accept_timeout:.0f} s") from None
    finally:
        lsock.close()
    with conn:
        f = conn.makefile("r")
        remote_opts = Options(**_readline(f, "option exchange")["options"])
        if impl == "c":
            return _serve_compiled(conn, f, device, port, gid_index, remote_opts)
        traffic = traffic_of(remote_opts)
        res = Resources(device, port, gid_index, remote_opts)
        try:
            eng = Engine(res)
            traffic.prepare(eng, server=True)
            _sendline(conn, {"endpoint": asdict(res.endpoint())})
            res.connect(Endpoint(**_readline(f, "endpoint exchange")["endpoint"]))
            _sendline(conn, {"ready": True})
            answered = 0
            try:
                total = remote_opts.warmup + remote_opts.iterations
                if not traffic.answers:
                    _readline(f, "the client's run")
                else:
                    conn.settimeout(None)
                    eng.control = conn
                    answered = _serve_loop(eng, traffic, total)
                    _readline(f, "the end of the run")
            except LatlabError as exc:
                with contextlib.suppress(OSError):
                    _sendline(conn, {"abort": str(exc)})
                raise
            return {"answered": answered}
        finally:
            res.close()


def _serve_loop(eng: Engine, traffic: Traffic, total: int) -> int:
    for seq in range(total):
        traffic.serve(eng, seq)
    return total


def run_client(device: str, port: int, gid_index: int, opts: Options, host: str, tcp_port: int,
               connect_timeout: float = 30.0, impl: str = "c") -> dict[str, Any]:
    """Measure: returns {"rtt_ns", "send_ns", "status", "measured", "warmup"} (what was measured is kept)."""
    deadline = time.monotonic() + connect_timeout
    while True:
        try:
            conn = socket.create_connection((host, tcp_port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise PeerGone(f"no server at {host}:{tcp_port} within {connect_timeout:.0f} s") from None
            time.sleep(0.1)
    with conn:
        conn.settimeout(opts.timeout_s + 30)
        f = conn.makefile("r")
        _sendline(conn, {"options": asdict(opts)})
        if impl == "c":
            return _client_compiled(conn, f, device, port, gid_index, opts)
        traffic = traffic_of(opts)
        res = Resources(device, port, gid_index, opts)
        try:
            eng = Engine(res)
            traffic.prepare(eng, server=False)
            remote = Endpoint(**_readline(f, "endpoint exchange")["endpoint"])
            if opts.fault == "bad-rkey":
                remote.rkey ^= 0x5A5A5A
            _sendline(conn, {"endpoint": asdict(res.endpoint())})
            res.connect(remote)
            _readline(f, "server ready")
            out = _client_loop(eng, traffic, opts)
            with contextlib.suppress(OSError):
                _sendline(conn, {"done": True} if out["status"] == "ok" else {"abort": out["status"]})
            return out
        finally:
            res.close()


def _client_loop(eng: Engine, traffic: Traffic, opts: Options) -> dict[str, Any]:
    rtt = np.zeros(opts.iterations, np.int64)
    send = np.zeros(opts.iterations, np.int64)
    clock = time.perf_counter_ns
    measured = 0
    status = "ok"
    start = 0
    total = opts.warmup + opts.iterations
    seq = 0
    try:
        while seq < total:
            if seq == opts.warmup:
                start = clock()
            eng.stamp(seq)
            t0 = clock()
            traffic.ping(eng, seq)
            t1 = clock()
            traffic.verify(eng, seq)
            if seq >= opts.warmup:
                send[measured], rtt[measured] = t0, t1 - t0
                measured += 1
                if opts.duration_s and measured % 64 == 0 and t1 - start > opts.duration_s * 1e9:
                    break
            seq += 1
    except PeerGone as exc:
        status = f"timeout: {exc}"
    except KeyboardInterrupt:
        status = "interrupted"
    return {"rtt_ns": rtt[:measured], "send_ns": send[:measured], "status": status, "measured": measured,
            "warmup": min(seq, opts.warmup)}


def _endpoint(device: str, port: int, gid_index: int, opts: Options) -> Any:
    from rdma import _verbs

    try:
        ep = _verbs.Endpoint(device, port, gid_index, opts.test, opts.size, opts.inline, opts.events)
    except RuntimeError as exc:
        raise VerbsError(f"setting up {device} port {port} gid {gid_index}: {exc}") from exc
    opts.inline = bool(ep.info()[5])
    return ep


def _connect(ep: Any, remote: Endpoint) -> None:
    try:
        ep.connect(remote.qpn, remote.psn, remote.gid, remote.addr, remote.rkey)
    except (RuntimeError, ValueError) as exc:
        raise VerbsError(str(exc)) from exc


def _own(ep: Any) -> dict[str, Any]:
    qpn, psn, gid, addr, rkey, _ = ep.info()
    return asdict(Endpoint(qpn, psn, gid, addr, rkey))


def _raise_for(status: str, detail: str) -> None:
    if status in ("timeout", "aborted"):
        raise PeerGone(detail)
    if status == "interrupted":
        raise KeyboardInterrupt
    if status != "ok":
        raise VerbsError(detail)


def _serve_compiled(conn: socket.socket, f: Any, device: str, port: int, gid_index: int,
                    opts: Options) -> dict[str, Any]:
    ep = _endpoint(device, port, gid_index, opts)
    try:
        ep.prepost()
        _sendline(conn, {"endpoint": _own(ep)})
        _connect(ep, Endpoint(**_readline(f, "endpoint exchange")["endpoint"]))
        _sendline(conn, {"ready": True})
        ep.watch(conn.fileno())  # the client's "abort" (or its going away) ends the wait at once
        answered = 0
        try:
            if traffic_of(opts).answers:
                answered, status, detail = ep.serve(opts.warmup + opts.iterations, int(opts.timeout_s * 1e9))
                _raise_for(status, detail)
            _readline(f, "the end of the run")
        except LatlabError as exc:
            with contextlib.suppress(OSError):
                _sendline(conn, {"abort": str(exc)})
            raise
        return {"answered": answered}
    finally:
        ep.close()


def _client_compiled(conn: socket.socket, f: Any, device: str, port: int, gid_index: int,
                     opts: Options) -> dict[str, Any]:
    ep = _endpoint(device, port, gid_index, opts)
    try:
        remote = Endpoint(**_readline(f, "endpoint exchange")["endpoint"])
        if opts.fault == "bad-rkey":
            remote.rkey ^= 0x5A5A5A
        _sendline(conn, {"endpoint": _own(ep)})
        _connect(ep, remote)
        _readline(f, "server ready")
        rtt = np.zeros(opts.iterations, np.int64)
        send = np.zeros(opts.iterations, np.int64)
        measured, warmed, status, detail = ep.client(opts.warmup, opts.iterations, int(opts.duration_s * 1e9),
                                                     int(opts.timeout_s * 1e9), rtt, send)
        if status == "error":
            with contextlib.suppress(OSError):
                _sendline(conn, {"abort": detail})
            raise VerbsError(detail)
        result = "ok" if status == "ok" else f"{status}: {detail}"
        with contextlib.suppress(OSError):
            _sendline(conn, {"done": True} if status == "ok" else {"abort": result})
        return {"rtt_ns": rtt[:measured], "send_ns": send[:measured], "status": result, "measured": measured,
                "warmup": warmed}
    finally:
        ep.close()
