"""One small class per knob: it reads its state, says ready / not ready / not applicable / unknown (with why),
and — for runtime knobs — writes the target and restores the saved previous value exactly.

Boot-time knobs are never applied: they are reported as a kernel command-line diff.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

READY, NOT_READY, NOT_APPLICABLE, UNKNOWN = "ready", "not ready", "not applicable", "unknown"


@dataclass
class Result:
    """What a check found. `value` is what is there now, `target` what latency work wants."""

    name: str
    status: str
    value: str = ""
    target: str = ""
    why: str = ""
    runtime: bool = False
    cmdline: list[str] = field(default_factory=list)  # boot parameters that would make it ready


@dataclass
class Context:
    """What the checks look at: the root of /proc and /sys (tests point it elsewhere), the CPUs the lab runs on,
    and the NICs to inspect."""

    root: Path = Path("/")
    bench_cpus: list[int] = field(default_factory=list)
    nics: list[str] = field(default_factory=list)

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    def read(self, p: str) -> str | None:
        try:
            return self.path(p).read_text().strip()
        except OSError:
            return None

    def cmdline(self) -> dict[str, str]:
        raw = self.read("/proc/cmdline") or ""
        return {k: v for k, _, v in (w.partition("=") for w in raw.split())}


class Check:
    """A knob. Subclasses set `name` and implement `check`; runtime knobs also `path`/`target`."""

    name = ""
    runtime = False

    def check(self, ctx: Context) -> Result:
        raise NotImplementedError

    def result(self, status: str, **kw: object) -> Result:
        return Result(self.name, status, runtime=self.runtime, **kw)  # type: ignore[arg-type]


class FileKnob(Check):
    """A runtime value in one /proc or /sys file (a sysctl, THP, …): apply writes `target`, revert the old value."""

    runtime = True
    path = ""
    target = ""
    why_target = ""

    def current(self, ctx: Context) -> str | None:
        raw = ctx.read(self.path)
        if raw is None:
            return None
        selected = re.search(r"\[(\w+)\]", raw)  # "always [madvise] never" style files
        return selected.group(1) if selected else raw

    def is_ready(self, value: str) -> bool:
        return value == self.target

    def check(self, ctx: Context) -> Result:
        if not ctx.path(self.path).exists():
            return self.result(NOT_APPLICABLE, target=self.target, why=f"{self.path} does not exist on this kernel")
        value = self.current(ctx)
        if value is None:
            return self.result(UNKNOWN, target=self.target, why=f"cannot read {self.path}")
        status = READY if self.is_ready(value) else NOT_READY
        return self.result(status, value=value, target=self.target, why="" if status == READY else self.why_target)

    def write(self, ctx: Context, value: str) -> None:
        ctx.path(self.path).write_text(value + "\n")


class Sysctl(FileKnob):
    def __init__(self, key: str, target: str, why: str, at_most: bool = False) -> None:
        self.name = key
        self.path = "/proc/sys/" + key.replace(".", "/")
        self.target = target
        self.why_target = why
        self.at_most = at_most

    def is_ready(self, value: str) -> bool:
        if self.at_most:
            try:
                return int(value) <= int(self.target)
            except ValueError:
                return False
        return value == self.target


class AtLeast(FileKnob):
    def __init__(self, name: str, path: str, target: str, why: str) -> None:
        self.name, self.path, self.target, self.why_target = name, path, target, why

    def is_ready(self, value: str) -> bool:
        try:
            return int(value) >= int(self.target)
        except ValueError:
            return False


class Thp(FileKnob):
    name = "transparent_hugepage"
    path = "/sys/kernel/mm/transparent_hugepage/enabled"
    target = "never"
    why_target = "khugepaged compaction stalls the latency path"


class Governor(Check):
    name = "cpu_governor"

    def check(self, ctx: Context) -> Result:
        files = sorted(glob.glob(str(ctx.path("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor"))))
        if not files:
            return self.result(NOT_APPLICABLE, target="performance",
                               why="no cpufreq (a VM, or frequency set by firmware)")
        values = sorted({Path(f).read_text().strip() for f in files})
        status = READY if values == ["performance"] else NOT_READY
        return self.result(status, value=",".join(values), target="performance",
                           why="" if status == READY else "frequency changes add wake-up latency")


class Turbo(Check):
    name = "turbo"

    def check(self, ctx: Context) -> Result:
        no_turbo = ctx.read("/sys/devices/system/cpu/intel_pstate/no_turbo")
        boost = ctx.read("/sys/devices/system/cpu/cpufreq/boost")
        if no_turbo is None and boost is None:
            return self.result(NOT_APPLICABLE, why="no turbo control exposed (recorded only)")
        value = f"turbo {'off' if no_turbo == '1' else 'on'}" if no_turbo is not None else f"boost {boost}"
        return self.result(READY, value=value, why="recorded: tuning profiles disagree on turbo")


class CpuIsolation(Check):
    name = "cpu_isolation"

    def check(self, ctx: Context) -> Result:
        cmd = ctx.cmdline()
        cpus = ",".join(str(c) for c in ctx.bench_cpus) or "1"
        want = [f"isolcpus={cpus}", f"nohz_full={cpus}", f"rcu_nocbs={cpus}"]
        have = {k: cmd.get(k, "") for k in ("isolcpus", "nohz_full", "rcu_nocbs")}
        missing = [w for w in want if not have[w.split("=")[0]]]
        isolated = ctx.read("/sys/devices/system/cpu/isolated")
        value = f"isolated={isolated or '-'} " + " ".join(f"{k}={v or '-'}" for k, v in have.items())
        if isolated is None:
            return self.result(UNKNOWN, value=value, why="cannot read /sys/devices/system/cpu/isolated")
        if missing:
            return self.result(NOT_READY, value=value, target=" ".join(want), cmdline=missing,
                               why="the benchmark CPUs share ticks, RCU callbacks and other tasks")
        return self.result(READY, value=value, target=" ".join(want))


class Smt(Check):
    name = "smt"

    def check(self, ctx: Context) -> Result:
        active = ctx.read("/sys/devices/system/cpu/smt/active")
        if active is None:
            return self.result(NOT_APPLICABLE, why="no SMT control")
        control = ctx.read("/sys/devices/system/cpu/smt/control") or ""
        if control == "notsupported":
            return self.result(NOT_APPLICABLE, value=control, why="the CPU has no SMT")
        if active == "0":
            return self.result(READY, value=f"active=0 control={control}", target="off")
        return self.result(NOT_READY, value=f"active={active} control={control}", target="off", cmdline=["nosmt"],
                           why="a sibling thread shares the core's caches and ports")


class CStates(Check):
    name = "c_states"

    def check(self, ctx: Context) -> Result:
        states = sorted(glob.glob(str(ctx.path("/sys/devices/system/cpu/cpu0/cpuidle/state[0-9]*"))))
        dma = ctx.path("/dev/cpu_dma_latency").exists()
        if not states:
            return self.result(NOT_APPLICABLE, value=f"cpu_dma_latency {'present' if dma else 'absent'}",
                               why="no cpuidle states exposed (a VM, or idle=poll)")
        deep = []
        for s in states:
            name = (Path(s) / "name").read_text().strip()
            disabled = (Path(s) / "disable").read_text().strip() == "1"
            latency = int((Path(s) / "latency").read_text().strip() or 0)
            if latency > 2 and not disabled:
                deep.append(f"{name}({latency}us)")
        if deep:
            return self.result(NOT_READY, value="enabled: " + ",".join(deep), target="no state deeper than C1",
                               cmdline=["processor.max_cstate=1", "intel_idle.max_cstate=0"],
                               why="waking from deep C-states costs tens of microseconds; or hold "
                                   "/dev/cpu_dma_latency at 0 while benchmarking")
        return self.result(READY, value="no deep state enabled", target="no state deeper than C1")


class IrqBalance(Check):
    name = "irqbalance"

    def check(self, ctx: Context) -> Result:
        try:
            out = subprocess.run(["pgrep", "-x", "irqbalance"], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return self.result(UNKNOWN, why=f"cannot list processes: {exc}")
        if out.returncode == 0:
            return self.result(NOT_READY, value="running", target="stopped",
                               why="it moves NIC interrupts onto the benchmark CPUs")
        return self.result(READY, value="not running", target="stopped")


class IrqDefaultAffinity(FileKnob):
    name = "irq_default_affinity"
    path = "/proc/irq/default_smp_affinity"
    why_target = "new interrupts should avoid the benchmark CPUs"

    def check(self, ctx: Context) -> Result:
        if not ctx.bench_cpus:
            return self.result(NOT_APPLICABLE, why="no benchmark CPUs given (--cpus)")
        online = os.cpu_count() or 1
        mask = sum(1 << c for c in range(online) if c not in ctx.bench_cpus)
        if mask == 0:
            return self.result(NOT_APPLICABLE, why="every CPU runs the benchmark; nowhere else to steer interrupts")
        self.target = f"{mask:x}"
        return super().check(ctx)

    def is_ready(self, value: str) -> bool:
        try:
            return int(value.replace(",", ""), 16) == int(self.target, 16)
        except ValueError:
            return False


def _physical(ctx: Context, nic: str) -> bool:
    return ctx.path(f"/sys/class/net/{nic}/device").exists()


class NicCheck(Check):
    """Checks of each physical NIC given with --nic; virtual interfaces are not applicable."""

    def check(self, ctx: Context) -> Result:
        nics = [n for n in ctx.nics if _physical(ctx, n)]
        if not ctx.nics:
            return self.result(NOT_APPLICABLE, why="no NIC given (--nic)")
        if not nics:
            return self.result(NOT_APPLICABLE, why=f"{', '.join(ctx.nics)}: virtual interfaces (no device)")
        if shutil.which("ethtool") is None and self.needs_ethtool:
            return self.result(UNKNOWN, why="ethtool not installed: apt package ethtool, or `make setup`")
        results = [self.check_nic(ctx, n) for n in nics]
        worst = next((r for r in results if r.status in (UNKNOWN, NOT_READY)), results[0])
        return self.result(worst.status, value="; ".join(f"{n}: {r.value}" for n, r in zip(nics, results, strict=True)),
                           target=worst.target, why=worst.why)

    needs_ethtool = True

    def check_nic(self, ctx: Context, nic: str) -> Result:
        raise NotImplementedError


def _ethtool(args: list[str]) -> str | None:
    try:
        out = subprocess.run(["ethtool", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


class Coalescing(NicCheck):
    name = "nic_coalescing"

    def check_nic(self, ctx: Context, nic: str) -> Result:
        out = _ethtool(["-c", nic])
        if out is None:
            return self.result(UNKNOWN, why=f"ethtool -c {nic} failed")
        adaptive = re.search(r"Adaptive RX:\s*(\w+)", out)
        usecs = re.search(r"rx-usecs:\s*(\d+)", out)
        value = f"adaptive-rx {adaptive.group(1) if adaptive else '?'}, rx-usecs {usecs.group(1) if usecs else '?'}"
        ready = adaptive and adaptive.group(1) == "off" and usecs and int(usecs.group(1)) in (0, 60)
        return self.result(READY if ready else NOT_READY, value=value,
                           target="adaptive-rx off, rx-usecs 0 (60 when Onload spins)",
                           why="" if ready else "interrupt moderation holds packets back")


class Rings(NicCheck):
    name = "nic_rings_channels"

    def check_nic(self, ctx: Context, nic: str) -> Result:
        rings, chans = _ethtool(["-g", nic]), _ethtool(["-l", nic])
        if rings is None or chans is None:
            return self.result(UNKNOWN, why=f"ethtool -g/-l {nic} failed")
        rx = re.findall(r"RX:\s*(\d+)", rings)
        comb = re.findall(r"Combined:\s*(\d+)", chans)
        value = f"rx ring {rx[-1] if rx else '?'}, combined channels {comb[-1] if comb else '?'}"
        return self.result(READY, value=value, why="recorded")


class Timestamping(NicCheck):
    name = "hw_timestamping"

    def check_nic(self, ctx: Context, nic: str) -> Result:
        out = _ethtool(["-T", nic])
        if out is None:
            return self.result(UNKNOWN, why=f"ethtool -T {nic} failed")
        hw = "hardware-receive" in out and "hardware-transmit" in out
        phc = re.search(r"PTP Hardware Clock:\s*(\S+)", out)
        value = f"hardware {'yes' if hw else 'no'}, PHC {phc.group(1) if phc else '-'}"
        return self.result(READY if hw else NOT_READY, value=value, target="hardware rx/tx timestamps",
                           why="" if hw else "only software timestamps")


class NicNuma(NicCheck):
    name = "nic_numa_locality"
    needs_ethtool = False

    def check_nic(self, ctx: Context, nic: str) -> Result:
        node = ctx.read(f"/sys/class/net/{nic}/device/numa_node")
        if node is None:
            return self.result(UNKNOWN, why=f"cannot read the NUMA node of {nic}")
        if node == "-1":
            return self.result(READY, value="single node", why="")
        cpus = ctx.read(f"/sys/devices/system/node/node{node}/cpulist") or ""
        return self.result(READY, value=f"node {node} (cpus {cpus})", target="benchmark CPUs on this node")


class Firewall(Check):
    name = "firewall_conntrack"

    def check(self, ctx: Context) -> Result:
        conntrack = (ctx.path("/proc/net/nf_conntrack").exists()
                     or ctx.path("/proc/sys/net/netfilter/nf_conntrack_count").exists())
        rules = "unknown"
        if shutil.which("nft"):
            out = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, timeout=10)
            rules = "empty" if out.returncode == 0 and not out.stdout.strip() else "present"
        value = f"nftables ruleset {rules}, conntrack {'loaded' if conntrack else 'not loaded'}"
        if rules == "unknown":
            return self.result(UNKNOWN, value=value, why="nft not installed: apt package nftables")
        ready = rules == "empty" and not conntrack
        return self.result(READY if ready else NOT_READY, value=value, target="no rules, no conntrack",
                           why="" if ready else "every packet walks the rules and the connection table")


class Tuned(Check):
    name = "tuned_profile"

    def check(self, ctx: Context) -> Result:
        if shutil.which("tuned-adm") is None:
            return self.result(NOT_APPLICABLE, why="tuned is not installed")
        out = subprocess.run(["tuned-adm", "active"], capture_output=True, text=True, timeout=10)
        profile = out.stdout.strip().rpartition(":")[2].strip()
        ready = profile in ("network-latency", "realtime", "cpu-partitioning")
        return self.result(READY if ready else NOT_READY, value=profile or "none", target="network-latency",
                           why="" if ready else "another tuned profile may undo these settings")


class Ptp(Check):
    name = "ptp_sync"

    def check(self, ctx: Context) -> Result:
        if not glob.glob(str(ctx.path("/sys/class/ptp/ptp*"))):
            return self.result(NOT_APPLICABLE, why="no PTP hardware clock (cross-host one-way needs one)")
        if shutil.which("pmc") is None:
            return self.result(UNKNOWN, why="pmc not installed: apt package linuxptp")
        out = subprocess.run(["pmc", "-u", "-b", "0", "GET TIME_STATUS_NP"], capture_output=True, text=True,
                             timeout=10)
        offset = re.search(r"master_offset\s+(-?\d+)", out.stdout)
        if not offset:
            return self.result(NOT_READY, why="ptp4l is not answering (not running?)")
        ns = abs(int(offset.group(1)))
        return self.result(READY if ns < 1000 else NOT_READY, value=f"offset {ns} ns", target="< 1 µs")


def all_checks() -> list[Check]:
    """Every check, in report order."""
    return [
        CpuIsolation(), IrqDefaultAffinity(), IrqBalance(), Smt(), Governor(), Turbo(), CStates(), Thp(),
        Sysctl("kernel.numa_balancing", "0", "page migration stalls the benchmark threads"),
        Sysctl("kernel.timer_migration", "0", "timers follow tasks onto the benchmark CPUs"),
        Sysctl("vm.stat_interval", "10", "per-CPU vmstat work wakes every CPU once a second"),
        Sysctl("kernel.watchdog", "0", "the soft-lockup watchdog fires on every CPU"),
        Sysctl("kernel.nmi_watchdog", "0", "NMIs interrupt the benchmark CPUs"),
        Sysctl("vm.swappiness", "0", "swapping the benchmark's pages costs milliseconds", at_most=True),
        Sysctl("net.core.busy_read", "50", "socket busy-polling (µs) avoids the interrupt-to-wake-up path"),
        Sysctl("net.core.busy_poll", "50", "select/poll busy-polling (µs)"),
        AtLeast("hugepages", "/proc/sys/vm/nr_hugepages", "512", "DPDK and Onload want huge pages"),
        Coalescing(), Rings(), NicNuma(), Timestamping(), Firewall(), Tuned(), Ptp(), *stack_checks(),
    ]


def stack_checks() -> list[Check]:
    """What each stack of the matrix needs (hostprep/stacks.py); imported here to keep one report order."""
    from hostprep.stacks import stack_checks as checks

    return checks()
