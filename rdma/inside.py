"""Run the RDMA tests on this machine (a lab host with a device, or inside the soft-RoCE VM).

`python -m rdma.inside --out DIR ...` optionally creates the rxe device (--setup-rxe), runs latlab's
drivers (one server and one client process for all tests) and perftest for send/write/read, and
writes DIR/inside.json plus one .npz per result. Everything it starts is bounded by --timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latlab import helper
from latlab.abba import segment_order
from latlab.errors import LatlabError
from rdma import perftest
from rdma.devices import describe, pick_gid
from rdma.driver import DriverConfig, VerbsResult, samples_path

PY = sys.executable


def setup_rxe(netdev: str, address: str, device: str) -> None:
    """A veth pair with `address` on `netdev` and one rxe device over it (the loopback fallback: one device
    serves both ends, so the traffic never crosses the veth)."""
    peer = netdev + "p"
    for cmd in (["modprobe", "rdma_rxe"], ["modprobe", "rdma_ucm"],
                ["ip", "link", "add", netdev, "type", "veth", "peer", "name", peer],
                ["ip", "addr", "add", address, "dev", netdev], ["ip", "link", "set", netdev, "up"],
                ["ip", "link", "set", peer, "up"], ["rdma", "link", "add", device, "type", "rxe", "netdev", netdev]):
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class WirePair:
    """Two rxe devices, one per end of a veth pair, in the root namespace: client end `a`, server end `b`."""

    a: str = "rxa"
    b: str = "rxb"
    a_ip: str = "10.9.0.1"
    b_ip: str = "10.9.0.2"
    a_dev: str = "rxe0"
    b_dev: str = "rxe1"

    def commands(self) -> list[list[str]]:
        """rxe on kernels like 6.1 works in the root namespace only, and there two local addresses would talk
        through loopback: incoming packets are looked up in `local` by interface, and each address's outgoing
        traffic is routed out of its own veth end (source rules), so that RoCE packets cross the wire."""
        a, b = self.a, self.b
        return [
            ["modprobe", "rdma_rxe"], ["modprobe", "rdma_ucm"],
            ["ip", "link", "add", a, "type", "veth", "peer", "name", b],
            ["ip", "addr", "add", f"{self.a_ip}/24", "dev", a], ["ip", "addr", "add", f"{self.b_ip}/24", "dev", b],
            ["ip", "link", "set", a, "up"], ["ip", "link", "set", b, "up"],
            ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", f"net.ipv4.conf.{a}.rp_filter=0",
             f"net.ipv4.conf.{b}.rp_filter=0", f"net.ipv4.conf.{a}.accept_local=1",
             f"net.ipv4.conf.{b}.accept_local=1"],
            ["ip", "rule", "add", "pref", "100", "iif", a, "lookup", "local"],
            ["ip", "rule", "add", "pref", "101", "iif", b, "lookup", "local"],
            ["ip", "rule", "add", "pref", "200", "from", self.a_ip, "lookup", "10"],
            ["ip", "rule", "add", "pref", "201", "from", self.b_ip, "lookup", "11"],
            ["ip", "route", "add", self.b_ip, "dev", a, "table", "10"],
            ["ip", "route", "add", self.a_ip, "dev", b, "table", "11"],
            ["ip", "rule", "add", "pref", "1000", "lookup", "local"], ["ip", "rule", "del", "pref", "0"],
            ["ip", "neigh", "replace", self.b_ip, "lladdr", f"@{b}", "dev", a, "nud", "permanent"],
            ["ip", "neigh", "replace", self.a_ip, "lladdr", f"@{a}", "dev", b, "nud", "permanent"],
            ["rdma", "link", "add", self.a_dev, "type", "rxe", "netdev", a],
            ["rdma", "link", "add", self.b_dev, "type", "rxe", "netdev", b],
        ]

    def teardown(self) -> None:
        """Undo everything, the local rule back at pref 0 first; missing pieces are ignored."""
        for cmd in (["ip", "rule", "add", "pref", "0", "lookup", "local"], ["ip", "rule", "del", "pref", "1000"],
                    *(["ip", "rule", "del", "pref", str(p)] for p in (100, 101, 200, 201)),
                    ["ip", "route", "flush", "table", "10"], ["ip", "route", "flush", "table", "11"],
                    ["rdma", "link", "del", self.a_dev], ["rdma", "link", "del", self.b_dev],
                    ["ip", "link", "del", self.a]):
            if cmd[:4] == ["ip", "rule", "add", "pref"] and _has_local_rule_at_zero():
                continue
            subprocess.run(cmd, capture_output=True, timeout=60)

    def counters(self) -> dict[str, int]:
        """The two ends' packet counters: what crossed the wire."""
        return {f"{end}_{kind}": int(Path(f"/sys/class/net/{end}/statistics/{kind}").read_text())
                for end in (self.a, self.b) for kind in ("tx_packets", "rx_packets")}


def _mac(ifname: str) -> str:
    return Path(f"/sys/class/net/{ifname}/address").read_text().strip()


def _has_local_rule_at_zero() -> bool:
    out = subprocess.run(["ip", "rule", "show", "pref", "0"], capture_output=True, text=True, timeout=30).stdout
    return "lookup local" in out


def setup_pair(pair: WirePair) -> None:
    """Build the pair; `@ifname` in a command stands for that interface's MAC, known once the link exists."""
    for cmd in pair.commands():
        cmd = [_mac(word[1:]) if word.startswith("@") else word for word in cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")


def wire_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def _json_lines(text: str) -> list[dict]:
    """The driver's RESULT lines (one per test); its ERROR as a result row that says so."""
    try:
        return [r.model_dump() for r in helper.results(text, VerbsResult, "rdma driver")]
    except LatlabError as exc:
        return [{"status": "error", "error": str(exc)}]


def _driver_fields(args: argparse.Namespace, host: str, tests: str, **extra: Any) -> dict[str, Any]:
    """The DriverConfig fields both sides share, from the command line; `extra` adds or overrides."""
    return {"tests": tests, "size": args.size, "iterations": args.iterations, "warmup": args.warmup,
            "tcp_port": args.tcp_port, "timeout": args.verbs_timeout, "events": args.events,
            "inline": not args.no_inline, "host": host, **extra}


def run_drivers(args: argparse.Namespace, host: str, impl: str, server_impl: str | None = None,
                extra: dict[str, Any] | None = None, tests: str | None = None,
                folder: str | None = None) -> list[dict]:
    """latlab's client (`impl`) against a server (`server_impl`, default the same) for every test; samples go to
    args.out/<folder> (default: the implementation's name). `extra`: DriverConfig fields for both sides."""
    out = args.out / (folder or (impl if server_impl is None else f"{impl}-vs-{server_impl}"))
    common = _driver_fields(args, host, tests or args.tests, **(extra or {}))
    server_cfg = DriverConfig(role="server", impl=server_impl or impl, device=args.server_device,
                              netdev=args.server_netdev, **common)
    client_cfg = DriverConfig(role="client", impl=impl, out=out, device=args.device, netdev=args.netdev, **common)
    wire_before = args.wire.counters() if args.wire else {}
    server = subprocess.Popen([PY, "-m", "rdma.driver", *server_cfg.argv()],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = subprocess.run([PY, "-m", "rdma.driver", *client_cfg.argv()],
                                capture_output=True, text=True, timeout=args.timeout)
        server_out = server.communicate(timeout=60)[0]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    wire = wire_delta(wire_before, args.wire.counters()) if args.wire else None
    clients = _json_lines(client.stdout)
    servers = {r.get("test"): r for r in _json_lines(server_out)}
    for r in clients:
        r["server"] = servers.get(r.get("test"), {})
        r["wire"] = wire  # for the whole group of tests of this call
    if not clients:
        clients = [{"status": "error", "error": (client.stdout + client.stderr)[-500:]}]
    return clients


# perftest's tools listen on their default port (18515, latlab's too); latlab's paced server, which stays up between
# its segments while perftest runs, listens this far above it.
PACED_PORT_OFFSET = 2


class PacedDrivers:
    """latlab's server and client started once for `segments` runs of one test, the client run segment by segment
    (the driver's `segments`): the start of a segment costs a connection and a queue pair, not two Python starts
    (about 10 s in the TCG VM, where perftest's start takes 1.5 s)."""

    def __init__(self, args: argparse.Namespace, host: str, test: str, segments: int) -> None:
        self.args, self.test, self.segments = args, test, segments
        self.out = args.out / f"c-{test}-segments"
        common = _driver_fields(args, host, test, tcp_port=args.tcp_port + PACED_PORT_OFFSET, segments=segments)
        # between two of latlab's segments perftest runs, up to twice (a second attempt) for up to args.timeout
        server_cfg = DriverConfig(role="server", impl="c", device=args.server_device, netdev=args.server_netdev,
                                  accept_timeout=2 * args.timeout + 60, **common)
        client_cfg = DriverConfig(role="client", impl="c", out=self.out, device=args.device, netdev=args.netdev,
                                  **common)
        self.server = subprocess.Popen([PY, "-m", "rdma.driver", *server_cfg.argv()],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.client = Printing([PY, "-m", "rdma.driver", *client_cfg.argv()], stdin=True)

    def samples(self, segment: int) -> Path:
        """The client's samples of one segment."""
        return samples_path(self.out, self.test, segment, self.segments)

    def segment(self, segment: int, iterations: int) -> dict:
        """Run the next segment; the client's row, with the wire counters over this segment alone."""
        wire_before = self.args.wire.counters() if self.args.wire else {}
        row = self._next_result(segment, iterations)
        row["wire"] = wire_delta(wire_before, self.args.wire.counters()) if self.args.wire else None
        return row

    def _next_result(self, segment: int, iterations: int) -> dict:
        stdin = self.client.proc.stdin
        assert stdin is not None
        try:
            stdin.write(f"{iterations}\n")
            stdin.flush()
        except OSError:
            return self._failed(f"latlab's client was gone before segment {segment}")
        deadline = time.monotonic() + self.args.timeout
        while True:
            try:
                line = self.client.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.client.kill()
                return self._failed(f"latlab's client gave no result for segment {segment} within "
                                    f"{self.args.timeout:.0f} s (killed)")
            if line is None:
                return self._failed(f"latlab's client exited before the end of segment {segment}")
            if line.startswith((helper.RESULT + " ", helper.ERROR + " ")):
                return _json_lines(line)[0]

    def _failed(self, why: str) -> dict:
        return {"test": self.test, "status": "error", "error": f"{why}; it said: {_tail(self.client.text)}"}

    def close(self) -> dict[int, dict]:
        """End both processes (killed if they do not end by themselves); the server's rows by segment."""
        server_out = ""
        try:
            if self.client.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.client.proc.stdin.close()
            self.client.proc.wait(timeout=60)
            server_out = self.server.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            pass
        finally:
            self.client.kill()
            if self.server.poll() is None:
                self.server.kill()
                self.server.wait()
        return {r.get("segment", 0): r for r in _json_lines(server_out) if "test" in r}


def run_side_by_side(args: argparse.Namespace, host: str, gid_index: int,
                     server_gid_index: int) -> tuple[list[dict], list[dict]]:
    """latlab's compiled engine and perftest test by test, each test's iterations split into `args.segments`
    segments that alternate in ABBA order (latlab first in segments 0 and 3, perftest first in 1 and 2, and so on),
    each side's segments pooled into one row. In the TCG VM the emulated CPU's speed drifts from minute to minute;
    runs minutes apart differed by up to ±28 % at p50, runs seconds apart and interleaved see the same drift.
    latlab's two processes stay up across a test's segments (PacedDrivers), perftest's start for each.
    Returns (latlab's rows, perftest's rows); the tests perftest has no tool for run alone, as before."""
    tests = args.tests.split(",")
    paired = [t for t in tests if t in perftest.TOOLS]
    alone = ",".join(t for t in tests if t not in perftest.TOOLS and t != "cm")
    sizes = _split(args.iterations, args.segments)
    own: list[dict] = []
    tools: list[dict] = []
    for test in paired:
        own_parts: list[dict] = []
        tool_parts: list[dict] = []
        drivers = PacedDrivers(args, host, test, len(sizes))
        try:
            for seg, iterations in enumerate(sizes):
                for side in segment_order(("latlab", "perftest"), seg):
                    if side == "latlab":
                        own_parts.append(drivers.segment(seg, iterations))
                    else:
                        tool_parts.append(_perftest_attempts(args, host, gid_index, server_gid_index, test,
                                                             iterations, f"perftest-{test}-seg{seg}.npz"))
        finally:
            servers = drivers.close()
        for part in own_parts:
            part["server"] = servers.get(part.get("segment", -1), {})
        own.append(_pool_own(args.out, test, own_parts, [drivers.samples(k) for k in range(len(sizes))]))
        tools.append(_pool_perftest(args.out, test, tool_parts, [f"perftest-{test}-seg{k}.npz"
                                                                  for k in range(len(sizes))]))
    if alone:
        own.extend(run_drivers(args, host, "c", tests=alone))
    return own, tools


def _split(total: int, parts: int) -> list[int]:
    """`total` iterations in `parts` segments as even as can be (the first ones one longer)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def _sum_counters(parts: list[dict | None]) -> dict[str, int] | None:
    present = [p for p in parts if p]
    if not present:
        return None
    return {k: sum(p.get(k, 0) for p in present) for k in present[0]}


def _pool_own(out: Path, test: str, parts: list[dict], files: list[Path]) -> dict:
    """One row of latlab's segments of a test: samples concatenated in time order into c/<test>.npz, counts summed;
    a segment that failed makes the row fail with its error."""
    failed = next((p for p in parts if p.get("status") != "ok"), None)
    row = {**parts[0], "test": test, "segments": len(files),
           "measured": sum(p.get("measured", 0) for p in parts), "warmup": sum(p.get("warmup", 0) for p in parts),
           "server": {**parts[0].get("server", {}),
                      "answered": sum(p.get("server", {}).get("answered", 0) for p in parts)},
           "wire": _sum_counters([p.get("wire") for p in parts])}
    if failed is not None:
        return {**row, "status": failed.get("status", "error"), "error": failed.get("error", "")}
    if len(parts) != len(files) or not all(f.exists() for f in files):
        return {**row, "status": "error", "error": "a segment wrote no samples"}
    data = [np.load(f) for f in files]
    (out / "c").mkdir(exist_ok=True)
    np.savez(out / "c" / f"{test}.npz", rtt_ns=np.concatenate([d["rtt_ns"] for d in data]),
             send_ns=np.concatenate([d["send_ns"] for d in data]))
    return row


def _pool_perftest(out: Path, test: str, parts: list[dict], names: list[str]) -> dict:
    """One row of perftest's segments of a test: its -H samples (sorted, no time order) pooled into
    perftest-<test>.npz, each segment's summary kept; a segment that failed makes the row fail."""
    failed = next((p for p in parts if p["status"] != "ok"), None)
    notes = [f"segment {k}: {p['note']}" for k, p in enumerate(parts) if p.get("note")]
    row = {**parts[0], "segments": len(names), "summary_us": [p.get("summary_us", {}) for p in parts],
           "wire": _sum_counters([p.get("wire") for p in parts]), "note": "; ".join(notes)}
    if failed is not None:
        return {**row, "status": "error", "error": failed.get("error", "")}
    np.savez(out / f"perftest-{test}.npz",
             samples_ns=np.concatenate([np.load(out / name)["samples_ns"] for name in names]))
    return row


def run_perftest(args: argparse.Namespace, host: str, gid_index: int, server_gid_index: int) -> list[dict]:
    """perftest's latency tool for each test, beside latlab's engine on the same devices. A tool that ends without
    samples (ib_write_lat printing "inf" now and then in the emulated VM) gets a second attempt; the row says so."""
    return [_perftest_attempts(args, host, gid_index, server_gid_index, test, args.iterations, f"perftest-{test}.npz")
            for test in args.tests.split(",") if test in perftest.TOOLS]


def _perftest_attempts(args: argparse.Namespace, host: str, gid_index: int, server_gid_index: int, test: str,
                       iterations: int, npz: str) -> dict:
    """One perftest run of `test`; a second attempt when the first ended without samples."""
    result = _perftest_once(args, host, gid_index, server_gid_index, test, iterations, npz)
    if result["status"] != "ok":
        first = result["error"]
        result = _perftest_once(args, host, gid_index, server_gid_index, test, iterations, npz)
        result["first_attempt"] = first
        if result["status"] == "ok":
            result["note"] = "; ".join(n for n in (f"second attempt (the first: {first[:120]})",
                                                   result.get("note", "")) if n)
    return result


def _perftest_once(args: argparse.Namespace, host: str, gid_index: int, server_gid_index: int, test: str,
                   iterations: int, npz: str) -> dict:
    tool = perftest.TOOLS[test]
    server = Printing(perftest.argv(test, args.server_device, server_gid_index, args.size, iterations, None))
    wire_before = args.wire.counters() if args.wire else {}
    client: Printing | None = None
    try:
        time.sleep(0.5)
        client = Printing(perftest.argv(test, args.device, gid_index, args.size, iterations, host))
        client_end = client.finish(args.timeout)
        server_end = server.finish(TEARDOWN_GRACE_S)
    finally:
        for side in (client, server):
            if side is not None:
                side.kill()
    if client_end not in (0, HUNG_AT_TEARDOWN):
        why = f"ran past {args.timeout:.0f} s" if client_end is None else f"exited {client_end}"
        return {"test": test, "status": "error",
                "error": f"{tool} {why}; it said: {_tail(client.text)}; its server said: {_tail(server.text)}"}
    try:
        samples = perftest.parse_raw(client.text)
        summary = perftest.parse_summary(client.text)
    except Exception as exc:
        return {"test": test, "status": "error", "error": str(exc)}
    np.savez(args.out / npz, samples_ns=samples)
    result = {"test": test, "status": "ok", "tool": tool, "summary_us": summary,
              "half_rtt": test in perftest.HALF_RTT_TESTS,
              "wire": wire_delta(wire_before, args.wire.counters()) if args.wire else None}
    notes = []
    if client_end == HUNG_AT_TEARDOWN:
        notes.append(f"{tool} printed its full result, then hung tearing down (killed {TEARDOWN_GRACE_S:.0f} s later)")
    if server_end in (HUNG_AT_TEARDOWN, None):
        notes.append(f"its server did not exit within {TEARDOWN_GRACE_S:.0f} s of the client (killed)")
    if notes:
        result["note"] = "; ".join(notes)
    return result


# Each side's output is read while it runs: with -H a server prints every sample (5,000 lines, more than a pipe
# holds), and a server left writing into a full pipe never reaches perftest's closing handshake, so its client hung
# too (the "perftest timed out" of earlier stack-VM runs). A side that has printed its summary is done measuring:
# one that then does not exit within TEARDOWN_GRACE_S is killed, its result kept, and the row says so.
TEARDOWN_GRACE_S = 10.0
HUNG_AT_TEARDOWN = -1000


class Printing:
    """A started process (a perftest side, latlab's paced client) whose output is read as it comes, so a hang after
    its summary can be told from a hang before it; its lines are also queued, None after the last."""

    def __init__(self, argv: list[str], stdin: bool = False) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else None, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self._lines: list[str] = []
        self.queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line)
            self.queue.put(line)
        self.queue.put(None)

    @property
    def text(self) -> str:
        return "".join(self._lines)

    def finish(self, timeout: float) -> int | None:
        """Its exit code; HUNG_AT_TEARDOWN when it printed its summary and did not exit TEARDOWN_GRACE_S later;
        None when it had printed no summary by `timeout` (it is killed then)."""
        deadline, printed_at = time.monotonic() + timeout, None
        while self.proc.poll() is None:
            now = time.monotonic()
            if printed_at is None and perftest.has_summary(self.text):
                printed_at = now
            if printed_at is not None and now - printed_at > TEARDOWN_GRACE_S:
                self.kill()
                return HUNG_AT_TEARDOWN
            if printed_at is None and now > deadline:
                self.kill()
                return None
            time.sleep(0.1)
        self._reader.join(timeout=5)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=5)


def _tail(text: str, lines: int = 4) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:]) or "(nothing printed)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rdma.inside")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="rxe0")
    p.add_argument("--netdev", default="rxev0")
    p.add_argument("--address", default="10.9.0.1/24")
    p.add_argument("--setup-rxe", action="store_true", help="one rxe device on a veth (loopback: never on the wire)")
    p.add_argument("--setup-rxe-pair", action="store_true",
                   help="an rxe device on each end of a veth pair, so that RoCE traffic crosses the veth")
    p.add_argument("--server-device", help="default: --device")
    p.add_argument("--server-netdev", help="default: --netdev")
    p.add_argument("--tests", default="send,write,read,ud,cm")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--events", action="store_true")
    p.add_argument("--no-inline", action="store_true")
    p.add_argument("--perftest", action="store_true")
    p.add_argument("--segments", type=int, default=1,
                   help="with --perftest: latlab and perftest alternate per test in this many segments (ABBA)")
    p.add_argument("--reference", action="store_true",
                   help="also run the pyverbs reference, and the compiled client against a pyverbs server")
    p.add_argument("--fault-check", action="store_true", help="also run a WRITE with a bad rkey (tests)")
    p.add_argument("--tcp-port", type=int, default=18515)
    p.add_argument("--verbs-timeout", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=180.0)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.wire = None
    record: dict = {"kernel": os.uname().release, "started": time.time()}
    try:
        if args.setup_rxe_pair:
            args.wire = WirePair()
            record["path"] = "wire"
            args.device, args.netdev = args.wire.a_dev, args.wire.a
            args.server_device, args.server_netdev = args.wire.b_dev, args.wire.b
            setup_pair(args.wire)
        elif args.setup_rxe:
            record["path"] = "loopback"
            setup_rxe(args.netdev, args.address, args.device)
        args.server_device = args.server_device or args.device
        args.server_netdev = args.server_netdev or args.netdev
        gid = pick_gid(args.device, 1, None, args.netdev)
        server_gid = pick_gid(args.server_device, 1, None, args.server_netdev)
        host = server_gid.ipv4 or args.address.split("/")[0]
        record.update({"device": args.device, "server_device": args.server_device, "gid_index": gid.index,
                       "gid": gid.gid, "server_gid": server_gid.gid, "netdev": args.netdev,
                       "server_netdev": args.server_netdev, "devices": describe()})
        verbs_tests = ",".join(t for t in args.tests.split(",") if t != "cm")
        if args.perftest and args.segments > 1:
            record["segments"] = args.segments
            record["latlab"], record["perftest"] = run_side_by_side(args, host, gid.index, server_gid.index)
        else:
            record["latlab"] = run_drivers(args, host, "c", tests=verbs_tests)
        if "cm" in args.tests.split(","):
            record["rdma_cm"] = run_drivers(args, host, "python", tests="cm")
        if args.fault_check:
            # A WRITE with a corrupted rkey: both engines must report the verbs status and the work request.
            record["fault"] = {impl: run_drivers(args, host, impl, extra={"fault": "bad-rkey", "timeout": 5},
                                                 tests="write", folder=f"fault-{impl}") for impl in ("c", "python")}
        if args.reference:
            tests = ",".join(t for t in args.tests.split(",") if t != "cm")
            record["pyverbs"] = run_drivers(args, host, "python", tests=tests)
            record["interop"] = run_drivers(args, host, "c", "python", tests=tests)
        if "perftest" not in record:
            record["perftest"] = run_perftest(args, host, gid.index, server_gid.index) if args.perftest else []
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if args.wire:
            args.wire.teardown()
    tmp = args.out / "inside.json.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, args.out / "inside.json")
    return 0 if "error" not in record else 1


if __name__ == "__main__":
    sys.exit(main())
