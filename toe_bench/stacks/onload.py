"""OpenOnload: TCP/UDP in user space ("TOE" as trading firms use the word), over AF_XDP on a non-Solarflare NIC.

Either Onload is installed (the `onload` launcher on PATH, its modules loaded), or `ONLOAD_SRC` names a
source tarball or tree: then latlab builds it for the running kernel (toe_bench/onload_build.py, cached),
loads its modules with `enable_af_xdp_flow_filters=0`, registers the lab's veth ends with its AF_XDP
layer, and runs latlab's engine and sockperf under `onload --profile=latency`. A row is called Onload only
when `onload_stackdump` shows its stacks carried the traffic and the server's kernel saw none of it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latlab.errors import LatlabError
from latlab.netstat import delta, link_counters, namespace_counters
from latlab.plugin import RunContext
from latlab.results import CaseResult
from latlab.topology import Lab, LabHost
from toe_bench.runs import Runtime, run_engine, run_sockperf
from toe_bench.stacks.base import SPIN, Availability, CaseSpec, Evidence, Stack, run_quiet, with_evidence

if TYPE_CHECKING:
    from toe_bench.onload_build import OnloadBuild
    from toe_bench.plugin import PingPongParams

HOW_TO_GET = ("install OpenOnload (github.com/Xilinx-CNS/onload) or set ONLOAD_SRC to its source tarball or tree; "
              "latlab then builds it (about 4-6 min, cached)")
_RX_EVS = re.compile(r"\brx_evs[:=\s]+(\d+)")
_TX_EVS = re.compile(r"\btx_evs[:=\s]+(\d+)")
MODULES = ("onload", "sfc_char", "sfc_resource")  # unload order
STACKS = Path("/proc/driver/onload/stacks")
# Over AF_XDP a stack holds the interface's queue while it lives, and a closed TCP connection keeps its stack alive
# in TIME-WAIT (2 × EF_TCP_TCONST_MSL, 50 s by default): a stack created meanwhile on that interface cannot attach,
# Onload hands its sockets to the kernel, and the "Onload" client was the kernel (seen in the VM: 46 ms RTTs, the
# client's kernel taking every segment). A one-second MSL, and each case waits for the last one's stacks to go.
MSL_S = 1
SETTLE_S = 2 * MSL_S + 8.0


def installed_onload() -> str | None:
    """The installed `onload` launcher when its driver is loaded, else None."""
    launcher = shutil.which("onload")
    return launcher if launcher and Path("/sys/module/onload").exists() else None


def modules_loadable() -> str | None:
    """Why this kernel cannot load Onload's modules, or None."""
    if not Path("/proc/modules").exists():
        return f"this kernel ({os.uname().release}) cannot load modules (no CONFIG_MODULES)"
    disabled = Path("/proc/sys/kernel/modules_disabled")
    if disabled.exists() and disabled.read_text().strip() != "0":
        return "module loading is disabled (kernel.modules_disabled=1)"
    if os.geteuid() != 0:
        return "loading Onload's modules needs root"
    return None


class OnloadStack(Stack):
    """latlab's engine and sockperf under Onload, both ends, spinning (EF_POLL_USEC from the latency profile)."""

    name = "onload"
    what = ("OpenOnload over AF_XDP (non-Solarflare NICs; on veth with the lab's patch), both ends under "
            "`onload --profile=latency`")

    def __init__(self) -> None:
        self._launcher: list[str] | None = None
        self._build: OnloadBuild | None = None

    def detect(self, lab: Lab | None = None) -> Availability:
        if installed_onload():
            return Availability(True, "installed, driver loaded")
        src = os.environ.get("ONLOAD_SRC")
        if not src:
            return Availability(False, f"no onload on PATH and ONLOAD_SRC not set: {HOW_TO_GET}")
        if not Path(src).exists():
            return Availability(False, f"ONLOAD_SRC={src} does not exist")
        reason = modules_loadable()
        if reason:
            return Availability(False, f"ONLOAD_SRC is set but {reason}: run it in the stack VM (make bench-stacks)")
        from toe_bench.onload_build import headers_present

        if not headers_present(os.uname().release):
            return Availability(False, f"no kernel headers to build Onload: apt package "
                                       f"linux-headers-{os.uname().release}")
        return Availability(True, f"built from ONLOAD_SRC for {os.uname().release}")

    def needs(self) -> list[str]:
        return ["onload installed, or ONLOAD_SRC and the kernel's headers", "a kernel that loads modules",
                "AF_XDP (non-Solarflare NICs) or a Solarflare/X2 NIC"]

    def receive_mode(self, configured: str) -> str:
        return SPIN

    def launcher(self, ctx: RunContext) -> list[str]:
        """`onload --profile=latency`, bringing up a source build the first time a run needs it."""
        if self._launcher is None:
            installed = installed_onload()
            if not installed:
                self._build = self._build_and_load(ctx)
            onload = installed or str(self._build.root / "scripts" / "onload")
            self._launcher = ["env", f"EF_TCP_TCONST_MSL={MSL_S}", onload, "--profile=latency"]
        return self._launcher

    def _build_and_load(self, ctx: RunContext) -> OnloadBuild:
        from toe_bench.onload_build import OnloadBuildError, build

        log = ctx.workdir / "onload-build.log"
        try:
            built = build(Path(os.environ["ONLOAD_SRC"]), os.uname().release, log_to=log)
        except OnloadBuildError as exc:
            raise OnloadUnavailable(f"the Onload build failed: {exc}", log) from exc
        ctx.resources.callback(self._unload)
        load = [["insmod", str(built.module("sfc_resource")), "enable_af_xdp_flow_filters=0"],
                ["insmod", str(built.module("sfc_char"))],
                ["insmod", str(built.module("onload")), f"cplane_server_path={built.cplane_server}"]]
        for argv in load:
            out = run_quiet(argv, timeout=120)
            if out.returncode != 0:
                raise OnloadUnavailable(f"{' '.join(argv[:2])}: {out.stderr.strip()}")
        for host in ctx.lab.hosts.values():
            # registering from inside the namespace: Onload looks the interface up in the caller's namespace
            out = run_quiet(host.command(["sh", "-c", f"echo {host.ifname} > /sys/module/sfc_resource/afxdp/register"]))
            if out.returncode != 0:
                raise OnloadUnavailable(f"registering {host.ifname} with Onload's AF_XDP layer: {out.stderr.strip()}")
        return built

    def _unload(self) -> None:
        subprocess.run(["pkill", "-x", "onload_cp_server"], capture_output=True)
        for module in MODULES:
            for _ in range(20):
                if run_quiet(["rmmod", module]).returncode == 0 or not Path(f"/sys/module/{module}").exists():
                    break
                subprocess.run(["sleep", "0.5"])
        self._launcher = None

    def wait_accelerated(self, host: LabHost, proto: str, port: int, timeout: float = 30.0) -> tuple[bool, str]:
        """Wait until Onload's filter table on the host shows the server's socket accelerated: a stack's first
        socket brings up its AF_XDP attachment, and a packet that comes before that goes to the kernel. Returns
        whether it did, and the last filter table read."""
        want = f"{proto.upper()} {host.address}:{port}"
        deadline = time.monotonic() + timeout
        filters = ""
        while time.monotonic() < deadline:
            filters = self.stackdump(host, "filters")
            if any(want in line and "ACCELERATED" in line for line in filters.splitlines()):
                return True, filters
            time.sleep(0.2)
        return False, filters

    def _stackdump_tool(self) -> str | None:
        """The installed onload_stackdump, else the source build's, else None."""
        return shutil.which("onload_stackdump") or (str(self._build.stackdump) if self._build else None)

    def settle(self) -> str:
        """Wait until no Onload stack is left from an earlier case (see MSL_S); one still there after SETTLE_S is an
        orphan, which `onload_stackdump -z kill` ends. Returns what had to be done, for the row's note."""
        left = stacks_left_after(SETTLE_S)
        if not left:
            return ""
        said = f"{len(left)} Onload stack(s) of an earlier case outlived {SETTLE_S:.0f} s"
        tool = self._stackdump_tool()
        if tool is None:
            return f"{said} (no onload_stackdump to end them)"
        run_quiet([tool, "-z", "kill"], timeout=60)
        still = stacks_left_after(5.0)
        return f"{said}: `onload_stackdump -z kill`" + (f", {len(still)} remained" if still else "")

    def stackdump(self, host: LabHost, what: str = "lots") -> str:
        """`onload_stackdump --nolock <what>` in the host's namespace, what it printed and what it complained of.
        Without --nolock it skips a stack whose lock it cannot take ("could not get lock"), and a TCP server
        that spins in Onload's receive holds its stack's lock nearly all the time: the dump came back empty
        while Onload carried every segment. The counters read unlocked are a moment's snapshot, which is all
        the evidence needs."""
        tool = self._stackdump_tool()
        if not tool:
            return ""
        out = run_quiet(host.command([tool, "--nolock", what]), timeout=60)
        return out.stdout + "".join(f"stderr: {line}\n" for line in out.stderr.splitlines())

    def measure(self, ctx: RunContext, params: PingPongParams, spec: CaseSpec, engine: str) -> list[CaseResult]:
        try:
            wrap = self.launcher(ctx)
        except OnloadUnavailable as exc:
            attachments = {"onload-build.log": exc.log} if exc.log and exc.log.exists() else {}
            return [self.row(spec, "latlab" if engine == "latlab" else "sockperf", "own", "", complete=False,
                             note=f"failed: {exc}", attachments=attachments)]
        settled = self.settle()
        client, server = ctx.lab.hosts["a"], ctx.lab.hosts["b"]
        # TCP: a dump every half second while the traffic runs (the server's stack is gone after it, and the client's
        # start-up in the emulated VM takes seconds, so no fixed moment is sure to fall inside); UDP: the final one
        sampler = StackSampler(lambda: self.stackdump(server), 0.5 if spec.proto == "tcp" else None,
                               most=2 * int(params.duration_s + 120))
        filters: list[str] = []

        def ready(port: int) -> bool:
            accelerated, table = self.wait_accelerated(server, spec.proto, port)
            filters.append(table)
            sampler.start()
            return accelerated

        runtime = Runtime(client_wrap=wrap, server_wrap=wrap, ready_timeout=60, while_serving=sampler.stop,
                          server_ready=ready)
        before, link_before = namespace_counters(server), link_counters(server)
        client_before = namespace_counters(client)
        if engine == "latlab":
            result = run_engine(ctx, params, spec, runtime, stack=self.name, group=self.group(spec)).result
        else:
            result = run_sockperf(ctx, params, spec, runtime, stack=self.name, group=self.group(spec))
        sampler.stop()
        dumps = [sampler.best]
        kernel, link = delta(before, namespace_counters(server)), _sub(link_counters(server), link_before)
        client_kernel = delta(client_before, namespace_counters(client))
        result.params["launcher"] = " ".join(wrap)
        if settled:
            result.note = f"{result.note}; {settled}".strip("; ")
        name = f"onload-{spec.proto}-{spec.size}-{engine}-stackdump.txt"
        result.attachments[name] = self._dump_file(ctx.workdir / name, dumps, filters)
        return [with_evidence(result, self._evidence(spec, result, "\n".join(dumps), kernel, link, client_kernel))]

    def _dump_file(self, path: Path, server_dumps: list[str], server_filters: list[str]) -> Path:
        """What Onload said about this case, kept in the run folder as the evidence's source: the server's
        `onload_stackdump lots` and filter table while it served, and the kernel log's Onload lines."""
        kernel_log = run_quiet(["dmesg"], timeout=10).stdout.splitlines()
        onload_lines = [line for line in kernel_log if any(k in line.lower() for k in ("onload", "sfc", "af_xdp",
                                                                                        "xdp"))][-60:]
        sections = [("server: onload_stackdump --nolock lots, while serving", "\n".join(server_dumps)),
                    ("server: onload_stackdump --nolock filters, while serving", "\n".join(server_filters)),
                    ("kernel log: Onload, sfc and XDP lines (last 60)", "\n".join(onload_lines))]
        path.write_text("".join(f"==== {title}\n{body.strip() or '(nothing)'}\n\n" for title, body in sections))
        return path

    def _evidence(self, spec: CaseSpec, result: CaseResult, dump: str, kernel: dict, link: dict[str, int],
                  client_kernel: dict) -> Evidence:
        n = 0 if result.samples_ns is None else len(result.samples_ns)
        rx_evs = sum(int(v) for v in _RX_EVS.findall(dump))
        tx_evs = sum(int(v) for v in _TX_EVS.findall(dump))
        kernel_in, client_in = (_kernel_in(spec.proto, k) for k in (kernel, client_kernel))
        facts: dict[str, Any] = {"stackdump_rx_evs": rx_evs, "stackdump_tx_evs": tx_evs, "server_kernel_in": kernel_in,
                                 "client_kernel_in": client_in, "server_veth_rx_packets": link.get("rx_packets", 0),
                                 "samples": n}
        # Onload's stack received (its counters, read while the traffic ran), the veth took in at least one packet
        # per sample, and neither end's kernel saw more than a few of them: Onload, not the kernel, carried it at
        # both ends (a client whose socket Onload handed to the kernel still talks to an Onload server).
        holds = (bool(dump.strip()) and rx_evs > 0 and link.get("rx_packets", 0) >= n and kernel_in <= n // 100
                 and client_in <= n // 100 and n > 0)
        during = ("; the server dumped every 0.5 s while the traffic ran (its stack is gone after), which disturbs the "
                  "tail" if spec.proto == "tcp" else "")
        return Evidence(holds, facts, f"onload_stackdump on the server: rx_evs {rx_evs}, tx_evs {tx_evs} for {n} "
                                      f"samples; {spec.proto.upper()} into the kernel: server +{kernel_in}, client "
                                      f"+{client_in}; server veth rx +{link.get('rx_packets', 0)}{during}")


class StackSampler:
    """`onload_stackdump` of the server every `every_s` while a case runs (at most `most` times; never when
    `every_s` is None) and once when its client has finished, keeping the dump with the most receive events. A
    TCP server's stack is gone once its client has closed (the dump after the run is empty), so for TCP the
    server is dumped every half second while the traffic runs. Each dump is a process on the CPUs the spinning
    ends use, so it disturbs the tail a little: the row's note says so."""

    def __init__(self, dump: Callable[[], str], every_s: float | None = None, most: int = 0) -> None:
        self.dump = dump
        self.every_s = every_s
        self.most = most
        self.best = ""
        self._best_evs = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.every_s is not None:
            self._thread = threading.Thread(target=self._run, args=(self.every_s,), name="onload-stackdump",
                                            daemon=True)
            self._thread.start()

    def _run(self, every_s: float) -> None:
        for _ in range(self.most):
            if self._stop.wait(every_s):
                return
            self._keep(self.dump())

    def _keep(self, text: str) -> None:
        evs = sum(int(v) for v in _RX_EVS.findall(text))
        if text.strip() and evs > self._best_evs:
            self.best, self._best_evs = text, evs

    def stop(self) -> None:
        """Once the client has finished: stop waiting, and take the last dump (a UDP server's stack is still
        there, every event counted). A second call does nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=90)
        self._keep(self.dump())


class OnloadUnavailable(LatlabError):
    """Onload could not be brought up; `log` is the build log when the build was what failed."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log


def live_stacks() -> list[str]:
    """The Onload stacks the driver holds now, orphans included (one line each in /proc/driver/onload/stacks)."""
    try:
        return [line for line in STACKS.read_text().splitlines() if re.match(r"\d+:", line)]
    except OSError:
        return []


def stacks_left_after(seconds: float) -> list[str]:
    """The live stacks once they are all gone, or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while (left := live_stacks()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _kernel_in(proto: str, counters: dict) -> int:
    return counters["Udp"].get("InDatagrams", 0) if proto == "udp" else counters["Tcp"].get("InSegs", 0)


def _sub(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}
