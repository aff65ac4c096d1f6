"""Build OpenOnload from a source tarball or tree for one kernel, with the lab's veth patch; cached by digest.

OpenOnload is distributed as source and is in neither Debian nor PyPI. The user points `ONLOAD_SRC` at a
tarball or a source tree; this builds it once per (source, kernel) under the cache folder
(`LATLAB_CACHE`, default /var/cache/latlab: outside the clone, so a fresh clone reuses it) and keeps the
build log beside it. The lab's own patch (`onload/veth-no-rss.patch`) lets Onload register a veth, which
has no RSS indirection table; the module parameter `enable_af_xdp_flow_filters=0` does the rest (veth has
no ntuple filters). Both are described in the README's stack section.

`python -m toe_bench.onload_build --src PATH --kernelver VER` builds (or finds) it and prints the folder.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

PATCH = Path(__file__).with_name("onload") / "veth-no-rss.patch"
BUILD_TIMEOUT_S = 1800
# What the kernel and user-level halves need to build (Debian names); the kernel's headers are added per version.
BUILD_PACKAGES = ("libcap-dev", "libmnl-dev", "gawk", "make", "gcc", "patch")


class OnloadBuildError(RuntimeError):
    """The build failed; `log` is the path of its full log."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message if log is None else f"{message} (log: {log})")
        self.log = log


@dataclass(frozen=True)
class OnloadBuild:
    """A finished build: where its modules, its preload library and its tools are."""

    root: Path
    kernelver: str

    @property
    def user_dir(self) -> Path:
        return self.root / "build" / "gnu_x86_64"

    @property
    def driver_dir(self) -> Path:
        return self.root / "build" / f"x86_64_linux-{self.kernelver}" / "driver" / "linux"

    @property
    def preload(self) -> Path:
        return self.user_dir / "lib" / "transport" / "unix" / "libcitransport0.so"

    @property
    def cplane_server(self) -> Path:
        return self.user_dir / "tools" / "cplane" / "onload_cp_server"

    @property
    def stackdump(self) -> Path:
        return self.user_dir / "tools" / "ip" / "onload_stackdump"

    def module(self, name: str) -> Path:
        return self.driver_dir / f"{name}.ko"

    def missing(self) -> list[str]:
        """The build's products that are not there (empty when the build is usable)."""
        wanted = [self.preload, self.cplane_server, self.stackdump,
                  *(self.module(m) for m in ("sfc_resource", "sfc_char", "onload"))]
        return [str(p) for p in wanted if not p.exists()]


def cache_root() -> Path:
    return Path(os.environ.get("LATLAB_CACHE", "/var/cache/latlab")) / "onload"


def source_digest(src: Path) -> str:
    """A short digest naming the source: a tarball's bytes, or a tree's path and modification time."""
    h = hashlib.sha256()
    if src.is_file():
        with open(src, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    else:
        h.update(str(src.resolve()).encode())
        h.update(str(src.stat().st_mtime_ns).encode())
    h.update(PATCH.read_bytes())
    return h.hexdigest()[:12]


def build_dir(src: Path, kernelver: str) -> Path:
    return cache_root() / f"{source_digest(src)}-{kernelver}"


def headers_present(kernelver: str) -> bool:
    return Path(f"/lib/modules/{kernelver}/build/Makefile").exists() or \
        Path(f"/usr/src/linux-headers-{kernelver}/Makefile").exists()


def find_build(src: Path, kernelver: str) -> OnloadBuild | None:
    """The cached build of `src` for `kernelver`, when it is complete."""
    build = OnloadBuild(build_dir(src, kernelver) / "src", kernelver)
    return build if build.root.exists() and not build.missing() else None


def _unpack(src: Path, dest: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True)
        return
    with tarfile.open(src) as tar:
        tops = {m.name.split("/")[0] for m in tar.getmembers() if m.name}
        safe = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}  # Python < 3.11.4 has no filters
        tar.extractall(dest.parent / "unpack", **safe)
    top = dest.parent / "unpack" / (tops.pop() if len(tops) == 1 else "")
    top.rename(dest)
    shutil.rmtree(dest.parent / "unpack", ignore_errors=True)


def build(src: Path, kernelver: str, *, log_to: Path | None = None) -> OnloadBuild:
    """Build Onload for `kernelver` (or return the cached build). A failed build raises OnloadBuildError
    naming its log, and leaves no half build behind to be mistaken for a good one."""
    if not src.exists():
        raise OnloadBuildError(f"ONLOAD_SRC {src} does not exist")
    cached = find_build(src, kernelver)
    if cached:
        return cached
    if not headers_present(kernelver):
        raise OnloadBuildError(f"no kernel headers for {kernelver}: apt package linux-headers-{kernelver}")
    final = build_dir(src, kernelver)
    work = final.with_name(final.name + f".building-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = log_to or work / "build.log"
    started = time.monotonic()
    try:
        _unpack(src, work / "src")
        with open(log, "ab") as out:
            steps = [["patch", "-p1", "--forward", "-i", str(PATCH)],
                     ["scripts/onload_build", "--kernelver", kernelver, "--no-sfc", "--no-efct"]]
            for argv in steps:
                out.write(f"$ {' '.join(argv)}\n".encode())
                out.flush()
                rc = subprocess.run(argv, cwd=work / "src", stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, timeout=BUILD_TIMEOUT_S).returncode
                if rc != 0:
                    raise OnloadBuildError(f"{argv[0]} exited {rc}", log)
        result = OnloadBuild(work / "src", kernelver)
        if result.missing():
            raise OnloadBuildError(f"the build finished without {', '.join(result.missing())}", log)
        (work / "build.seconds").write_text(f"{time.monotonic() - started:.0f}\n")
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
        return OnloadBuild(final / "src", kernelver)
    except subprocess.TimeoutExpired as exc:
        raise OnloadBuildError(f"the build took longer than {BUILD_TIMEOUT_S} s", log) from exc
    finally:
        if work.exists():
            # keep the log of a failed build next to the cache, drop the half-built tree
            if log.exists() and log.parent == work:
                failed = final.with_name(final.name + ".failed.log")
                shutil.copyfile(log, failed)
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m toe_bench.onload_build", description=__doc__.splitlines()[0])
    p.add_argument("--src", type=Path, default=os.environ.get("ONLOAD_SRC"), help="tarball or tree (ONLOAD_SRC)")
    p.add_argument("--kernelver", default=os.uname().release)
    p.add_argument("--log", type=Path, help="append the build log here too")
    args = p.parse_args(argv)
    if not args.src:
        print("onload: no source: set ONLOAD_SRC to an OpenOnload tarball or source tree", file=sys.stderr)
        return 1
    try:
        result = build(args.src, args.kernelver, log_to=args.log)
    except OnloadBuildError as exc:
        print(f"onload: build failed: {exc}", file=sys.stderr)
        return 1
    print(result.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
