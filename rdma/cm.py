"""RC SEND ping-pong with the connection set up through rdma_cm (librdmacm's synchronous API, via pyverbs),
instead of the out-of-band TCP exchange. Same payload checks and timestamps as the other tests."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from rdma.verbs import SEQ, Options, PeerGone, VerbsError, status_text


def _cm() -> tuple[Any, Any, Any, Any, Any]:
    import pyverbs.cm_enums as ce
    from pyverbs.cmid import CMID, AddrInfo
    from pyverbs.qp import QPCap, QPInitAttr

    return ce, CMID, AddrInfo, QPCap, QPInitAttr


def _check(wc: Any, what: str) -> None:
    if wc is None:
        raise PeerGone(f"{what}: no completion")
    if wc.status != 0:
        raise VerbsError(f"{what}: completion {status_text(wc.status)} (status {wc.status}, opcode {wc.opcode})")


def cm_server(address: str, port: int, opts: Options, ready: Any = None) -> dict[str, Any]:
    """Accept one rdma_cm connection and echo every ping."""
    ce, CMID, AddrInfo, QPCap, QPInitAttr = _cm()
    info = AddrInfo(src=address, src_service=str(port), port_space=ce.RDMA_PS_TCP, flags=ce.RAI_PASSIVE)
    listener = CMID(creator=info, qp_init_attr=QPInitAttr(cap=QPCap(max_send_wr=4, max_recv_wr=4)))
    try:
        listener.listen()
        if ready:
            ready(port)
        conn = listener.get_request()
        try:
            recv_mr, send_mr = conn.reg_msgs(opts.size), conn.reg_msgs(opts.size)
            conn.post_recv(recv_mr)
            conn.accept()
            total = opts.warmup + opts.iterations
            for seq in range(total):
                _check(conn.get_recv_comp(), f"receive of ping {seq}")
                data = recv_mr.read(opts.size, 0)
                if SEQ.unpack_from(data)[0] != seq:
                    raise VerbsError(f"ping {seq}: payload check failed")
                conn.post_recv(recv_mr)
                send_mr.write(data, opts.size)
                conn.post_send(send_mr)
                _check(conn.get_send_comp(), f"pong {seq}")
            return {"answered": total}
        finally:
            conn.close()
    finally:
        listener.close()


def cm_client(address: str, port: int, opts: Options, connect_timeout: float = 30.0,
              src: str | None = None) -> dict[str, Any]:
    """Connect through rdma_cm and measure; returns the same record as verbs.run_client. `src` binds the local
    address (and so the local device: with two rxe devices on one host, the one on the client's veth end)."""
    ce, CMID, AddrInfo, QPCap, QPInitAttr = _cm()
    deadline = time.monotonic() + connect_timeout
    while True:
        try:
            info = AddrInfo(src=src, dst=address, dst_service=str(port), port_space=ce.RDMA_PS_TCP) if src \
                else AddrInfo(dst=address, dst_service=str(port), port_space=ce.RDMA_PS_TCP)
            cid = CMID(creator=info, qp_init_attr=QPInitAttr(cap=QPCap(max_send_wr=4, max_recv_wr=4)))
            cid.connect()
            break
        except Exception as exc:  # the server may not listen yet: rdma_cm says "rejected" or "unreachable"
            if time.monotonic() > deadline:
                raise PeerGone(f"rdma_cm connect to {address}:{port}: {exc}") from exc
            time.sleep(0.2)
    rtt = np.zeros(opts.iterations, np.int64)
    send = np.zeros(opts.iterations, np.int64)
    measured = 0
    try:
        recv_mr, send_mr = cid.reg_msgs(opts.size), cid.reg_msgs(opts.size)
        payload = bytearray(opts.size)
        clock = time.perf_counter_ns
        for seq in range(opts.warmup + opts.iterations):
            cid.post_recv(recv_mr)
            SEQ.pack_into(payload, 0, seq)
            send_mr.write(bytes(payload), opts.size)
            t0 = clock()
            cid.post_send(send_mr)
            _check(cid.get_send_comp(), f"ping {seq}")
            _check(cid.get_recv_comp(), f"pong {seq}")
            t1 = clock()
            if SEQ.unpack_from(recv_mr.read(8, 0))[0] != seq:
                raise VerbsError(f"pong {seq}: payload check failed")
            if seq >= opts.warmup:
                send[measured], rtt[measured] = t0, t1 - t0
                measured += 1
        status = "ok"
    except PeerGone as exc:
        status = f"timeout: {exc}"
    finally:
        cid.close()
    return {"rtt_ns": rtt[:measured], "send_ns": send[:measured], "status": status, "measured": measured,
            "warmup": opts.warmup}
