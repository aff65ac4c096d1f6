"""The manifest of a run: enough about the host, tools and parameters to reproduce or distrust it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from latlab import __version__
from latlab.topology import Lab


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    """The first CPU's feature flags from /proc/cpuinfo (empty when unreadable)."""
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def invariant_tsc() -> bool:
    """The TSC ticks at one rate in every power state, so it can time stages between clock reads."""
    return {"constant_tsc", "nonstop_tsc"} <= cpu_flags()


def cpu_isolation() -> dict[str, Any]:
    """Isolated CPUs and the boot parameters that isolate them."""
    cmdline = _read("/proc/cmdline") or ""
    params = {p.split("=", 1)[0]: p.split("=", 1)[1] if "=" in p else "" for p in cmdline.split()}
    return {
        "isolated": _read("/sys/devices/system/cpu/isolated"),
        "nohz_full": _read("/sys/devices/system/cpu/nohz_full"),
        "cmdline": {k: params[k] for k in ("isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity") if k in params},
        "online": _read("/sys/devices/system/cpu/online"),
        "smt_active": _read("/sys/devices/system/cpu/smt/active"),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
    }


def git_commit(repo: Path) -> dict[str, Any]:
    """Commit of the checkout that ran, and whether it had uncommitted changes."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit or "unknown: not a git checkout or no commits",
            "dirty": bool(status) if status is not None else None}


def ethtool_info(lab: Lab) -> dict[str, Any]:
    """`ethtool -i` of each lab host's interface (driver, version, firmware, bus)."""
    out: dict[str, Any] = {}
    for host in lab.hosts.values():
        try:
            res = subprocess.run(host.command(["ethtool", "-i", host.ifname]), capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            out[host.name] = {"error": f"unknown: {exc}"}
            continue
        if res.returncode != 0:
            out[host.name] = {"error": f"unknown: {res.stderr.strip() or 'ethtool failed'}"}
            continue
        out[host.name] = {k.strip(): v.strip() for k, v in
                          (line.split(":", 1) for line in res.stdout.splitlines() if ":" in line)}
    return out


def package_versions(names: tuple[str, ...] = ("hdrhistogram", "pyroute2", "numpy", "pyyaml")) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def build_manifest(*, run_id: str, lab: Lab, config: dict[str, Any], tool_versions: dict[str, str],
                   repo: Path, argv: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    """Everything a reader needs to know about where and how a run was made."""
    uname = os.uname()
    return {
        "run_id": run_id,
        "latlab_version": __version__,
        "argv": argv,
        "host": {"hostname": uname.nodename, "kernel": uname.release, "kernel_build": uname.version,
                 "machine": uname.machine, "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
                 "cpu": cpu_isolation()},
        "clock": {
            "source": _read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            "timestamps": "CLOCK_MONOTONIC (clock_gettime / time.perf_counter_ns) within one process; "
                          "no cross-host clock is used",
        },
        "lab": lab.describe(),
        "nic": ethtool_info(lab),
        "tools": {"python": sys.version.split()[0], **package_versions(), **tool_versions},
        "git": git_commit(repo),
        "parameters": config,
        **extra,
    }
