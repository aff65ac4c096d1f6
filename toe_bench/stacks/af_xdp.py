"""AF_XDP: latlab's own endpoint (toe_bench/afxdp_core.c on libxdp) as client and reflector on the lab's veth."""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from latlab import helper
from latlab.errors import LatlabError
from latlab.netstat import delta, namespace_counters
from latlab.plugin import RunContext
from latlab.procs import Proc, running
from latlab.results import CaseResult
from latlab.topology import Lab, LabHost
from toe_bench.afxdp_engine import AfxdpConfig, AfxdpResult
from toe_bench.runs import Runtime, run_sockperf, wait_client
from toe_bench.stacks.base import (
    SPIN,
    Availability,
    CaseSpec,
    Evidence,
    Stack,
    detach_xdp,
    ethtool_features,
    interface_mac,
    static_neighbour,
    with_evidence,
)

if TYPE_CHECKING:
    from toe_bench.plugin import PingPongParams

AF_XDP = 44
TIMESTAMPS = ("latlab user space, CLOCK_MONOTONIC: before the XSK tx ring is pushed (sendto kick), after the echo "
              "is seen on the rx ring")
REFLECTOR_NOTE = "sockperf in the client's kernel against latlab's AF_XDP reflector: half the path is the kernel"


def af_xdp_unavailable_reason() -> str | None:
    """Why AF_XDP sockets cannot be opened here, or None."""
    try:
        from toe_bench import _afxdp  # noqa: F401
    except ImportError as exc:
        return f"latlab's AF_XDP endpoint is not built ({exc}): apt packages libxdp-dev libbpf-dev, then make setup"
    try:
        socket.socket(AF_XDP, socket.SOCK_RAW, 0).close()
    except OSError as exc:
        return f"this kernel opens no AF_XDP socket ({exc.strerror}): CONFIG_XDP_SOCKETS"
    return None


@contextlib.contextmanager
def reflector(ctx: RunContext, host: LabHost, port: int, mode: str, *, clear_sockperf_flag: bool,
              tag: str) -> Iterator[Proc]:
    """latlab's AF_XDP reflector on the host's lab interface, pinned to the host's CPU, until the block ends."""
    cfg = AfxdpConfig(role="reflector", ifname=host.ifname, port=port, mode=mode, idle_timeout=60, cpu=host.cpu,
                      clear_sockperf_flag=clear_sockperf_flag)
    argv = host.command([sys.executable, "-m", "toe_bench.afxdp_engine", *cfg.argv()])
    with running(argv, ctx.workdir / f"afxdp-reflector-{tag}.log", "AF_XDP reflector", ready="READY",
                 ready_timeout=60) as proc:
        yield proc


def _result(text: str, who: str) -> AfxdpResult:
    """The endpoint's RESULT; an empty one (status "") when it said none."""
    return helper.result_or_none(text, AfxdpResult, who) or AfxdpResult(status="")


class AfXdpStack(Stack):
    """Both ends AF_XDP: raw frames through XSK rings, the kernel's IP stack bypassed."""

    name = "af_xdp"
    protocols = ("udp",)
    what = ("latlab's AF_XDP endpoint (libxdp) at both ends, native or generic XDP, copy or zero-copy as the "
            "driver allows (veth: copy); sockperf answered by the AF_XDP reflector for context")

    def detect(self, lab: Lab | None = None) -> Availability:
        reason = af_xdp_unavailable_reason()
        return Availability(reason is None, reason or "")

    def needs(self) -> list[str]:
        return ["CONFIG_XDP_SOCKETS", "libxdp (apt libxdp-dev)", "the driver's XDP support (native mode)"]

    def receive_mode(self, configured: str) -> str:
        return SPIN  # the rings are polled; there is nothing to block on

    def measure(self, ctx: RunContext, params: PingPongParams, spec: CaseSpec, engine: str) -> list[CaseResult]:
        client, server = ctx.lab.hosts["a"], ctx.lab.hosts["b"]
        tag = f"{spec.proto}-{spec.size}-{spec.port}-{engine}"
        mode = params.xdp_mode
        with contextlib.ExitStack() as stack:
            for host in (client, server):
                stack.callback(detach_xdp, host)
            before = namespace_counters(server)
            if engine == "sockperf":
                # The kernel client must know the reflector's MAC (the reflector takes ARP too) and must send
                # finished UDP checksums (veth would hand the reflector half-computed ones).
                stack.enter_context(static_neighbour(client, server))
                stack.enter_context(ethtool_features(client, {"tx": "off"}))
            refl = stack.enter_context(reflector(ctx, server, spec.port, mode, clear_sockperf_flag=engine == "sockperf",
                                                 tag=tag))
            if engine == "latlab":
                result, client_status = self._own(ctx, params, spec, mode, tag)
            else:
                result = run_sockperf(ctx, params, spec, Runtime(serve=False), stack=self.name,
                                      group=self.group(spec), role="context")
                result.note = REFLECTOR_NOTE + (f"; {result.note}" if result.note else "")
                client_status = AfxdpResult(status="")
            stack.close()  # the reflector reports its counters as it stops
            reflected = _result(refl.output(), "AF_XDP reflector")
            after = namespace_counters(server)
        # each endpoint reports the XDP program on its interface once its socket is bound
        attached = {"server": reflected.xdp_program, "client": client_status.xdp_program}
        return [with_evidence(result, self._evidence(spec, result, reflected, client_status, attached,
                                                     delta(before, after)))]

    def _own(self, ctx: RunContext, params: PingPongParams, spec: CaseSpec, mode: str,
             tag: str) -> tuple[CaseResult, AfxdpResult]:
        client, server = ctx.lab.hosts["a"], ctx.lab.hosts["b"]
        out = ctx.workdir / f"afxdp-{tag}.npz"
        cfg = AfxdpConfig(role="client", ifname=client.ifname, mode=mode, port=spec.port, src=client.address,
                          dst=server.address, src_mac=interface_mac(client), peer_mac=interface_mac(server),
                          size=spec.size, warmup=params.warmup, count=params.count, duration=params.duration_s,
                          timeout=params.timeout_s, out=out, cpu=client.cpu)
        argv = client.command([sys.executable, "-m", "toe_bench.afxdp_engine", *cfg.argv()])
        cli = Proc(argv, ctx.workdir / f"afxdp-client-{tag}.log", "AF_XDP client")
        interrupted = wait_client(cli, params.duration_s + 120 if params.duration_s else None)
        status = _result(cli.output(), "AF_XDP client")
        base = {"params": {"xdp_mode": status.xdp_mode or mode, "bind": status.bind or None,
                           "client_cpu": client.cpu, "server_cpu": server.cpu}}
        if not out.exists():
            if interrupted:
                return self.row(spec, "latlab af_xdp", "own", TIMESTAMPS, complete=False,
                                note="incomplete: interrupted before the first sample", **base), status
            raise LatlabError(f"AF_XDP client wrote no samples: {status.error or cli.tail()}")
        data = np.load(out)
        complete = status.status == "ok" and not interrupted
        note = "" if complete else f"incomplete: {'interrupted' if interrupted else status.status}"
        return self.row(spec, "latlab af_xdp", "own", TIMESTAMPS, samples_ns=data["rtt_ns"], send_ns=data["send_ns"],
                        warmup=status.warmup, complete=complete, note=note, **base), status

    def _evidence(self, spec: CaseSpec, result: CaseResult, reflected: AfxdpResult, client_status: AfxdpResult,
                  attached: dict[str, Any], kernel: dict) -> Evidence:
        n = 0 if result.samples_ns is None else len(result.samples_ns)
        answered = reflected.counters.get("answered", 0)
        kernel_rx = kernel["Udp"].get("InDatagrams", 0)
        facts: dict[str, Any] = {"xdp_programs": attached, "reflector_answered": answered,
                                 "reflector_mode": {"xdp_mode": reflected.xdp_mode or None,
                                                    "bind": reflected.bind or None},
                                 "server_kernel_udp_in": kernel_rx, "samples": n}
        if client_status.counters:
            facts["client_counters"] = client_status.counters
        holds = bool(attached.get("server")) and answered >= n and kernel_rx == 0
        if result.engine.startswith("latlab"):
            holds = holds and bool(attached.get("client")) and client_status.counters.get("answered", 0) >= n
        prog = attached.get("server") or {}
        return Evidence(holds, facts, f"XDP program {prog.get('name')} ({prog.get('mode')}) on the server, its "
                                      f"socket answered {answered} for {n} samples, server kernel UDP in +{kernel_rx}")
