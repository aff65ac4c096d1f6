"""The stack matrix across real hosts: what ansible/bench.yml runs on each host, one stack at a time.

    python -m toe_bench.hostrun serve  --stack S --proto P --host ADDR --port N --workdir W
    python -m toe_bench.hostrun client --stack S --proto P --server ADDR --port N --size B --seconds T --workdir W
    python -m toe_bench.hostrun stop   --workdir W

`serve` starts latlab's engine server (port N) and a sockperf server (port N+1) under the stack, detached;
`client` runs both clients under the same stack, reads the client host's counters around each, and writes
the samples with a case descriptor per engine (`case-*.json`, what `latlab merge-run` reads) whose evidence
is taken on the client host: the kernel rows show the kernel took the echoes in, busy-poll rows that
`BusyPollRxPackets` rose and the socket had a NAPI id, Onload rows that the client's kernel saw none of the
echoes. A stack that cannot run on a host is described as skipped, with its reason. `stop` ends the servers
and puts back what `serve` changed (offloads, net.core.busy_read).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from latlab import helper
from latlab.netstat import delta, namespace_counters
from latlab.topology import LabHost
from toe_bench.engine import COMMAND as ENGINE
from toe_bench.engine import EngineConfig, EngineResult
from toe_bench.stacks import get
from toe_bench.stacks.base import read_features
from toe_bench.stacks.kernel import BUSY_POLL_US, BUSY_READ, kernel_received
from toe_bench.stacks.onload import installed_onload

STACKS = ("kernel", "busy-poll", "onload")  # the stacks a lab host runs through this module
SERVER_LIFETIME_S = 900  # servers outlive the SSH session that starts them: bounded even if `stop` never comes


def _counters() -> dict[str, dict[str, int]]:
    """Udp, Tcp and TcpExt counters of this host (its own namespace)."""
    return namespace_counters(LabHost("here", "", None))


def interface_for(address: str) -> str:
    """The interface that holds `address` on this host, or else the one it is reached through."""
    held = subprocess.run(["ip", "-j", "-4", "addr", "show", "to", f"{address}/32"], capture_output=True, text=True,
                          timeout=30)
    links = json.loads(held.stdout or "[]")
    if links:
        return links[0]["ifname"]
    out = subprocess.run(["ip", "-j", "route", "get", address], capture_output=True, text=True, timeout=30)
    routes = json.loads(out.stdout or "[]")
    return routes[0].get("dev", "lo") if routes else "lo"


def _write_busy_read(value: str) -> None:
    """net.core.busy_read is global and writable from the root namespace only: best effort (sockperf's row then
    shows whether its receives were busy-polled)."""
    with contextlib.suppress(OSError):
        BUSY_READ.write_text(value)


def _runtime(stack: str) -> tuple[list[str], dict[str, Any], bool]:
    """(argv prefix, EngineConfig fields of its own, spinning receive) of a stack on a lab host."""
    if stack == "busy-poll":
        return [], {"busy_poll_us": BUSY_POLL_US}, False
    if stack == "onload":
        return [installed_onload() or "onload", "--profile=latency"], {}, True
    return [], {}, True


def _prepare(stack: str, address: str, workdir: Path, side: str) -> None:
    """busy-poll: GRO on and TSO off on the lab interface (a veth has no NAPI context otherwise) and busy_read for
    sockperf; the old values are saved for `stop`/the end of the client."""
    if stack != "busy-poll":
        return
    ifname = interface_for(address)
    saved = {"ifname": ifname, "features": read_features(LabHost("here", address, None, ifname=ifname)),
             "busy_read": BUSY_READ.read_text().strip() if BUSY_READ.exists() else None}
    (workdir / f"saved-{side}-{stack}.json").write_text(json.dumps(saved))
    subprocess.run(["ethtool", "-K", ifname, "gro", "on", "tso", "off"], capture_output=True, timeout=30)
    _write_busy_read(str(BUSY_POLL_US))


def _restore(workdir: Path, side: str) -> None:
    for path in sorted(workdir.glob(f"saved-{side}-*.json")):
        saved = json.loads(path.read_text())
        features = saved["features"]
        args = [x for k in ("gro", "tso") if k in features for x in (k, features[k])]
        if args:
            subprocess.run(["ethtool", "-K", saved["ifname"], *args], capture_output=True, timeout=30)
        if saved["busy_read"] is not None:
            _write_busy_read(saved["busy_read"])
        path.unlink()


def serve(args: argparse.Namespace) -> dict[str, Any]:
    availability = get(args.stack).detect()
    if not availability.available:
        return {"available": False, "reason": availability.describe(args.stack)}
    wrap, engine_options, busy = _runtime(args.stack)
    _prepare(args.stack, args.host, args.workdir, "server")
    pids = []
    cfg = EngineConfig(role="server", proto=args.proto, host=args.host, port=args.port, busy=busy, idle_timeout=120,
                       **engine_options)
    for name, argv in (
            ("engine", [*wrap, *ENGINE, *cfg.argv()]),
            ("sockperf", [*wrap, "sockperf", "server", "-i", args.host, "-p", str(args.port + 1),
                          *(["--tcp"] if args.proto == "tcp" else []), *(["--nonblocked"] if busy else [])])):
        log = open(args.workdir / f"server-{args.stack}-{args.proto}-{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(["timeout", str(SERVER_LIFETIME_S), *argv], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        pids.append(proc.pid)
    (args.workdir / f"pids-{args.stack}-{args.proto}.json").write_text(json.dumps(pids))
    # both serve once their sockets are bound (the engine also says READY): wait for that, not a fixed time
    listening = all(_bound(args.proto, port) for port in (args.port, args.port + 1))
    return {"available": True, "pids": pids, "listening": listening}


def _bound(proto: str, port: int, timeout_s: float = 30.0) -> bool:
    """Whether a socket of this namespace is bound (UDP) or listening (TCP) on `port` within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-Hln", "-u" if proto == "udp" else "-t", "sport", "=", f":{port}"],
                             capture_output=True, text=True, timeout=30)
        if out.stdout.strip():
            return True
        time.sleep(0.02)
    return False


def _evidence(stack: str, proto: str, before: dict, after: dict, samples: int,
              status: EngineResult | None) -> tuple[bool, dict, str]:
    d = delta(before, after)
    kernel_in = kernel_received(before, after, proto)
    if stack == "busy-poll":
        polled = d["TcpExt"].get("BusyPollRxPackets", 0)
        napi = None if status is None else status.napi_id
        return (polled > 0 and napi != 0, {"busy_poll_rx_packets": polled, "client_napi_id": napi},
                f"client BusyPollRxPackets +{polled}" + (f", NAPI id {napi}" if napi is not None else ""))
    if stack == "onload":
        return (kernel_in <= samples // 100, {"client_kernel_in": kernel_in, "samples": samples},
                f"client kernel {proto.upper()} in +{kernel_in} for {samples} echoes under onload")
    return (kernel_in >= samples, {"client_kernel_in": kernel_in, "samples": samples},
            f"client kernel took in {kernel_in} for {samples} samples")


def client(args: argparse.Namespace) -> list[dict[str, Any]]:
    suffix = "multi-host"
    receive = "busy-poll" if _runtime(args.stack)[2] else "blocking"
    group = (f"{args.proto} {args.size}B {suffix}" if args.stack == "kernel"
             else f"{args.stack}: {args.proto} {args.size}B {suffix}")
    params = {"stack": args.stack, "proto": args.proto, "size": args.size, "receive": receive}
    availability = get(args.stack).detect()
    if not availability.available:
        return [{"group": group, "engine": "-", "role": "skipped", "metric": "RTT", "file": "-", "params": params,
                 "note": f"skipped: {availability.describe(args.stack)}", "status": {"status": "ok"}}]
    wrap, engine_options, busy = _runtime(args.stack)
    _prepare(args.stack, args.server, args.workdir, "client")
    tag = f"{args.stack}-{args.proto}"
    descriptors = []
    try:
        before = _counters()
        cfg = EngineConfig(role="client", proto=args.proto, host=args.server, port=args.port, busy=busy,
                           size=args.size, warmup=500, count=1_000_000, duration=args.seconds,
                           out=args.workdir / f"{tag}.npz", **engine_options)
        out = subprocess.run([*wrap, *ENGINE, *cfg.argv()], capture_output=True, text=True,
                             timeout=args.seconds + 120)
        status = (helper.result_or_none(out.stdout, EngineResult, "latlab client")
                  or EngineResult(status="error", error=(out.stdout + out.stderr)[-300:]))
        mid = _counters()
        holds, facts, summary = _evidence(args.stack, args.proto, before, mid, status.measured, status)
        descriptors.append({"group": group, "engine": "latlab", "role": "own", "metric": "RTT", "format": "npz",
                            "file": f"{tag}.npz", "key": "rtt_ns", "send_key": "send_ns",
                            "status": status.model_dump(),
                            "timestamps": "latlab user space CLOCK_MONOTONIC on the client host",
                            "params": {**params, "evidence": {"holds": holds, **facts}},
                            "note": ("evidence: " if holds else "not accelerated: ") + summary,
                            "drop_samples": not holds})
        log = args.workdir / f"{tag}-sockperf.csv"
        subprocess.run([*wrap, "sockperf", "ping-pong", "-i", args.server, "-p", str(args.port + 1), "-m",
                        str(args.size), "-t", str(max(1, round(args.seconds))),
                        *(["--tcp"] if args.proto == "tcp" else []), *(["--nonblocked"] if busy else []),
                        "--full-log", str(log)], capture_output=True, text=True, timeout=args.seconds + 60)
        from latlab.reference.sockperf import parse_full_log

        n = len(parse_full_log(log).rtt_ns) if log.exists() else 0
        holds, facts, summary = _evidence(args.stack, args.proto, mid, _counters(), n, None)
        descriptors.append({"group": group, "engine": "sockperf", "role": "reference", "metric": "RTT",
                            "format": "sockperf-full-log", "file": log.name,
                            "timestamps": "sockperf --full-log on the client host",
                            "params": {**params, "evidence": {"holds": holds, **facts}},
                            "note": ("evidence: " if holds else "not accelerated: ") + summary,
                            "drop_samples": not holds})
    finally:
        _restore(args.workdir, "client")
    return descriptors


def stop(args: argparse.Namespace) -> None:
    for path in args.workdir.glob("pids-*.json"):
        for pid in json.loads(path.read_text()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        path.unlink()
    _restore(args.workdir, "server")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m toe_bench.hostrun", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("serve", "client", "stop"))
    p.add_argument("--stack", choices=STACKS, default="kernel")
    p.add_argument("--proto", choices=("udp", "tcp"), default="udp")
    p.add_argument("--host", help="serve: the address to listen on")
    p.add_argument("--server", help="client: the server's address")
    p.add_argument("--port", type=int, default=17501)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--workdir", type=Path, required=True)
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.action == "serve":
        print(json.dumps(serve(args)))
    elif args.action == "client":
        for i, desc in enumerate(client(args)):
            path = args.workdir / f"case-{args.stack}-{args.proto}-{i}.json"
            path.write_text(json.dumps(desc))
            print(path.name)
    else:
        stop(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
