"""Signal handling shared by every process latlab starts: SIGTERM and Ctrl-C end a loop the same way."""

from __future__ import annotations

import signal

from latlab.cpu import pin


def raise_interrupt(signum: int, frame: object) -> None:
    """A signal handler that turns the signal into KeyboardInterrupt (so loops keep what they measured)."""
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """SIGTERM and SIGINT both raise KeyboardInterrupt, even when started with SIGINT ignored (a background job)."""
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def start_helper(cpu: int | None) -> None:
    """What a helper process does first: stop on signals as above, and run on its CPU when it has one."""
    stop_on_signals()
    if cpu is not None:
        pin(cpu)
