"""A progress bar per case, filled by elapsed time against the case's expected duration; quiet under CI."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


def progress_enabled() -> bool:
    """Bars only on an interactive terminal and never under CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


class CaseProgress:
    """Shows one bar per case while it runs, or one plain line per case when bars are off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = Progress(TextColumn("{task.description:<40}"), BarColumn(), TimeElapsedColumn(),
                                  disable=not enabled, transient=False)

    def __enter__(self) -> CaseProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    @contextlib.contextmanager
    def case(self, title: str, expected_seconds: float) -> Iterator[None]:
        if not self.enabled:
            print(f"latlab: running {title}", file=sys.stderr, flush=True)
            yield
            return
        task = self._progress.add_task(title, total=max(expected_seconds, 0.1))
        done = threading.Event()
        start = time.monotonic()

        def tick() -> None:
            while not done.wait(0.2):
                self._progress.update(task, completed=min(time.monotonic() - start, expected_seconds * 0.99))

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self._progress.update(task, completed=max(expected_seconds, 0.1))
