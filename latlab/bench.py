"""`latlab bench`: validate the config, build the lab, run every configured benchmark, record, report."""

from __future__ import annotations

import contextlib
import difflib
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from latlab import budgets, compact
from latlab.budgets import BudgetsConfig
from latlab.config import Schema, load_config, validate
from latlab.errors import ConfigError, LabUnavailable, LatlabError
from latlab.manifest import build_manifest
from latlab.plugin import Benchmark, RunContext, load_benchmarks, manifest_sections
from latlab.progress import CaseProgress, progress_enabled
from latlab.results import CaseResult
from latlab.runrecord import RunRecord
from latlab.signals import raise_interrupt
from latlab.topology import (
    TWO_HOST,
    Lab,
    LabConfig,
    LabSpec,
    local_lab,
    netns_unavailable_reason,
    no_lab,
    parse_lab,
    two_host_lab,
)

CORE_SECTIONS = {"lab", "results", "budgets"}


@dataclass
class BenchPlan:
    """A validated configuration: nothing has started when this exists."""

    config: dict[str, Any]
    lab: LabSpec
    hlog_interval_ns: int
    benchmarks: list[tuple[Benchmark, Any]]
    budgets: BudgetsConfig = field(default_factory=BudgetsConfig)

    @property
    def two_host_users(self) -> list[str]:
        """The selected benchmarks that run on the core's a/b lab (the others build their own path)."""
        return [bench.name for bench, _ in self.benchmarks if lab_of(bench) == TWO_HOST]


def lab_of(bench: Benchmark) -> str:
    """The lab a benchmark declares: TWO_HOST (the default) or OWN."""
    return getattr(bench, "lab", TWO_HOST)


class ResultsConfig(Schema):
    """The `results` section."""

    hlog_interval_s: Annotated[float, Field(ge=0.001, le=3600)] = 0.25  # one interval histogram per this long


def check_sections(config: dict[str, Any]) -> dict[str, Benchmark]:
    """Every section checked against its schema (types, bounds, unknown keys) without looking at this host:
    what a config asks of the machine (a stack's presence, a CPU) is checked by `plan` where it runs. Returns
    the installed benchmarks."""
    known = load_benchmarks()
    for key in config:
        if key not in CORE_SECTIONS and key not in known:
            near = difflib.get_close_matches(str(key), [*CORE_SECTIONS, *known], n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ConfigError(str(key), f"unknown section; {hint}benchmarks installed: {', '.join(sorted(known))}")
    validate(LabConfig, config.get("lab"), "lab")
    validate(ResultsConfig, config.get("results"), "results")
    validate(BudgetsConfig, config.get("budgets"), "budgets")
    for name, bench in known.items():
        if name in config:
            validate(bench.schema, config[name], name)
    return known


def plan(config: dict[str, Any], only: list[str] | None = None) -> BenchPlan:
    """Validate every section (core and benchmarks) before anything starts."""
    known = check_sections(config)
    lab = parse_lab(config.get("lab"))
    interval_ns = int(validate(ResultsConfig, config.get("results"), "results").hlog_interval_s * 1e9)
    selected = []
    for name, bench in sorted(known.items()):
        if name not in config or (only and name not in only):
            continue
        selected.append((bench, bench.configure(config[name])))
    if only:
        missing = [o for o in only if o not in config]
        if missing:
            raise ConfigError(missing[0], "not configured in this config file")
    if not selected:
        raise ConfigError("(top level)", f"no benchmark configured; known: {', '.join(sorted(known))}")
    return BenchPlan(config=config, lab=lab, hlog_interval_ns=interval_ns, benchmarks=selected,
                     budgets=validate(BudgetsConfig, config.get("budgets"), "budgets"))


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM ends the run like Ctrl-C does: results kept, run marked incomplete, lab removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM while the run's last files are written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_bench(config_path: Path, results_root: Path, *, local: bool = False, only: list[str] | None = None,
              run_id: str | None = None, repo: Path | None = None, argv: list[str] | None = None,
              trials: int = 1) -> Path:
    """Run the configured benchmarks (every case `trials` times, interleaved); returns the run folder. Prints the
    report at the end."""
    bench_plan = plan(load_config(config_path), only)
    reason = None if local else netns_unavailable_reason()
    if reason:
        raise LabUnavailable(f"{reason}; run with --local to use loopback in one namespace instead")
    if not local:
        from latlab import leftovers

        for line in leftovers.sweep():  # what runs killed with SIGKILL left behind
            print(f"latlab: {line}", file=sys.stderr)
    record = RunRecord.create(results_root, run_id, trials=trials)
    tag = record.run_id[-6:]
    if not bench_plan.two_host_users:
        lab_cm = no_lab()
    else:
        lab_cm = local_lab(bench_plan.lab) if local else two_host_lab(bench_plan.lab, tag)
    interrupted_reason = ""
    stop = threading.Event()
    owner = os.getpid()
    try:
        with sigterm_as_interrupt(), lab_cm as lab, tempfile.TemporaryDirectory(prefix="latlab-") as tmp:
            _write_manifest(record, lab, bench_plan, repo or Path.cwd(), argv or sys.argv)
            ctx = RunContext(lab=lab, workdir=Path(tmp), stop=stop, quiet=not progress_enabled(), tag=tag)
            with ctx.resources:
                interrupted_reason = _run_cases(bench_plan, ctx, record)
    except KeyboardInterrupt:
        interrupted_reason = "interrupted (Ctrl-C or SIGTERM)"
    finally:
        if os.getpid() != owner:
            os._exit(1)  # a forked helper (pyroute2's) unwinding a copy of this frame must not touch the run
        stop.set()
        with _signals_held():  # a second Ctrl-C must not cut the summary short
            record.finish(complete=not interrupted_reason, reason=interrupted_reason,
                          budgets=budgets.judge(record.cases, bench_plan.budgets))
    compact.print_run(record.dir)
    if interrupted_reason:
        raise KeyboardInterrupt
    return record.dir


def _write_manifest(record: RunRecord, lab: Lab, bench_plan: BenchPlan, repo: Path, argv: list[str]) -> None:
    versions: dict[str, str] = {}
    for bench, _ in bench_plan.benchmarks:
        versions.update(bench.tool_versions())
    extra = {}
    for name, provide in manifest_sections().items():
        try:
            extra[name] = provide()
        except Exception as exc:  # a broken section must not stop the run; the manifest says why
            extra[name] = {"error": f"unknown: {exc}"}
    manifest = build_manifest(run_id=record.run_id, lab=lab, config=bench_plan.config, tool_versions=versions,
                              repo=repo, argv=argv, extra=extra)
    manifest["lab"]["used_by"] = bench_plan.two_host_users
    record.write_json("manifest.json", manifest)


def _trial_context(ctx: RunContext, trial: int, trials: int) -> RunContext:
    """The context of one trial: a scratch folder of its own, so a trial neither reads nor overwrites the state an
    earlier trial left (a trader's order store, an exchange's records)."""
    if trials == 1:
        return ctx
    workdir = ctx.workdir / f"trial-{trial}"
    workdir.mkdir(exist_ok=True)
    return replace(ctx, workdir=workdir)


def _run_cases(bench_plan: BenchPlan, ctx: RunContext, record: RunRecord) -> str:
    """Run every case, record.trials times over: the whole list each time, so that a drift of the host spreads over
    every case alike, and backwards in every second trial (A B, B A, A B ...), so that no case always runs first
    of its neighbours (latlab's engine always just before sockperf, say). A KeyboardInterrupt propagates after
    the partial result is recorded."""
    cases = [(bench, case) for bench, params in bench_plan.benchmarks for case in bench.cases(params)]
    order = [(t, bc) for t in range(1, record.trials + 1) for bc in (cases if t % 2 else cases[::-1])]
    with CaseProgress(enabled=not ctx.quiet) as progress:
        for trial, (bench, case) in order:
            title = case.title if record.trials == 1 else f"{case.title} (trial {trial}/{record.trials})"
            with progress.case(title, case.expected_seconds):
                try:
                    results = case.run(_trial_context(ctx, trial, record.trials))
                except KeyboardInterrupt:
                    # interrupted before the case could say what it measured: the run still names it
                    record.add(CaseResult(group=case.title, engine="-", role="interrupted", metric="",
                                          timestamps="", complete=False, note="incomplete: interrupted"),
                               bench_plan.hlog_interval_ns, benchmark=bench.name, trial=trial)
                    raise
                except Exception as exc:
                    # One broken case must not cost the others: it gets a row saying why.
                    if not isinstance(exc, LatlabError):
                        print(traceback.format_exc(), file=sys.stderr)
                    print(f"latlab: {case.title}: {exc}", file=sys.stderr)
                    results = [CaseResult(group=case.title, engine="-", role="failed", metric="",
                                          timestamps="", complete=False, note=f"failed: {exc}")]
            for result in results:
                if not result.path and lab_of(bench) == TWO_HOST:
                    result.path = ctx.lab.describe()
                record.add(result, bench_plan.hlog_interval_ns, benchmark=bench.name, trial=trial)
            if any(r.interrupted for r in results):
                raise KeyboardInterrupt
    return ""
