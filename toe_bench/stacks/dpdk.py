"""DPDK: dpdk-testpmd reflecting UDP (5tswap) through its AF_XDP poll-mode driver on the server's veth."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latlab.cpu import available_cpus
from latlab.errors import LatlabError
from latlab.netstat import delta, namespace_counters
from latlab.plugin import RunContext
from latlab.procs import die_with_parent
from latlab.results import CaseResult
from latlab.topology import Lab, LabHost
from toe_bench.engine import EngineResult
from toe_bench.runs import Runtime, run_engine
from toe_bench.stacks.af_xdp import af_xdp_unavailable_reason
from toe_bench.stacks.base import (
    SPIN,
    Availability,
    CaseSpec,
    Evidence,
    Stack,
    detach_xdp,
    ethtool_features,
    static_neighbour,
    with_evidence,
    xdp_program,
)

if TYPE_CHECKING:
    from toe_bench.plugin import PingPongParams

DPDK_RUN = Path("/var/run/dpdk")
START_TIMEOUT_S = 120  # in the TCG VM testpmd takes ~40 s to start
_STATS = re.compile(r"Forward statistics for port (\d+).*?RX-packets:\s*(\d+)\s+RX-dropped:\s*(\d+).*?"
                    r"TX-packets:\s*(\d+)\s+TX-dropped:\s*(\d+)", re.S)


def af_xdp_pmd() -> Path | None:
    """DPDK's AF_XDP poll-mode driver, where Debian's dpdk package puts its PMDs."""
    for path in sorted(Path("/usr/lib").glob("*/dpdk/pmds-*/librte_net_af_xdp.so*")):
        return path
    return None


@dataclass
class PortStats:
    rx: int
    rx_dropped: int
    tx: int
    tx_dropped: int


def parse_forward_stats(text: str) -> PortStats | None:
    """testpmd's "Forward statistics for port 0" block, printed when it stops."""
    match = _STATS.search(text)
    if not match:
        return None
    _, rx, rxd, tx, txd = (int(g) for g in match.groups())
    return PortStats(rx, rxd, tx, txd)


class Testpmd:
    """dpdk-testpmd in the server's namespace, started with its stdin held open (it exits at EOF or a newline)."""

    def __init__(self, host: LabHost, main_cpu: int, fwd_cpu: int, prefix: str, log: Path) -> None:
        self.host, self.prefix, self.log = host, prefix, log
        argv = host.command(["dpdk-testpmd", "-l", f"{main_cpu},{fwd_cpu}", "--main-lcore", str(main_cpu),
                             "--no-huge", "-m", "512", "--no-pci", "--file-prefix", prefix, "--vdev",
                             f"net_af_xdp0,iface={host.ifname},start_queue=0,queue_count=1", "--",
                             "--forward-mode=5tswap", "--nb-cores=1", "--total-num-mbufs=16384"])
        self._logf = open(log, "wb")  # noqa: SIM115 - closed in stop()
        # It dies with this process (PR_SET_PDEATHSIG), so a killed run leaves no spinning testpmd behind.
        self.popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self._logf, stderr=subprocess.STDOUT,
                                      start_new_session=True, preexec_fn=die_with_parent)

    def wait_attached(self, timeout: float) -> dict[str, Any]:
        """Wait until testpmd's AF_XDP driver has attached its XDP program to the interface."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            prog = xdp_program(self.host)
            if prog:
                time.sleep(0.5)  # the program is attached just before the port starts forwarding
                return prog
            if self.popen.poll() is not None:
                raise LatlabError(f"dpdk-testpmd exited {self.popen.returncode}: {self.tail()}")
            time.sleep(0.2)
        raise LatlabError(f"dpdk-testpmd attached no XDP program within {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-4:])

    def stop(self) -> PortStats | None:
        """A newline ends testpmd, which prints its forward statistics; killed if it does not go."""
        with contextlib.suppress(OSError, ValueError):
            self.popen.stdin.write(b"\n")
            self.popen.stdin.close()
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._logf.close()
        shutil.rmtree(DPDK_RUN / self.prefix, ignore_errors=True)
        return parse_forward_stats(self.log.read_text(errors="replace"))


@contextlib.contextmanager
def testpmd(ctx: RunContext, tag: str) -> Iterator[Testpmd]:
    client, server = ctx.lab.hosts["a"], ctx.lab.hosts["b"]
    cpus = available_cpus()
    fwd = server.cpu if server.cpu is not None else cpus[-1]
    main = client.cpu if client.cpu is not None and client.cpu != fwd else next(c for c in cpus if c != fwd)
    proc = Testpmd(server, main, fwd, f"latlab-{ctx.tag}-{tag}", ctx.workdir / f"testpmd-{tag}.log")
    try:
        yield proc
    finally:
        if proc.popen.returncode is None:
            proc.stop()


class DpdkStack(Stack):
    """The server side is DPDK: testpmd swaps MAC, IP and ports of each UDP datagram and sends it back."""

    name = "dpdk"
    protocols = ("udp",)
    engines = ("latlab",)  # sockperf would ignore testpmd's answers (testpmd does not clear its client flag)
    what = ("dpdk-testpmd (5tswap, net_af_xdp on the server's veth, --no-huge) reflects; latlab's engine is the "
            "client in the other host's kernel")

    def detect(self, lab: Lab | None = None) -> Availability:
        if shutil.which("dpdk-testpmd") is None:
            return Availability(False, "dpdk-testpmd not installed: apt package dpdk-dev (make setup)")
        if af_xdp_pmd() is None:
            return Availability(False, "DPDK's AF_XDP poll-mode driver (librte_net_af_xdp) is not installed")
        if len(available_cpus()) < 2:
            return Availability(False, "testpmd spins a core of its own: needs 2 CPUs")
        reason = af_xdp_unavailable_reason()
        return Availability(reason is None, reason or "testpmd over net_af_xdp")

    def needs(self) -> list[str]:
        return ["dpdk-testpmd (apt dpdk-dev)", "a core for testpmd to spin on",
                "huge pages on a lab host (not needed with --no-huge, as the built-in lab runs it)"]

    def receive_mode(self, configured: str) -> str:
        return SPIN

    def measure(self, ctx: RunContext, params: PingPongParams, spec: CaseSpec, engine: str) -> list[CaseResult]:
        client, server = ctx.lab.hosts["a"], ctx.lab.hosts["b"]
        tag = f"{spec.proto}-{spec.size}-{spec.port}"
        with contextlib.ExitStack() as stack:
            stack.callback(detach_xdp, server)
            stack.enter_context(static_neighbour(client, server))
            stack.enter_context(ethtool_features(client, {"tx": "off"}))
            pmd = stack.enter_context(testpmd(ctx, tag))
            prog = pmd.wait_attached(START_TIMEOUT_S)
            before = namespace_counters(server)
            run = run_engine(ctx, params, spec, Runtime(serve=False), stack=self.name, group=self.group(spec))
            after = namespace_counters(server)
            stats = pmd.stop()
        result = run.result
        result.params.update({"pmd": "net_af_xdp", "forward_mode": "5tswap"})
        result.attachments[f"testpmd-{tag}.log"] = pmd.log
        return [with_evidence(result, self._evidence(result, run.client, stats, prog, delta(before, after)))]

    def _evidence(self, result: CaseResult, client: EngineResult, stats: PortStats | None, prog: dict[str, Any],
                  kernel: dict) -> Evidence:
        sent = client.measured + client.warmup
        kernel_rx = kernel["Udp"].get("InDatagrams", 0)
        facts: dict[str, Any] = {"xdp_program": prog, "client_round_trips": sent, "server_kernel_udp_in": kernel_rx}
        if stats is None:
            return Evidence(False, facts, "testpmd printed no forward statistics")
        facts.update({"testpmd_rx": stats.rx, "testpmd_tx": stats.tx, "testpmd_rx_dropped": stats.rx_dropped})
        holds = stats.rx >= sent and stats.tx >= sent and kernel_rx == 0
        return Evidence(holds, facts, f"testpmd forwarded rx {stats.rx} / tx {stats.tx} for {sent} round trips, "
                                      f"server kernel UDP in +{kernel_rx}")
