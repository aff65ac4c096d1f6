"""CPU pinning and the quiet timed-loop context (garbage collection off)."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator


def available_cpus() -> list[int]:
    """CPUs this process may run on, sorted."""
    return sorted(os.sched_getaffinity(0))


def pin(cpu: int) -> None:
    """Pin the calling process to one CPU."""
    os.sched_setaffinity(0, {cpu})


def taskset(cpu: int | None) -> list[str]:
    """argv prefix that pins an external program to one CPU (nothing when cpu is None)."""
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Collect once, then keep the collector off for the timed loop."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
