"""Signal handling shared by every process latlab starts: SIGTERM and Ctrl-C end a loop the same way."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from latlab.cpu import pin

_default_unraisable_hook = sys.unraisablehook


def raise_interrupt(signum: int, frame: object) -> None:
    """A signal handler that turns the signal into KeyboardInterrupt (so loops keep what they measured)."""
    raise KeyboardInterrupt


def _redeliver_lost_interrupt(unraisable: Any) -> None:
    """A KeyboardInterrupt raised where Python can only print it (an at-fork hook while a subprocess starts) is
    lost. Signal again a moment later, from another thread, so that it is raised once the fork is behind us (a
    signal raised here would be handled here, and lost again)."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        timer = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT))
        timer.daemon = True
        timer.start()
        return
    _default_unraisable_hook(unraisable)


def catch_ctrl_c() -> None:
    """Ctrl-C raises KeyboardInterrupt, even when started with SIGINT ignored (a background job), and is not lost
    when it comes while a subprocess is being started."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.unraisablehook = _redeliver_lost_interrupt


@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM for the block: they are noted in the yielded list instead of handled (a spawn
    interrupted half-way would leave a child nobody stops). Outside the main thread nothing can be held."""
    came: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    previous = {sig: signal.signal(sig, lambda signum, _frame: came.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield came
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)


def stop_on_signals() -> None:
    """SIGTERM and SIGINT both raise KeyboardInterrupt, as catch_ctrl_c says."""
    signal.signal(signal.SIGTERM, raise_interrupt)
    catch_ctrl_c()


def start_helper(cpu: int | None) -> None:
    """What a helper process does first: stop on signals as above, and run on its CPU when it has one."""
    stop_on_signals()
    if cpu is not None:
        pin(cpu)
