"""Starting and stopping helper processes (servers, clients, reference tools), always cleaned up."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from latlab.errors import LatlabError, MissingTool
from latlab.signals import signals_held


def require_tool(tool: str, package: str, target: str = "setup") -> str:
    """Path of an executable, or MissingTool naming its Debian package and the make target."""
    path = shutil.which(tool)
    if path is None:
        raise MissingTool(tool, package, target)
    return path


def tool_version(argv: Sequence[str]) -> str:
    """First non-empty line a tool prints about its version, or why it could not say."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown: {exc}"
    for line in (out.stdout + out.stderr).splitlines():
        line = line.strip()
        if line:
            return line
    return "unknown: no output"


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, so that a killed run (SIGKILL, a crash) leaves
    no server behind. Busy-polling servers such as sockperf never exit on their own."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Proc:
    """A child process with its output in a log file; `stop()` ends it and its process group.
    It also dies with its parent (PR_SET_PDEATHSIG)."""

    def __init__(self, argv: Sequence[str], log: Path, name: str) -> None:
        self.argv = list(argv)
        self.name = name
        self.log = log
        self._logf = open(log, "wb")  # noqa: SIM115 - closed in stop()
        with signals_held() as came:
            self.popen = subprocess.Popen(self.argv, stdout=self._logf, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          preexec_fn=die_with_parent)
        if came:  # Ctrl-C (or SIGTERM) while starting it: stop it, then take the signal as it came
            self.stop()
            signal.raise_signal(came[0])

    def wait_for_output(self, needle: str, timeout: float) -> None:
        """Wait until the log contains `needle`; fail with the log's tail if the process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output():
                return
            if self.popen.poll() is not None:
                raise LatlabError(f"{self.name} exited with {self.popen.returncode}: {self.tail()}")
            time.sleep(0.02)
        raise LatlabError(f"{self.name} not ready after {timeout:.0f} s: {self.tail()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 5) -> str:
        return " | ".join(self.output().strip().splitlines()[-lines:])

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self, grace: float = 2.0) -> int | None:
        """SIGTERM the process group, SIGKILL after `grace` seconds; returns the exit code."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=grace)
        self._logf.close()
        return self.popen.returncode


@contextlib.contextmanager
def running(argv: Sequence[str], log: Path, name: str, ready: str | None = None,
            ready_timeout: float = 10.0) -> Iterator[Proc]:
    """Run a process for the duration of a with-block (waiting for `ready` in its output first)."""
    proc: Proc | None = None
    try:
        proc = Proc(argv, log, name)
        if ready is not None:
            proc.wait_for_output(ready, ready_timeout)
        yield proc
    finally:
        if proc is not None:
            proc.stop()
