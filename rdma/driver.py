"""`python -m rdma.driver server|client ...`: one side of one verbs test, as a process.

The client writes its samples (.npz) and both print one JSON line: what they did, or the error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from latlab.cpu import gc_paused
from latlab.errors import LatlabError
from latlab.helper import say_error, say_ready, say_result
from latlab.signals import start_helper
from rdma.devices import Gid, pick_gid
from rdma.verbs import TESTS, Options, run_client, run_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m rdma.driver")
    p.add_argument("role", choices=("server", "client"))
    p.add_argument("--device", required=True)
    p.add_argument("--port", type=int, default=1, help="device port")
    p.add_argument("--gid-index", type=int, help="default: the RoCEv2 IPv4 GID of --netdev (or the first)")
    p.add_argument("--netdev", help="pick the GID of this netdev")
    p.add_argument("--tests", default="send", help=f"comma-separated, run in order: {','.join(TESTS)}")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--duration", type=float, default=0.0)
    p.add_argument("--no-inline", action="store_true")
    p.add_argument("--events", action="store_true", help="wait on CQ events instead of polling")
    p.add_argument("--timeout", type=float, default=10.0, help="no answer for this long: the peer is gone")
    p.add_argument("--host", default="0.0.0.0", help="server: bind address; client: server address")
    p.add_argument("--tcp-port", type=int, default=18515)
    p.add_argument("--impl", choices=("c", "python"), default="c",
                   help="c: compiled endpoint (default); python: the pyverbs reference")
    p.add_argument("--fault", choices=("", "bad-rkey"), default="", help="inject a fault (for tests)")
    p.add_argument("--cpu", type=int)
    p.add_argument("--out", type=Path, help="client: folder for one <test>.npz per test")
    return p.parse_args(argv)



def main(argv: list[str] | None = None) -> int:
    """Run every test in --tests; one JSON line per test. Exit 1 if any failed."""
    args = parse_args(argv)
    start_helper(args.cpu)
    tests = args.tests.split(",")
    bad = [t for t in tests if t not in TESTS]
    if bad:
        say_error("config", f"unknown test {bad[0]!r}; known: {', '.join(TESTS)}")
        return 1
    failed = False
    for test in tests:
        opts = Options(test=test, size=args.size, iterations=args.iterations, warmup=args.warmup,
                       duration_s=args.duration, inline=not args.no_inline, events=args.events,
                       timeout_s=args.timeout, fault=args.fault)
        try:
            record = _one(args, opts)
        except LatlabError as exc:
            record = {"status": "error", "error": str(exc)}
        except KeyboardInterrupt:
            record = {"status": "interrupted"}
        failed |= record["status"] != "ok"
        say_result({"test": test, **record})
        if record["status"] == "interrupted":
            break
    return 1 if failed else 0


def _one(args: argparse.Namespace, opts: Options) -> dict[str, object]:
    gid = pick_gid(args.device, args.port, args.gid_index, args.netdev)
    if opts.test == "cm":
        return _one_cm(args, opts, gid)
    if args.role == "server":
        record = run_server(args.device, args.port, gid.index, opts, args.host, args.tcp_port,
                            ready=lambda port: say_ready(test=opts.test, port=port), impl=args.impl)
    else:
        with gc_paused():
            out = run_client(args.device, args.port, gid.index, opts, args.host, args.tcp_port, impl=args.impl)
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"{opts.test}.npz"
        tmp = Path(str(path) + ".tmp.npz")
        np.savez(tmp, rtt_ns=out.pop("rtt_ns"), send_ns=out.pop("send_ns"))
        os.replace(tmp, path)
        record = {**out, "status": "ok" if out["status"] == "ok" else out["status"]}
    return {"status": "ok", **record, "gid_index": gid.index, "gid": gid.gid, "inline": opts.inline, "impl": args.impl}


def _one_cm(args: argparse.Namespace, opts: Options, gid: Gid) -> dict[str, object]:
    """The rdma_cm test: the connection is set up by rdma_cm on --tcp-port + 1 (no TCP exchange)."""
    from rdma.cm import cm_client, cm_server

    port = args.tcp_port + 1
    if args.role == "server":
        record = cm_server(args.host, port, opts, ready=lambda p: say_ready(test="cm", port=p))
    else:
        out = cm_client(args.host, port, opts, src=gid.ipv4)
        args.out.mkdir(parents=True, exist_ok=True)
        np.savez(args.out / "cm.npz", rtt_ns=out.pop("rtt_ns"), send_ns=out.pop("send_ns"))
        record = out
    return {"status": "ok", **record, "gid_index": gid.index, "gid": gid.gid, "impl": "python (rdma_cm)"}


if __name__ == "__main__":
    sys.exit(main())
