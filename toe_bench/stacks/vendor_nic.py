"""Stacks that need a vendor's NIC: NVIDIA's VMA and XLIO (ConnectX), and a Chelsio TOE (cxgb4 + t4_tom).

Each is detected; where its hardware is absent it is "not applicable", never a kernel run under its name.
libvma, for one, runs unaccelerated on a host without a ConnectX ("Netdev is not offloaded fallback to
OS"): its row then would be the kernel's.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from latlab.plugin import RunContext
from latlab.results import CaseResult
from latlab.topology import Lab
from toe_bench.runs import Runtime, run_engine, run_sockperf
from toe_bench.stacks.base import SPIN, Availability, CaseSpec, Evidence, Stack, with_evidence

if TYPE_CHECKING:
    from toe_bench.plugin import PingPongParams

LIB_DIRS = ("/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/opt/mellanox/*/lib")


def netdevs_with_driver(*drivers: str) -> list[str]:
    """Network interfaces (this namespace) whose driver is one of `drivers`."""
    found = []
    for dev in sorted(Path("/sys/class/net").iterdir()):
        driver = dev / "device" / "driver"
        if driver.exists() and driver.resolve().name in drivers:
            found.append(dev.name)
    return found


def find_library(name: str) -> str | None:
    for pattern in LIB_DIRS:
        for folder in glob.glob(pattern):
            path = Path(folder) / name
            if path.exists():
                return str(path)
    return None


class PreloadStack(Stack):
    """A socket-acceleration library loaded with LD_PRELOAD: VMA or XLIO on a ConnectX."""

    library = ""
    extra_needs = ""
    log_env: ClassVar[dict[str, str]] = {}
    offloaded = ""  # a line of the library's log that only appears when it accelerates a socket
    fallback = ""  # a line it prints when it passes a socket through to the kernel

    def detect(self, lab: Lab | None = None) -> Availability:
        if not netdevs_with_driver("mlx5_core", "mlx4_en"):
            return Availability(False, f"needs a ConnectX NIC{self.extra_needs}", applicable=False)
        if find_library(self.library) is None:
            return Availability(False, f"{self.library} not installed")
        return Availability(True, find_library(self.library) or "")

    def receive_mode(self, configured: str) -> str:
        return SPIN

    def measure(self, ctx: RunContext, params: PingPongParams, spec: CaseSpec, engine: str) -> list[CaseResult]:
        lib = find_library(self.library)
        wrap = ["env", f"LD_PRELOAD={lib}", *(f"{k}={v}" for k, v in self.log_env.items())]
        runtime = Runtime(client_wrap=wrap, server_wrap=wrap)
        if engine == "latlab":
            result = run_engine(ctx, params, spec, runtime, stack=self.name, group=self.group(spec)).result
        else:
            result = run_sockperf(ctx, params, spec, runtime, stack=self.name, group=self.group(spec))
        logs = "".join(p.read_text(errors="replace") for p in ctx.workdir.glob(f"*{self.name}-{spec.proto}-*.log"))
        holds = self.offloaded in logs and self.fallback not in logs
        return [with_evidence(result, Evidence(holds, {"log_offloaded": self.offloaded in logs,
                                                       "log_fallback": self.fallback in logs},
                                               f"{self.name} log: '{self.offloaded}' "
                                               f"{'seen' if self.offloaded in logs else 'not seen'}"))]


class VmaStack(PreloadStack):
    name = "vma"
    what = "NVIDIA VMA (libvma) by LD_PRELOAD on a ConnectX"
    library = "libvma.so"
    log_env: ClassVar[dict[str, str]] = {"VMA_TRACELEVEL": "3"}
    offloaded = "VMA INFO"
    fallback = "fallback to OS"


class XlioStack(PreloadStack):
    name = "xlio"
    what = "NVIDIA XLIO (libxlio) by LD_PRELOAD on a ConnectX with DOCA-Host"
    library = "libxlio.so"
    extra_needs = " (XLIO also DOCA-Host)"
    log_env: ClassVar[dict[str, str]] = {"XLIO_TRACELEVEL": "3"}
    offloaded = "XLIO INFO"
    fallback = "fallback to OS"


class ChelsioToeStack(Stack):
    """A TCP offload engine in the NIC: Linux has none of its own; Chelsio's t4_tom is the one in use."""

    name = "toe"
    protocols = ("tcp",)
    engines = ("latlab", "sockperf")
    what = "a Chelsio T4+ TCP offload engine (cxgb4 with t4_tom); Linux itself has no TOE"

    def detect(self, lab: Lab | None = None) -> Availability:
        ports = netdevs_with_driver("cxgb4")
        if not ports:
            return Availability(False, "needs a Chelsio T4+ NIC (cxgb4) with t4_tom", applicable=False)
        if not Path("/sys/module/t4_tom").exists():
            return Availability(False, f"Chelsio ports {', '.join(ports)} found, but t4_tom is not loaded")
        return Availability(False, "Chelsio TOE found, but latlab has no evidence source for offloaded "
                                   "connections yet: measure it as the kernel row on the Chelsio port")

    def measure(self, ctx: RunContext, params: PingPongParams, spec: CaseSpec, engine: str) -> list[CaseResult]:
        raise NotImplementedError("detect() never makes the toe stack available")
