"""The `pingpong` benchmark: the stack matrix on the lab's a → b path.

Each configured stack (toe_bench/stacks) is measured per protocol and payload size with latlab's engine and,
where one exists, the native tool under the same stack (sockperf; qperf for the kernel). The kernel is
always measured too, in every receive mode a selected stack uses, so that each stack has its baseline.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from latlab.config import AnyNumberOf, OneOrMore, Port, Schema, validate
from latlab.errors import ConfigError, MissingTool
from latlab.plugin import RunContext, SectionBenchmark
from latlab.reference import qperf, sockperf
from latlab.results import RTT, CaseResult
from latlab.topology import TWO_HOST
from latlab.vm_bench import VmPreparation
from toe_bench import stacks
from toe_bench.interleave import InterleavedCase
from toe_bench.runs import OWN_TIMESTAMPS
from toe_bench.stacks.base import SPIN, CaseSpec, group_name

QPERF_TIMESTAMPS = "qperf user space; prints the mean RTT/2, shown here ×2 as RTT"
STACK_NAMES = stacks.NAMES
PROTOCOLS = ("udp", "tcp")
RECEIVE = ("busy-poll", "blocking")
REFERENCES = ("sockperf", "qperf")
ENGINES = ("c", "python")
XDP_MODES = ("native", "generic")
STACK_OVERHEAD_S = {"dpdk": 4.0, "onload": 3.0, "af_xdp": 1.5}


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
    xdp_mode: str = "native"
    segments: int = 1
    skip_unavailable: bool = False
    unavailable: tuple[tuple[str, str], ...] = ()  # (stack, reason) skipped by skip_unavailable

    @property
    def busy(self) -> bool:
        return self.receive == SPIN


class PingPongConfig(Schema):
    """The `pingpong` section as written in the config."""

    stacks: OneOrMore(Literal[STACK_NAMES]) = ("kernel",)  # type: ignore[valid-type]
    skip_unavailable: bool = False
    protocols: OneOrMore(Literal[PROTOCOLS]) = ("udp", "tcp")  # type: ignore[valid-type]
    sizes: OneOrMore(Annotated[int, Field(ge=16, le=65507)]) = (64,)  # type: ignore[valid-type]
    receive: Literal[RECEIVE] = "busy-poll"
    warmup: Annotated[int, Field(ge=0, le=10_000_000)] = 5000
    count: Annotated[int, Field(ge=1, le=50_000_000)] = 1_000_000
    duration_s: Annotated[float, Field(ge=0, le=3600)] = 3.0
    rate: Annotated[float, Field(ge=0, le=10_000_000)] = 0.0  # messages/s; 0: closed loop
    timeout_s: Annotated[float, Field(ge=0.01, le=600)] = 2.0
    port: Port = 17001
    engine: Literal[ENGINES] = "c"
    references: AnyNumberOf(Literal[REFERENCES]) = REFERENCES  # type: ignore[valid-type]
    xdp_mode: Literal[XDP_MODES] = "native"
    # latlab's engine and the native tool alternate in this many segments per cell (ABBA), each side's segments
    # pooled, so that a drift of the host lands on both alike; duration_s and count are split among them
    segments: Annotated[int, Field(ge=1, le=100)] = 1


def configure(data: Mapping[str, Any] | None, path: str = "pingpong") -> PingPongParams:
    """Validate the section; every error names its field. A stack that cannot run here is refused with its
    reason before anything starts, unless `skip_unavailable` is true (then its row says why)."""
    section = validate(PingPongConfig, data, path)
    unavailable = []
    for name in section.stacks:
        availability = stacks.get(name).detect()
        if not availability.available:
            if not section.skip_unavailable:
                raise ConfigError(f"{path}.stacks", availability.describe(name)
                                  + " (skip_unavailable: true runs the others)")
            unavailable.append((name, availability.describe(name)))
    if section.segments > 1 and "sockperf" in section.references:
        share = section.duration_s / section.segments
        if share < 1 or not share.is_integer():
            raise ConfigError(f"{path}.segments", f"duration_s {section.duration_s:g} in {section.segments} segments "
                              f"is {share:g} s each; sockperf runs whole seconds, so each segment must be 1, 2, … s")
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in section.model_dump().items()}
    return PingPongParams(**fields, unavailable=tuple(unavailable))


@dataclass
class StackCase:
    """One engine on one cell of the matrix, under one stack."""

    params: PingPongParams
    stack: str
    spec: CaseSpec
    engine: str

    @property
    def title(self) -> str:
        return f"{group_name(self.stack, self.spec.proto, self.spec.size, self.spec.receive)} {self.engine}"

    @property
    def producer(self) -> str:
        """The module whose measurement fills this case's samples."""
        if self.engine != "latlab":
            return f"{self.engine} (latlab.reference.{self.engine}) under {type(_instance(self.stack)).__module__}"
        return type(_instance(self.stack)).__module__

    @property
    def timestamps(self) -> str:
        if self.engine == "sockperf":
            return sockperf.TIMESTAMPS
        module = sys.modules[type(_instance(self.stack)).__module__]
        return getattr(module, "TIMESTAMPS", OWN_TIMESTAMPS)

    @property
    def expected_seconds(self) -> float:
        duration = self.params.duration_s if self.engine == "latlab" else max(1, round(self.params.duration_s))
        return duration + 0.5 + STACK_OVERHEAD_S.get(self.stack, 0.0)

    def run(self, ctx: RunContext) -> list[CaseResult]:
        stack = _instance(self.stack)
        if self.stack != "kernel" and ctx.lab.hosts["b"].netns is None:
            # --local: both ends on loopback in one namespace; offloads, XDP and reflectors need the veth lab
            return [stack.row(self.spec, self.engine, "skipped", "",
                              note="skipped: needs the two-namespace lab (not --local)")]
        try:
            return stack.measure(ctx, self.params, self.spec, self.engine)
        except MissingTool as exc:
            return [stack.row(self.spec, self.engine, "reference", "", complete=False, note=exc.short)]


@dataclass
class SkippedStack:
    """A stack the config asked for that cannot run here (skip_unavailable): a row that says why."""

    stack: str
    reason: str

    @property
    def title(self) -> str:
        return f"{self.stack} (not available)"

    producer = "nothing: a row saying why the stack cannot run here"
    timestamps = ""

    expected_seconds = 0.0

    def run(self, ctx: RunContext) -> list[CaseResult]:
        # A deliberate skip (skip_unavailable), not a broken measurement: the run is still complete.
        return [CaseResult(group=f"{self.stack}: not available", engine="-", role="skipped", metric=RTT,
                           timestamps="", note=f"skipped: {self.reason}", params={"stack": self.stack})]


@dataclass
class QperfCase:
    """qperf tcp_lat/udp_lat on the kernel path: a mean only, and always a blocking receive."""

    params: PingPongParams
    spec: CaseSpec

    @property
    def title(self) -> str:
        return f"{self.spec.proto} {self.spec.size}B qperf"

    producer = "latlab.reference.qperf"
    timestamps = QPERF_TIMESTAMPS

    @property
    def expected_seconds(self) -> float:
        return max(1, round(self.params.duration_s)) + 0.5

    def run(self, ctx: RunContext) -> list[CaseResult]:
        p, spec = self.params, self.spec
        comparable = not spec.busy
        base = {"group": group_name("kernel", spec.proto, spec.size, spec.receive), "engine": "qperf",
                "role": "reference" if comparable else "context", "metric": RTT,
                "timestamps": QPERF_TIMESTAMPS}
        try:
            half = qperf.latency(client=ctx.lab.hosts["a"], server=ctx.lab.hosts["b"], proto=spec.proto,
                                 size=spec.size, duration_s=p.duration_s or 1, port=spec.port,
                                 workdir=ctx.workdir, tag=f"{spec.proto}-{spec.size}")
        except MissingTool as exc:
            return [CaseResult(**base, complete=False, note=exc.short)]
        note = "mean only (2 × qperf's RTT/2)"
        if not comparable:
            note += "; qperf blocks on receive, so no ratio against busy-poll"
        return [CaseResult(**base, mean_only_ns=2 * half, note=note,
                           params={"stack": "kernel", "proto": spec.proto, "size": spec.size,
                                   "receive": spec.receive, "qperf_latency_ns": half})]


_INSTANCES: dict[str, Any] = {}


def _instance(name: str) -> Any:
    """One instance per stack per process: a stack may keep run-wide state (Onload's modules, say)."""
    if name not in _INSTANCES:
        _INSTANCES[name] = stacks.get(name)
    return _INSTANCES[name]


def matrix(params: PingPongParams) -> list[tuple[str, str]]:
    """(stack, receive mode) pairs to measure, the kernel first in every mode another stack needs."""
    skipped = {name for name, _ in params.unavailable}
    runnable = [s for s in params.stacks if s not in skipped]
    modes = {s: _instance(s).receive_mode(params.receive) for s in runnable if s != "kernel"}
    kernel_modes = sorted({params.receive, *modes.values()}, key=RECEIVE.index) \
        if "kernel" in runnable or modes else []
    return [("kernel", m) for m in kernel_modes] + [(s, modes[s]) for s in runnable if s != "kernel"]


def pingpong_cases(params: PingPongParams) -> list[Any]:
    """Every stack × protocol × size × engine of the matrix (and qperf beside the kernel's), each on its own port."""
    cases: list[Any] = [SkippedStack(name, reason) for name, reason in params.unavailable]
    port = params.port
    for stack_name, receive in matrix(params):
        stack = _instance(stack_name)
        for proto in [p for p in params.protocols if p in stack.protocols]:
            for size in params.sizes:
                engines = [e for e in stack.engines if e == "latlab" or e in params.references]
                if params.segments > 1 and len(engines) > 1:
                    pair = InterleavedCase(params, stack_name, CaseSpec(proto, size, receive, port), engines,
                                           params.segments)
                    cases.append(pair)
                    port += pair.ports
                else:
                    for engine in engines:
                        cases.append(StackCase(params, stack_name, CaseSpec(proto, size, receive, port), engine))
                        port += 1
                if stack_name == "kernel" and "qperf" in params.references and receive == params.receive:
                    cases.append(QperfCase(params, CaseSpec(proto, size, receive, port)))
                    port += 1
    return cases


def tool_versions() -> dict[str, str]:
    """The versions of the reference tools the matrix runs beside latlab's engine."""
    return {"sockperf": sockperf.version(), "qperf": qperf.version()}


def prepare_vm(section: dict[str, Any], kernelver: str, log_dir: Path) -> VmPreparation:
    """Before a VM boot: build Onload from ONLOAD_SRC for the VM's kernel (the guest's file system is read-only;
    the build is cached, so this is quick after the first time) and share its folder with the guest."""
    wanted = section.get("stacks") or []
    src = os.environ.get("ONLOAD_SRC")
    if "onload" not in wanted or not src:
        return VmPreparation()
    from toe_bench.onload_build import OnloadBuildError, build, cache_root

    try:
        built = build(Path(src), kernelver, log_to=log_dir / "onload-build.log")
    except OnloadBuildError as exc:
        return VmPreparation(f"onload: the build for {kernelver} failed: {exc}")
    return VmPreparation(f"onload: built for {kernelver} at {built.root}", [cache_root()])


# TWO_HOST: the a → b veth pair of the `lab` section
BENCHMARK = SectionBenchmark("pingpong", PingPongConfig, TWO_HOST, configure, pingpong_cases, tool_versions,
                             prepare_vm)
