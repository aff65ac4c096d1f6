"""What a benchmark case hands back to the core: samples plus the words that say what they are."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RTT = "RTT"
HALF_RTT = "RTT/2"
ONE_WAY = "one-way"


@dataclass
class CaseResult:
    """One engine's measurement of one case.

    `group` names the comparison (same path, protocol, size, mode); rows of one group are compared,
    and `role` "own" rows are divided by `role` "reference" rows. `metric` says RTT or one-way and
    `timestamps` where each timestamp was taken. Samples are nanoseconds; `send_ns` (same length)
    places each sample in time for the interval log. A reference that gives only an average sets
    `mean_only_ns`. `corrected_ns` holds the coordinated-omission-corrected samples of open-loop runs.
    `figures` carries named non-latency results (rates, loss counts) that the report prints in the note.
    `attachments` are files (a VM console log, say) copied into the run folder under the given names.
    `path` describes where the traffic ran (lab, VM, kernel, devices); the core fills in its a/b lab for
    benchmarks that run there. `budget` names the trading path the row measures (latlab.budgets), if any.
    """

    group: str
    engine: str
    role: str
    metric: str
    timestamps: str
    samples_ns: np.ndarray | None = None
    send_ns: np.ndarray | None = None
    corrected_ns: np.ndarray | None = None
    mean_only_ns: float | None = None
    warmup: int = 0
    complete: bool = True
    note: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    attachments: dict[str, Path] = field(default_factory=dict)
    path: dict[str, Any] = field(default_factory=dict)
    budget: str = ""  # the path this row measures, judged against its latency budget (latlab.budgets.PATHS)

    @property
    def interrupted(self) -> bool:
        """Whether a Ctrl-C or SIGTERM cut this row short (its note says so): the run stops after it."""
        return not self.complete and "interrupted" in self.note

    @property
    def slug(self) -> str:
        """File-name stem for this result: group and engine, lower case, safe characters only."""
        return re.sub(r"[^a-z0-9.]+", "-", f"{self.group}-{self.engine}".lower()).strip("-")
