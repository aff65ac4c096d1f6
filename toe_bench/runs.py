"""Running latlab's ping-pong engine and sockperf on the lab's a → b path, under whatever a stack wraps them in.

A stack hands a `Runtime`: an argv prefix per side (`onload --profile=latency`, `env LD_PRELOAD=...`),
extra engine arguments (`--busy-poll-us 50`), and whether the usual server runs at all (AF_XDP and DPDK
answer with a reflector of their own instead).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from latlab import helper
from latlab.errors import LatlabError
from latlab.plugin import RunContext
from latlab.procs import Proc, running
from latlab.reference import sockperf
from latlab.results import RTT, CaseResult
from toe_bench.engine import COMMAND as ENGINE
from toe_bench.engine import EngineConfig, EngineResult
from toe_bench.stacks.base import CaseSpec

if TYPE_CHECKING:
    from toe_bench.plugin import PingPongParams

OWN_TIMESTAMPS = "latlab user space, CLOCK_MONOTONIC: before send(), after the echo's last byte is received"


@dataclass
class Runtime:
    """How a stack runs the engines and sockperf."""

    client_wrap: list[str] = field(default_factory=list)
    server_wrap: list[str] = field(default_factory=list)
    engine_options: dict[str, Any] = field(default_factory=dict)  # EngineConfig fields (busy_poll_us=50)
    serve: bool = True  # start latlab's (or sockperf's) own server; False: the stack's reflector answers
    ready_timeout: float = 30.0  # a first start in the emulated VM (cold caches, numpy) can take 10 s and more
    while_serving: Callable[[], None] | None = None  # called after the client ends, before the server stops
    server_ready: Callable[[int], None] | None = None  # called with the port once the server says READY


@dataclass
class EngineRun:
    """latlab's engine on one case: its row (samples, no evidence yet) and what both processes said."""

    result: CaseResult
    client: EngineResult
    server: EngineResult | None


def engine_result(text: str) -> EngineResult | None:
    """The engine's RESULT, or None when it printed none (or an ERROR)."""
    return helper.result_or_none(text, EngineResult, "latlab engine")


def interrupt(proc: Proc) -> None:
    """Ask a client to stop and save what it measured (it turns SIGINT into a clean early exit)."""
    if proc.popen.poll() is None:
        os.killpg(proc.popen.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)


def wait_client(cli: Proc, timeout: float | None) -> bool:
    """Wait for a self-bounded client; returns True when Ctrl-C interrupted it (it still saves its samples)."""
    interrupted = False
    try:
        cli.wait(timeout=timeout)
    except KeyboardInterrupt:
        interrupted = True
        interrupt(cli)
    except subprocess.TimeoutExpired:
        interrupt(cli)
    finally:
        cli.stop(grace=10)
    return interrupted


def run_engine(ctx: RunContext, p: PingPongParams, spec: CaseSpec, runtime: Runtime, *, stack: str,
               group: str) -> EngineRun:
    """latlab's engine: server on host b (unless the stack reflects), client on host a, each pinned."""
    client, server = ctx.lab.hosts["a"], ctx.lab.hosts["b"]
    common = {"proto": spec.proto, "host": server.address, "port": spec.port, "impl": p.engine, "busy": spec.busy,
              **runtime.engine_options}
    tag = f"{stack}-{spec.proto}-{spec.size}-{spec.port}"
    out = ctx.workdir / f"own-{tag}.npz"
    client_cfg = EngineConfig(role="client", cpu=client.cpu, size=spec.size, warmup=p.warmup, count=p.count,
                              duration=p.duration_s, rate=p.rate, timeout=p.timeout_s, out=out, **common)
    client_argv = client.command([*runtime.client_wrap, *ENGINE, *client_cfg.argv()])
    server_ctx: contextlib.AbstractContextManager[Proc | None] = contextlib.nullcontext()
    if runtime.serve:
        server_cfg = EngineConfig(role="server", cpu=server.cpu, idle_timeout=max(60.0, p.timeout_s * 4), **common)
        server_argv = server.command([*runtime.server_wrap, *ENGINE, *server_cfg.argv()])
        server_ctx = running(server_argv, ctx.workdir / f"own-server-{tag}.log", "latlab server", ready="READY",
                             ready_timeout=runtime.ready_timeout)
    with server_ctx as srv:
        if runtime.server_ready and srv is not None:
            runtime.server_ready(spec.port)
        cli = Proc(client_argv, ctx.workdir / f"own-client-{tag}.log", "latlab client")
        # The client bounds itself (count, duration, per-echo timeout); this only guards a hung process.
        interrupted = wait_client(cli, p.duration_s + 120 if p.duration_s else None)
        if runtime.while_serving and not interrupted:
            runtime.while_serving()
    server_status = engine_result(srv.output()) if srv is not None else None
    status = engine_result(cli.output())
    params = {"stack": stack, "proto": spec.proto, "size": spec.size, "receive": spec.receive, "engine": p.engine,
              "rate": p.rate, "client_cpu": client.cpu, "server_cpu": server.cpu,
              "loop": "open (rate-driven)" if p.rate else "closed (next send after each echo)"}
    base = {"group": group, "engine": "latlab", "role": "own", "metric": RTT, "timestamps": OWN_TIMESTAMPS,
            "params": params}
    if (status is None or not out.exists()) and interrupted:
        return EngineRun(CaseResult(**base, complete=False, note="incomplete: interrupted before the first sample"),
                         EngineResult(status="interrupted"), server_status)
    if status is None or not out.exists():
        raise LatlabError(f"latlab client wrote no samples: {cli.tail()}")
    data = np.load(out)
    complete = status.status == "ok" and not interrupted
    note = "" if complete else f"incomplete: {'interrupted' if interrupted else status.status}"
    if status.error:
        note += f" ({status.error})"
    return EngineRun(CaseResult(**base, samples_ns=data["rtt_ns"], send_ns=data["send_ns"],
                                corrected_ns=data.get("corrected_ns", None), warmup=status.warmup,
                                complete=complete, note=note.strip()), status, server_status)


def run_sockperf(ctx: RunContext, p: PingPongParams, spec: CaseSpec, runtime: Runtime, *, stack: str,
                 group: str, role: str = "reference") -> CaseResult:
    """sockperf ping-pong on the same path under the same stack; `--nonblocked` exactly when latlab spins."""
    base = {"group": group, "engine": "sockperf", "role": role, "metric": RTT, "timestamps": sockperf.TIMESTAMPS}
    full, summary, complete = sockperf.pingpong(
        client=ctx.lab.hosts["a"], server=ctx.lab.hosts["b"], proto=spec.proto, size=spec.size, busy=spec.busy,
        duration_s=p.duration_s or 1, port=spec.port, workdir=ctx.workdir, tag=f"{stack}-{spec.proto}-{spec.size}",
        client_wrap=runtime.client_wrap, server_wrap=runtime.server_wrap, serve=runtime.serve,
        ready_timeout=runtime.ready_timeout, while_serving=runtime.while_serving, server_ready=runtime.server_ready)
    note = "" if complete else "incomplete: interrupted"
    if full.malformed:
        note = f"{note}; {full.malformed} log lines skipped".strip("; ")
    return CaseResult(**base, samples_ns=full.rtt_ns, send_ns=full.send_ns, complete=complete, note=note,
                      params={"stack": stack, "proto": spec.proto, "size": spec.size, "receive": spec.receive,
                              "nonblocked": spec.busy, "warmup": "sockperf's own (400 ms, discarded by sockperf)",
                              "sockperf_summary_half_rtt_us": summary})
