"""The `pingpong` benchmark: latlab's engine, sockperf and qperf on the lab's a → b path."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from latlab.config import Section
from latlab.errors import LatlabError, MissingTool
from latlab.plugin import RunContext
from latlab.procs import Proc, running
from latlab.reference import qperf, sockperf
from latlab.results import RTT, CaseResult

STACKS = ("kernel",)
PROTOCOLS = ("udp", "tcp")
RECEIVE = ("busy-poll", "blocking")
REFERENCES = ("sockperf", "qperf")
ENGINES = ("c", "python")
OWN_TIMESTAMPS = "latlab user space, CLOCK_MONOTONIC: before send(), after the echo's last byte is received"


@dataclass(frozen=True)
class PingPongParams:
    """The validated `pingpong` section."""

    stacks: list[str]
    protocols: list[str]
    sizes: list[int]
    receive: str
    warmup: int
    count: int
    duration_s: float
    rate: float
    timeout_s: float
    port: int
    engine: str
    references: list[str]

    @property
    def busy(self) -> bool:
        return self.receive == "busy-poll"


def configure(section: Section) -> PingPongParams:
    """Validate the section; every error names its field."""
    mtu_payload_max = 65507
    return PingPongParams(
        stacks=section.choices("stacks", STACKS, ["kernel"]),
        protocols=section.choices("protocols", PROTOCOLS, ["udp", "tcp"]),
        sizes=section.integers("sizes", [64], minimum=16, maximum=mtu_payload_max),
        receive=section.choice("receive", RECEIVE, "busy-poll"),
        warmup=section.integer("warmup", 5000, minimum=0),
        count=section.integer("count", 1_000_000, minimum=1, maximum=50_000_000),
        duration_s=section.number("duration_s", 3.0, minimum=0.0),
        rate=section.number("rate", 0.0, minimum=0.0),
        timeout_s=section.number("timeout_s", 2.0, minimum=0.01),
        port=section.integer("port", 17001, minimum=1024, maximum=65000),
        engine=section.choice("engine", ENGINES, "c"),
        references=[] if section.data.get("references") == [] else
        section.choices("references", REFERENCES, list(REFERENCES)),
    )


def group_name(proto: str, size: int, receive: str) -> str:
    return f"{proto} {size}B {receive}"


@dataclass
class OwnCase:
    """latlab's engine: server on host b, client on host a, each pinned to its host's CPU."""

    params: PingPongParams
    proto: str
    size: int
    port: int

    @property
    def title(self) -> str:
        return f"{group_name(self.proto, self.size, self.params.receive)} latlab"

    @property
    def expected_seconds(self) -> float:
        return self.params.duration_s + 0.5

    def run(self, ctx: RunContext) -> list[CaseResult]:
        p = self.params
        client, server = ctx.lab.hosts["a"], ctx.lab.hosts["b"]
        common = ["--proto", self.proto, "--host", server.address, "--port", str(self.port),
                  "--impl", p.engine, *(["--busy"] if p.busy else [])]
        engine = [sys.executable, "-m", "toe_bench.engine"]
        tag = f"{self.proto}-{self.size}-{self.port}"
        out = ctx.workdir / f"own-{tag}.npz"
        server_argv = server.command([*engine, "server", *common,
                                      *(["--cpu", str(server.cpu)] if server.cpu is not None else []),
                                      "--idle-timeout", str(max(5.0, p.timeout_s * 2))])
        client_argv = client.command([
            *engine, "client", *common, *(["--cpu", str(client.cpu)] if client.cpu is not None else []),
            "--size", str(self.size), "--warmup", str(p.warmup), "--count", str(p.count),
            "--duration", str(p.duration_s), "--rate", str(p.rate), "--timeout", str(p.timeout_s),
            "--out", str(out)])
        interrupted = False
        with running(server_argv, ctx.workdir / f"own-server-{tag}.log", "latlab server", ready="READY"):
            cli = Proc(client_argv, ctx.workdir / f"own-client-{tag}.log", "latlab client")
            try:
                # The client bounds itself (count, duration, per-echo timeout); this only guards a hung process.
                cli.wait(timeout=p.duration_s + 120 if p.duration_s else None)
            except KeyboardInterrupt:
                interrupted = True
                _interrupt(cli)
            except subprocess.TimeoutExpired:
                _interrupt(cli)
            finally:
                cli.stop(grace=10)
        status = _last_json(cli.output())
        group = group_name(self.proto, self.size, p.receive)
        if (status is None or not out.exists()) and interrupted:
            return [CaseResult(group=group, engine="latlab", role="own", metric=RTT, timestamps=OWN_TIMESTAMPS,
                               complete=False, note="incomplete: interrupted before the first sample")]
        if status is None or not out.exists():
            raise LatlabError(f"latlab client wrote no samples: {cli.tail()}")
        data = np.load(out)
        complete = status["status"] == "ok" and not interrupted
        note = "" if complete else f"incomplete: {'interrupted' if interrupted else status['status']}"
        if status.get("error"):
            note += f" ({status['error']})"
        return [CaseResult(
            group=group, engine="latlab", role="own", metric=RTT,
            timestamps=OWN_TIMESTAMPS, samples_ns=data["rtt_ns"], send_ns=data["send_ns"],
            corrected_ns=data.get("corrected_ns", None),
            warmup=int(status["warmup"]), complete=complete, note=note.strip(),
            params={"proto": self.proto, "size": self.size, "receive": p.receive, "engine": p.engine,
                    "rate": p.rate, "client_cpu": client.cpu, "server_cpu": server.cpu,
                    "loop": "open (rate-driven)" if p.rate else "closed (next send after each echo)"})]


@dataclass
class SockperfCase:
    """sockperf ping-pong on the same path; `--nonblocked` exactly when latlab busy-polls."""

    params: PingPongParams
    proto: str
    size: int
    port: int

    @property
    def title(self) -> str:
        return f"{group_name(self.proto, self.size, self.params.receive)} sockperf"

    @property
    def expected_seconds(self) -> float:
        return max(1, round(self.params.duration_s)) + 0.5

    def run(self, ctx: RunContext) -> list[CaseResult]:
        p = self.params
        group = group_name(self.proto, self.size, p.receive)
        base = {"group": group, "engine": "sockperf", "role": "reference", "metric": RTT,
                "timestamps": sockperf.TIMESTAMPS}
        try:
            full, summary, complete = sockperf.pingpong(
                client=ctx.lab.hosts["a"], server=ctx.lab.hosts["b"], proto=self.proto, size=self.size,
                busy=p.busy, duration_s=p.duration_s or 1, port=self.port, workdir=ctx.workdir,
                tag=f"{self.proto}-{self.size}")
        except MissingTool as exc:
            return [CaseResult(**base, complete=False, note=exc.short)]
        note = "" if complete else "incomplete: interrupted"
        if full.malformed:
            note = f"{note}; {full.malformed} log lines skipped".strip("; ")
        return [CaseResult(**base, samples_ns=full.rtt_ns, send_ns=full.send_ns, complete=complete, note=note,
                           params={"proto": self.proto, "size": self.size, "nonblocked": p.busy,
                                   "warmup": "sockperf's own (400 ms, discarded by sockperf)",
                                   "sockperf_summary_half_rtt_us": summary})]


@dataclass
class QperfCase:
    """qperf tcp_lat/udp_lat on the same path: a mean only, and always a blocking receive."""

    params: PingPongParams
    proto: str
    size: int
    port: int

    @property
    def title(self) -> str:
        return f"{self.proto} {self.size}B qperf"

    @property
    def expected_seconds(self) -> float:
        return max(1, round(self.params.duration_s)) + 0.5

    def run(self, ctx: RunContext) -> list[CaseResult]:
        p = self.params
        comparable = not p.busy
        base = {"group": group_name(self.proto, self.size, p.receive), "engine": "qperf",
                "role": "reference" if comparable else "context", "metric": RTT,
                "timestamps": "qperf user space; prints the mean RTT/2, shown here ×2 as RTT"}
        try:
            half = qperf.latency(client=ctx.lab.hosts["a"], server=ctx.lab.hosts["b"], proto=self.proto,
                                 size=self.size, duration_s=p.duration_s or 1, port=self.port,
                                 workdir=ctx.workdir, tag=f"{self.proto}-{self.size}")
        except MissingTool as exc:
            return [CaseResult(**base, complete=False, note=exc.short)]
        note = "mean only (2 × qperf's RTT/2)"
        if not comparable:
            note += "; qperf blocks on receive, so no ratio against busy-poll"
        return [CaseResult(**base, mean_only_ns=2 * half, note=note,
                           params={"proto": self.proto, "size": self.size, "qperf_latency_ns": half})]


class PingPongBenchmark:
    """Plugs the ping-pong cases into latlab's core."""

    name = "pingpong"

    def configure(self, section: Section) -> PingPongParams:
        return configure(section)

    def cases(self, params: PingPongParams) -> list[Any]:
        cases: list[Any] = []
        port = params.port
        for proto in params.protocols:
            for size in params.sizes:
                cases.append(OwnCase(params, proto, size, port))
                if "sockperf" in params.references:
                    cases.append(SockperfCase(params, proto, size, port + 1))
                if "qperf" in params.references:
                    cases.append(QperfCase(params, proto, size, port + 2))
                port += 3
        return cases

    def tool_versions(self) -> dict[str, str]:
        return {"sockperf": sockperf.version(), "qperf": qperf.version()}

    def describe(self, params: PingPongParams) -> dict[str, Any]:
        return asdict(params)


def _interrupt(proc: Proc) -> None:
    """Ask the client to stop and save what it measured (it turns SIGINT into a clean early exit)."""
    if proc.popen.poll() is None:
        os.killpg(proc.popen.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


BENCHMARK = PingPongBenchmark()
