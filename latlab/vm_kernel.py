"""Which Debian kernel the lab VM boots: `python3 latlab/vm_kernel.py` prints it (standard library only,
so the Makefile can ask before the venv exists).

The pin in latlab/VM_KERNEL_VERSION is used while apt can still fetch it (one kernel for everyone, and
the Onload build cached for it). When Debian's archive has moved to the next ABI and the pinned image is
gone, the kernel that the `linux-image-amd64` metapackage names now is used instead, so that a fresh
machine can still set up. The choice is written to .cache/vm-kernel-version, so make and the Python side
agree and a later archive move does not switch kernels under a working checkout (delete the file, or
`make vm-kernel-refresh`, to choose again).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIN_FILE = Path(__file__).with_name("VM_KERNEL_VERSION")
CHOSEN_FILE = REPO / ".cache" / "vm-kernel-version"
METAPACKAGE = "linux-image-amd64"
_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+-[0-9]+-amd64")


def pinned() -> str:
    return PIN_FILE.read_text().strip()


def _apt_cache(*args: str) -> str:
    try:
        out = subprocess.run(["apt-cache", *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout if out.returncode == 0 else ""


def fetchable(version: str) -> bool:
    """Whether apt's lists hold linux-image-<version> with a file to download."""
    return "\nFilename:" in "\n" + _apt_cache("show", "--no-all-versions", f"linux-image-{version}")


def metapackage_kernel(metapackage: str = METAPACKAGE) -> str | None:
    """The kernel version the metapackage depends on now (e.g. 6.1.0-57-amd64), or None."""
    for line in _apt_cache("depends", "--important", metapackage).splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if name.startswith("linux-image-") and _VERSION.fullmatch(name.removeprefix("linux-image-")):
            return name.removeprefix("linux-image-")
    return None


def resolve(pin: str | None = None, metapackage: str = METAPACKAGE) -> tuple[str, str]:
    """(version, why): the pin while apt can fetch it, else the metapackage's kernel, else the pin anyway."""
    pin = pin or pinned()
    if fetchable(pin):
        return pin, "pinned (latlab/VM_KERNEL_VERSION)"
    current = metapackage_kernel(metapackage)
    if current and fetchable(current):
        return current, f"the pinned {pin} is no longer in apt's lists; {metapackage} names {current}"
    return pin, f"pinned; apt knows neither it nor a current {metapackage} kernel"


def chosen() -> str:
    """The version this checkout uses: the recorded choice, else the pin (nothing resolved yet)."""
    try:
        recorded = CHOSEN_FILE.read_text().split()[0]
    except (OSError, IndexError):
        return pinned()
    return recorded if _VERSION.fullmatch(recorded) else pinned()


def main() -> int:
    if CHOSEN_FILE.is_file() and _VERSION.fullmatch(chosen()):
        print(chosen())
        return 0
    version, why = resolve()
    if not why.startswith("pinned;"):  # apt's lists answered: keep the choice (empty lists decide nothing)
        CHOSEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        CHOSEN_FILE.write_text(f"{version}\n# {why}\n")
        print(f"latlab: VM kernel {version}: {why}", file=sys.stderr)
    print(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
