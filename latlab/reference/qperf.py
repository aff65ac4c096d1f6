"""qperf: tcp_lat / udp_lat on a lab path. qperf prints only a mean "latency", which is RTT/2."""

from __future__ import annotations

import re
from pathlib import Path

from latlab.cpu import taskset
from latlab.errors import LatlabError
from latlab.procs import Proc, require_tool, running, tool_version
from latlab.topology import LabHost

PACKAGE = "qperf"
_UNITS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "sec": 1e9, "s": 1e9}
_LATENCY = re.compile(r"latency\s*=\s*([\d.]+)\s*(ns|us|ms|sec|s)\b")


def parse_latency_ns(text: str) -> float:
    """The `latency = N unit` figure of qperf's output, in nanoseconds."""
    match = _LATENCY.search(text)
    if not match:
        raise LatlabError(f"qperf printed no latency: {text.strip()[-200:]!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def version() -> str:
    return tool_version(["qperf", "--version"])


def latency(*, client: LabHost, server: LabHost, proto: str, size: int, duration_s: float, port: int,
            workdir: Path, tag: str) -> float:
    """Mean one-way latency (qperf's RTT/2) in ns for tcp_lat or udp_lat."""
    require_tool("qperf", PACKAGE)
    server_argv = server.command([*taskset(server.cpu), "qperf", "--listen_port", str(port)])
    client_argv = client.command([*taskset(client.cpu), "qperf", "--listen_port", str(port), "-m", str(size),
                                  "-t", str(max(1, round(duration_s))), server.address, f"{proto}_lat"])
    with running(server_argv, workdir / f"qperf-server-{tag}.log", "qperf server") as srv:
        # qperf prints nothing when it is listening; wait until its port answers instead.
        _wait_listening(server, port, srv)
        cli = Proc(client_argv, workdir / f"qperf-client-{tag}.log", "qperf client")
        try:
            rc = cli.wait(timeout=duration_s + 30)
        finally:
            cli.stop()
        if rc != 0:
            raise LatlabError(f"qperf exited {rc}: {cli.tail()}")
        return parse_latency_ns(cli.output())


def _wait_listening(host: LabHost, port: int, proc: Proc, timeout: float = 5.0) -> None:
    import subprocess
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(host.command(["ss", "-Hltn", f"sport = :{port}"]), capture_output=True, text=True)
        if out.stdout.strip():
            return
        if proc.popen.poll() is not None:
            raise LatlabError(f"qperf server exited: {proc.tail()}")
        time.sleep(0.05)
    raise LatlabError(f"qperf server not listening on {port} after {timeout:.0f} s")
