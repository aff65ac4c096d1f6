"""Run the RDMA tests on this machine (a lab host with a device, or inside the soft-RoCE VM).

`python -m rdma.inside --out DIR ...` optionally creates the rxe device (--setup-rxe), runs latlab's
drivers (one server and one client process for all tests) and perftest for send/write/read, and
writes DIR/inside.json plus one .npz per result. Everything it starts is bounded by --timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rdma import perftest
from rdma.devices import describe, pick_gid

PY = sys.executable


def setup_rxe(netdev: str, address: str, device: str) -> None:
    """A veth pair with `address` on `netdev` and an rxe device over it (inside the VM)."""
    peer = netdev + "p"
    for cmd in (["modprobe", "rdma_rxe"], ["modprobe", "rdma_ucm"],
                ["ip", "link", "add", netdev, "type", "veth", "peer", "name", peer],
                ["ip", "addr", "add", address, "dev", netdev], ["ip", "link", "set", netdev, "up"],
                ["ip", "link", "set", peer, "up"], ["rdma", "link", "add", device, "type", "rxe", "netdev", netdev]):
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def run_drivers(args: argparse.Namespace, host: str, impl: str, server_impl: str | None = None,
                extra: list[str] | None = None, tests: str | None = None, folder: str | None = None) -> list[dict]:
    """latlab's client (`impl`) against a server (`server_impl`, default the same) for every test; samples go to
    args.out/<folder> (default: the implementation's name)."""
    out = args.out / (folder or (impl if server_impl is None else f"{impl}-vs-{server_impl}"))
    common = ["--device", args.device, "--netdev", args.netdev, "--tests", tests or args.tests,
              "--size", str(args.size),
              "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--tcp-port", str(args.tcp_port),
              "--timeout", str(args.verbs_timeout), *(["--events"] if args.events else []),
              *(["--no-inline"] if args.no_inline else []), *(extra or [])]
    server = subprocess.Popen([PY, "-m", "rdma.driver", "server", "--host", host, "--impl", server_impl or impl,
                               *common], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = subprocess.run([PY, "-m", "rdma.driver", "client", "--host", host, "--impl", impl, "--out", str(out),
                                 *common],
                                capture_output=True, text=True, timeout=args.timeout)
        server_out = server.communicate(timeout=60)[0]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    clients = _json_lines(client.stdout)
    servers = {r.get("test"): r for r in _json_lines(server_out)}
    for r in clients:
        r["server"] = servers.get(r.get("test"), {})
    if not clients:
        clients = [{"status": "error", "error": (client.stdout + client.stderr)[-500:]}]
    return clients


def run_perftest(args: argparse.Namespace, host: str, gid_index: int) -> list[dict]:
    out = []
    for test in [t for t in args.tests.split(",") if t in perftest.TOOLS]:
        srv = subprocess.Popen(perftest.argv(test, args.device, gid_index, args.size, args.iterations, None),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(0.5)
            cli = subprocess.run(perftest.argv(test, args.device, gid_index, args.size, args.iterations, host),
                                 capture_output=True, text=True, timeout=args.timeout)
            srv.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            out.append({"test": test, "status": "error", "error": "perftest timed out"})
            continue
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
        try:
            samples = perftest.parse_raw(cli.stdout)
            summary = perftest.parse_summary(cli.stdout)
        except Exception as exc:
            out.append({"test": test, "status": "error", "error": str(exc)})
            continue
        np.savez(args.out / f"perftest-{test}.npz", samples_ns=samples)
        out.append({"test": test, "status": "ok", "tool": perftest.TOOLS[test], "summary_us": summary,
                    "half_rtt": test in perftest.HALF_RTT_TESTS})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rdma.inside")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="rxe0")
    p.add_argument("--netdev", default="rxev0")
    p.add_argument("--address", default="10.9.0.1/24")
    p.add_argument("--setup-rxe", action="store_true")
    p.add_argument("--tests", default="send,write,read,ud,cm")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--events", action="store_true")
    p.add_argument("--no-inline", action="store_true")
    p.add_argument("--perftest", action="store_true")
    p.add_argument("--reference", action="store_true",
                   help="also run the pyverbs reference, and the compiled client against a pyverbs server")
    p.add_argument("--fault-check", action="store_true", help="also run a WRITE with a bad rkey (tests)")
    p.add_argument("--tcp-port", type=int, default=18515)
    p.add_argument("--verbs-timeout", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=180.0)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    record: dict = {"kernel": os.uname().release, "started": time.time()}
    try:
        if args.setup_rxe:
            setup_rxe(args.netdev, args.address, args.device)
        gid = pick_gid(args.device, 1, None, args.netdev)
        host = gid.ipv4 or args.address.split("/")[0]
        record.update({"device": args.device, "gid_index": gid.index, "gid": gid.gid, "devices": describe()})
        verbs_tests = ",".join(t for t in args.tests.split(",") if t != "cm")
        record["latlab"] = run_drivers(args, host, "c", tests=verbs_tests)
        if "cm" in args.tests.split(","):
            record["rdma_cm"] = run_drivers(args, host, "python", tests="cm")
        if args.fault_check:
            # A WRITE with a corrupted rkey: both engines must report the verbs status and the work request.
            record["fault"] = {impl: run_drivers(args, host, impl, extra=["--fault", "bad-rkey", "--timeout", "5"],
                                                 tests="write", folder=f"fault-{impl}") for impl in ("c", "python")}
        if args.reference:
            tests = ",".join(t for t in args.tests.split(",") if t != "cm")
            record["pyverbs"] = run_drivers(args, host, "python", tests=tests)
            record["interop"] = run_drivers(args, host, "c", "python", tests=tests)
        record["perftest"] = run_perftest(args, host, gid.index) if args.perftest else []
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    tmp = args.out / "inside.json.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, args.out / "inside.json")
    return 0 if "error" not in record else 1


if __name__ == "__main__":
    sys.exit(main())
