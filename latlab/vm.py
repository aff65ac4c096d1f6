"""The lab VM: Debian's kernel package booted under qemu (TCG) with virtme-ng, sharing this file system.

The kernel version is latlab/vm_kernel.py's choice (the pin in latlab/VM_KERNEL_VERSION while apt has it;
the Makefile asks the same module); `make vm-kernel` downloads the package with apt, unpacks it under
.cache/kernel/ and installs its modules so the VM can load rdma_rxe. KVM is not used: here qemu asserts
on MSR 0x10a with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from latlab import vm_kernel
from latlab.errors import LatlabError

REPO = Path(__file__).resolve().parent.parent
KERNEL_VERSION = vm_kernel.chosen()
CACHE = REPO / ".cache" / "kernel" / KERNEL_VERSION
MEMORY = "2G"
CPUS = 2


def vmlinuz() -> Path:
    return CACHE / "boot" / f"vmlinuz-{KERNEL_VERSION}"


def unavailable_reason() -> str | None:
    """Why the VM cannot start here, naming the package or target, or None."""
    venv_bin = Path(sys.executable).parent
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 not installed: apt package qemu-system-x86, or `make setup-rdma`"
    if not (venv_bin / "vng").exists() and shutil.which("vng") is None:
        return "virtme-ng (vng) not installed: `make setup-rdma`"
    if shutil.which("busybox") is None:
        return "busybox not installed (virtme-ng builds its initramfs with it): apt package busybox-static"
    if not vmlinuz().exists():
        return f"kernel {KERNEL_VERSION} not unpacked at {vmlinuz()}: `make vm-kernel`"
    if not Path(f"/lib/modules/{KERNEL_VERSION}/modules.dep").exists():
        return f"modules of {KERNEL_VERSION} not installed in /lib/modules: `make vm-kernel`"
    return None


def run(script: Path, console_log: Path, timeout_s: float, rwdir: Path, memory: str = MEMORY, cpus: int = CPUS,
        rodirs: Sequence[Path] = ()) -> int:
    """Boot the VM, run `bash script` inside, return its exit code. The guest sees the host's file system
    read-only except `rwdir`, where it writes its results; the guest mounts its own /tmp, /run and /var/cache,
    so anything it needs from those goes in `rodirs`. The console goes to `console_log`; a VM that
    does not finish within `timeout_s` is killed (and the log kept)."""
    reason = unavailable_reason()
    if reason:
        raise LatlabError(reason)
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    # The guest mounts its own tmpfs on /tmp, so a checkout under /tmp (a CI clone, say) would vanish inside it:
    # map the repository in explicitly, read-only, and only the results folder read-write.
    argv = ["vng", "--run", str(vmlinuz()), "--disable-kvm", "--memory", memory, "--cpus", str(cpus),
            f"--rodir={REPO}", *(f"--rodir={d}" for d in rodirs),
            f"--rwdir={rwdir}", "--cwd", str(REPO), "--", f"bash {script}"]
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with open(console_log, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise LatlabError(f"the VM did not finish within {timeout_s:.0f} s; console log: {console_log}") from None
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
