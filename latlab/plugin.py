"""How benchmark packages plug into the core: the `latlab.benchmarks` entry-point group.

A benchmark is an object with a `name` (its config section), `configure(section)` that validates the
section's YAML data against the benchmark's Schema before anything starts, `cases(params)` listing what to
run, and `tool_versions()` for the manifest; `SectionBenchmark` declares one as data. A case has a `title`, an
`expected_seconds` for the progress bar, and `run(ctx)` returning CaseResults. Other packages add manifest
sections through the `latlab.manifest` group: callables returning a JSON-able value.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from latlab.config import Schema
from latlab.results import CaseResult
from latlab.topology import Lab


@dataclass
class RunContext:
    """What a running case may use: the lab, a scratch folder for logs, and the stop flag.

    `resources` holds what a case sets up once for the whole run (kernel modules a stack loads, say): the
    core closes it when the last case has run, before the lab goes, also after Ctrl-C.
    """

    lab: Lab
    workdir: Path
    stop: threading.Event
    quiet: bool
    tag: str = "000000"  # the run's short id: names of namespaces and tables a case creates
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


class Case(Protocol):
    title: str
    expected_seconds: float

    def run(self, ctx: RunContext) -> list[CaseResult]: ...


class Benchmark(Protocol):
    name: str
    schema: type[Schema]  # its config section, declared once

    def configure(self, section: Mapping[str, Any] | None) -> Any: ...

    def cases(self, params: Any) -> list[Case]: ...

    def tool_versions(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class SectionBenchmark:
    """A benchmark declared as data: its section's `name` and `schema`, the lab it needs (latlab.topology's
    TWO_HOST or OWN), the function turning its section into run parameters, the one listing its cases, the one
    giving its tools' versions, and (optional) what it prepares before a lab VM boots."""

    name: str
    schema: type[Schema]
    lab: str
    configure: Callable[[Mapping[str, Any] | None], Any]
    cases: Callable[[Any], list[Any]]
    tool_versions: Callable[[], dict[str, str]] = dict
    prepare_vm: Callable[..., Any] | None = None


def load_benchmarks() -> dict[str, Benchmark]:
    """Every installed benchmark, by config section name."""
    found: dict[str, Benchmark] = {}
    for ep in metadata.entry_points(group="latlab.benchmarks"):
        bench = ep.load()
        found[bench.name] = bench
    return found


def manifest_sections() -> dict[str, Callable[[], Any]]:
    """Extra manifest sections contributed by installed packages (such as the hostprep report)."""
    return {ep.name: ep.load() for ep in metadata.entry_points(group="latlab.manifest")}
