"""Ctrl-C in latlab's own process: held while a child starts (which is then stopped), and not lost when it lands
where Python can only print it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from latlab.procs import Proc
from latlab.signals import catch_ctrl_c, signals_held


@pytest.fixture(autouse=True)
def ctrl_c():
    """latlab's Ctrl-C handling for the test; pytest's own put back afterwards."""
    hook, handler = sys.unraisablehook, signal.getsignal(signal.SIGINT)
    catch_ctrl_c()
    yield
    sys.unraisablehook = hook
    signal.signal(signal.SIGINT, handler)


def test_signals_held_notes_them_and_restores_the_handlers():
    with signals_held() as came:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while not came and time.monotonic() < deadline:
            pass  # the handler runs between bytecodes, as soon as the signal lands
    assert came == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


def test_a_lost_interrupt_is_delivered_again():
    lost = types.SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=KeyboardInterrupt(), exc_traceback=None,
                                 err_msg=None, object=None)
    with pytest.raises(KeyboardInterrupt):
        sys.unraisablehook(lost)  # as Python does for an exception in an at-fork hook
        time.sleep(2)


def test_ctrl_c_while_a_child_starts_stops_it(tmp_path: Path, monkeypatch):
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen_then_ctrl_c(*args, **kwargs):
        child = real_popen(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the child is being started
        started.append(child)
        return child

    monkeypatch.setattr("latlab.procs.subprocess.Popen", popen_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        Proc(["sleep", "30"], tmp_path / "sleep.log", "sleep")
    [child] = started
    assert child.poll() is not None  # stopped, not left behind
