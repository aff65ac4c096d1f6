"""sockperf: ping-pong on a lab path, with `--full-log` parsed into nanosecond RTT samples.

sockperf's summary reports RTT/2 ("latency"). The full log gives each message's txTime and rxTime
(seconds, 9 decimals, sockperf's clock in user space), so the true RTT is rxTime − txTime, which is
what latlab records, to be compared with its own RTT.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latlab.cpu import taskset
from latlab.errors import LatlabError
from latlab.netstat import udp_counters, udp_delta
from latlab.procs import Proc, require_tool, running
from latlab.topology import LabHost

PACKAGE = "sockperf"
TIMESTAMPS = "sockperf user space: txTime before send, rxTime after receive (--full-log); RTT = rx − tx"

_PERCENTILE = re.compile(r"percentile\s+([\d.]+)\s*=\s*([\d.]+)")
_EXTREME = re.compile(r"<(MAX|MIN)> observation\s*=\s*([\d.]+)")
_TOTAL = re.compile(r"SentMessages=(\d+); ReceivedMessages=(\d+)")
_DROPS = re.compile(r"# dropped messages = (\d+); # duplicated messages = (\d+); # out-of-order messages = (\d+)")


@dataclass
class FullLog:
    """Per-message samples from a --full-log CSV: send time and RTT, nanoseconds."""

    send_ns: np.ndarray
    rtt_ns: np.ndarray
    malformed: int


def _seconds_to_ns(text: str) -> int:
    whole, _, frac = text.strip().partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


def parse_full_log(path: Path) -> FullLog:
    """Parse `packet, txTime(sec), rxTime(sec), latency(usec)` rows; rows that do not parse are counted."""
    sends: list[int] = []
    rtts: list[int] = []
    malformed = 0
    with open(path) as f:
        for line in f:
            if not line[:1].isdigit():
                continue  # sockperf repeats its summary and a header above the rows
            parts = line.split(",")
            if len(parts) != 4:
                malformed += 1
                continue
            try:
                tx, rx = _seconds_to_ns(parts[1]), _seconds_to_ns(parts[2])
            except ValueError:
                malformed += 1
                continue
            if rx <= tx:  # unanswered messages carry rxTime 0
                malformed += 1
                continue
            sends.append(tx)
            rtts.append(rx - tx)
    return FullLog(np.array(sends, dtype=np.int64), np.array(rtts, dtype=np.int64), malformed)


def parse_summary(text: str) -> dict[str, float]:
    """sockperf's own printed figures (RTT/2, µs): percentiles as p<N>, min, max, and message counts."""
    out: dict[str, float] = {}
    for pct, value in _PERCENTILE.findall(text):
        out[f"p{float(pct):g}"] = float(value)
    for name, value in _EXTREME.findall(text):
        out[name.lower()] = float(value)
    totals = _TOTAL.findall(text)
    if totals:
        out["sent"], out["received"] = (float(v) for v in totals[-1])
    drops = _DROPS.findall(text)
    if drops:
        out["dropped"], out["duplicated"], out["out_of_order"] = (float(v) for v in drops[-1])
    return out


def version() -> str:
    from latlab.procs import tool_version

    return tool_version(["sockperf", "--version"]).replace("sockperf, version ", "")


def pingpong(*, client: LabHost, server: LabHost, proto: str, size: int, busy: bool, duration_s: float,
             port: int, workdir: Path, tag: str, client_wrap: Sequence[str] = (), server_wrap: Sequence[str] = (),
             serve: bool = True, ready_timeout: float = 10.0,
             while_serving: Callable[[], None] | None = None,
             server_ready: Callable[[int], None] | None = None) -> tuple[FullLog, dict[str, float], bool]:
    """Run sockperf server on `server` and ping-pong from `client`; returns (samples, summary, complete).

    `client_wrap`/`server_wrap` prefix each side's argv (a user-space stack's launcher, say); with
    `serve=False` no sockperf server starts: a reflector of the caller's answers instead.
    A KeyboardInterrupt stops both; whatever the full log holds by then is returned as incomplete.
    """
    require_tool("sockperf", PACKAGE)
    flags = (["--tcp"] if proto == "tcp" else []) + (["--nonblocked"] if busy else [])
    server_argv = server.command([*server_wrap, *taskset(server.cpu), "sockperf", "server", "-i", server.address,
                                  "-p", str(port), *flags])
    log_path = workdir / f"sockperf-{tag}.csv"
    client_argv = client.command([*client_wrap, *taskset(client.cpu), "sockperf", "ping-pong", "-i", server.address,
                                  "-p", str(port), "-m", str(size), "-t", str(max(1, round(duration_s))),
                                  "--full-log", str(log_path), *flags])
    complete = True
    server_cm = running(server_argv, workdir / f"sockperf-server-{tag}.log", "sockperf server",
                        ready="listen on", ready_timeout=ready_timeout) if serve else contextlib.nullcontext()
    with server_cm:
        if serve and server_ready:
            server_ready(port)
        cli = Proc(client_argv, workdir / f"sockperf-client-{tag}.log", "sockperf client")
        try:
            rc = cli.wait(timeout=duration_s + 90)  # a slow start (the emulated VM) must not cut it short
            if rc != 0:
                raise LatlabError(f"sockperf ping-pong exited {rc}: {cli.tail()}")
            if while_serving:
                while_serving()
        except KeyboardInterrupt:
            complete = False
        finally:
            cli.stop(grace=5)
    if not log_path.exists():
        if complete:
            raise LatlabError(f"sockperf wrote no full log: {cli.tail()}")
        return FullLog(np.zeros(0, np.int64), np.zeros(0, np.int64), 0), {}, False
    return parse_full_log(log_path), parse_summary(cli.output()), complete


_RATE = re.compile(r"Summary: Message Rate is (\d+) \[msg/sec\]")


def parse_message_rate(text: str) -> float:
    """The `Summary: Message Rate is N [msg/sec]` of sockperf's throughput mode."""
    match = _RATE.search(text)
    if not match:
        raise LatlabError(f"sockperf printed no message rate: {text.strip()[-200:]!r}")
    return float(match.group(1))


def _multicast_servers(servers: list[LabHost], group: str, port: int, workdir: Path, tag: str,
                       stack: contextlib.ExitStack) -> None:
    for host in servers:
        stack.enter_context(running(host.command([*taskset(host.cpu), "sockperf", "server", "-i", group, "-p",
                                                  str(port), "--mc-rx-if", host.address]),
                                    workdir / f"sockperf-mc-server-{tag}-{host.name}.log",
                                    f"sockperf server {host.name}", ready="listen on"))


@dataclass
class MulticastThroughput:
    """sockperf's sender rate, and what each receiving host's kernel took in and dropped meanwhile."""

    rate: float
    received: dict[str, int]
    dropped: dict[str, int]


def multicast_throughput(*, sender: LabHost, servers: list[LabHost], group: str, port: int, size: int,
                         duration_s: float, workdir: Path, tag: str) -> MulticastThroughput:
    """sockperf throughput to a multicast group joined by every server: the sender's message rate. sockperf
    does not count what its servers lose, so each server host's UDP counters are read around the run."""
    require_tool("sockperf", PACKAGE)
    with contextlib.ExitStack() as stack:
        _multicast_servers(servers, group, port, workdir, tag, stack)
        before = {h.name: udp_counters(h) for h in servers}
        out = subprocess.run(sender.command([*taskset(sender.cpu), "sockperf", "throughput", "-i", group, "-p",
                                             str(port), "--mc-tx-if", sender.address, "-m", str(size), "-t",
                                             str(max(1, round(duration_s)))]),
                             capture_output=True, text=True, timeout=duration_s + 30)
        deltas = {h.name: udp_delta(before[h.name], udp_counters(h)) for h in servers}
    return MulticastThroughput(parse_message_rate(out.stdout + out.stderr),
                               {n: d.get("InDatagrams", 0) for n, d in deltas.items()},
                               {n: d.get("RcvbufErrors", 0) for n, d in deltas.items()})


def multicast_underload(*, sender: LabHost, server: LabHost, group: str, port: int, size: int, rate: int,
                        duration_s: float, workdir: Path, tag: str) -> FullLog:
    """sockperf under-load to the group at `rate` msg/s; one server replies: RTT samples from the full log."""
    require_tool("sockperf", PACKAGE)
    log_path = workdir / f"sockperf-mc-underload-{tag}.csv"
    with contextlib.ExitStack() as stack:
        _multicast_servers([server], group, port, workdir, tag, stack)
        argv = [*taskset(sender.cpu), "sockperf", "under-load", "-i", group, "-p", str(port), "--mc-tx-if",
                sender.address, "-m", str(size), "--mps", str(rate), "--reply-every", "1", "-t",
                str(max(1, round(duration_s))), "--full-log", str(log_path)]
        out = subprocess.run(sender.command(argv),
                             capture_output=True, text=True, timeout=duration_s + 30)
    if not log_path.exists():
        raise LatlabError(f"sockperf under-load wrote no log: {(out.stdout + out.stderr).strip()[-200:]}")
    return parse_full_log(log_path)
