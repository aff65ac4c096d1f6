"""What each network stack of the matrix needs from a host, and whether this host has it.

These checks only look; nothing here is applied. A stack whose hardware is absent is "not applicable",
with the reason; one whose software or kernel support is missing is "not ready", naming what to install.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket

from hostprep.checks import NOT_APPLICABLE, NOT_READY, READY, Check, Context, Result

AF_XDP = 44
XDP_DRIVERS = ("mlx5_core", "mlx4_en", "ice", "i40e", "ixgbe", "igc", "igb", "sfc", "virtio_net", "veth", "bnxt_en",
               "ena", "nfp", "qede", "tun", "stmmac")


def _drivers(ctx: Context, nics: list[str]) -> dict[str, str]:
    found = {}
    for nic in nics:
        link = ctx.path(f"/sys/class/net/{nic}/device/driver")
        if link.exists():
            found[nic] = os.path.basename(os.path.realpath(link))
    return found


class AfXdpStack(Check):
    name = "stack af_xdp"

    def check(self, ctx: Context) -> Result:
        try:
            socket.socket(AF_XDP, socket.SOCK_RAW, 0).close()
        except OSError as exc:
            return self.result(NOT_READY, value="no AF_XDP sockets", target="CONFIG_XDP_SOCKETS",
                               why=f"this kernel opens no AF_XDP socket ({exc.strerror})")
        drivers = _drivers(ctx, ctx.nics)
        native = {n: d for n, d in drivers.items() if d in XDP_DRIVERS}
        value = "AF_XDP sockets; " + (", ".join(f"{n}: {d} (native XDP)" for n, d in native.items())
                                      or "generic XDP on every NIC")
        return self.result(READY, value=value, why="latlab's endpoint also runs in generic (skb) mode")


class DpdkStack(Check):
    name = "stack dpdk"

    def check(self, ctx: Context) -> Result:
        if shutil.which("dpdk-testpmd") is None:
            return self.result(NOT_READY, value="no dpdk-testpmd", target="apt dpdk-dev",
                               why="testpmd is the DPDK reflector")
        pmd = glob.glob(str(ctx.path("/usr/lib")) + "/*/dpdk/pmds-*/librte_net_af_xdp.so*")
        huge = ctx.read("/proc/sys/vm/nr_hugepages") or "0"
        value = f"dpdk-testpmd; AF_XDP PMD {'present' if pmd else 'missing'}; {huge} huge pages"
        if not pmd:
            return self.result(NOT_READY, value=value, target="librte_net_af_xdp",
                               why="the built-in lab uses net_af_xdp")
        return self.result(READY, value=value,
                           why="huge pages for a real NIC's PMD (the built-in lab runs --no-huge)")


class OnloadStack(Check):
    name = "stack onload"

    def check(self, ctx: Context) -> Result:
        loaded = ctx.path("/sys/module/onload").exists()
        if loaded and shutil.which("onload"):
            return self.result(READY, value="onload installed, modules loaded")
        if not ctx.path("/proc/modules").exists():
            return self.result(NOT_READY, value="no loadable modules", target="a kernel with CONFIG_MODULES",
                               why="Onload is kernel modules plus a preload library; `make bench-stacks` runs it "
                                   "in the lab VM")
        if os.environ.get("ONLOAD_SRC"):
            return self.result(READY, value=f"ONLOAD_SRC={os.environ['ONLOAD_SRC']}",
                               why="latlab builds it for this kernel (needs its headers)")
        return self.result(NOT_READY, value="no onload", target="onload installed, or ONLOAD_SRC",
                           why="not in Debian or PyPI: github.com/Xilinx-CNS/onload")


class RdmaStack(Check):
    name = "stack rdma"

    def check(self, ctx: Context) -> Result:
        devices = sorted(p.name for p in ctx.path("/sys/class/infiniband").glob("*")) \
            if ctx.path("/sys/class/infiniband").exists() else []
        if devices:
            return self.result(READY, value=f"RDMA devices: {', '.join(devices)}")
        if ctx.path("/sys/module/rdma_rxe").exists():
            return self.result(READY, value="rdma_rxe loaded: soft-RoCE across a veth")
        if not ctx.path("/proc/modules").exists():
            return self.result(NOT_READY, value="no RDMA device, no loadable rdma_rxe", target="an RDMA device",
                               why="`make bench-rdma` runs soft-RoCE in the lab VM")
        return self.result(READY, value="no RDMA device; soft-RoCE (rdma_rxe) when the module loads")


class VendorStacks(Check):
    name = "stack vma/xlio/toe"

    def check(self, ctx: Context) -> Result:
        drivers = set(_drivers(ctx, [p.name for p in ctx.path("/sys/class/net").glob("*")]).values()) \
            if ctx.path("/sys/class/net").exists() else set()
        have = [name for name, drv in (("ConnectX (VMA, XLIO)", "mlx5_core"), ("Chelsio (TOE)", "cxgb4"))
                if drv in drivers]
        if not have:
            return self.result(NOT_APPLICABLE, why="no ConnectX (VMA/XLIO, XLIO also DOCA-Host) or Chelsio (TOE) NIC")
        return self.result(READY, value=", ".join(have), why="the stack's library or module must be installed too")


def stack_checks() -> list[Check]:
    return [AfXdpStack(), DpdkStack(), OnloadStack(), RdmaStack(), VendorStacks()]
