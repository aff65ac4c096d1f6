"""The `latlab` command. Benchmark packages add subcommands through the `latlab.commands` entry points."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from importlib import metadata
from pathlib import Path

from latlab import __version__
from latlab.errors import LatlabError
from latlab.signals import catch_ctrl_c

# Exit codes, the same for every command: 0 done, 1 an error before or outside the measurement (config, lab,
# files), 2 a report of problems found (hostprep not ready, replay errors), 3 a run whose cases did not all
# complete, 4 a comparison found a regression beyond --fail-on-regression, 130 interrupted.
EXIT_CASES = 3
EXIT_REGRESSION = 4
DEFAULT_CONFIG = Path("configs/bench.yaml")
DEFAULT_RESULTS = Path("results")


def _cmd_bench(args: argparse.Namespace) -> int:
    from latlab.bench import run_bench

    if args.list:
        return _list_cases(args)
    if args.vm:
        from latlab.vm_bench import print_run, run_bench_in_vm

        try:
            run_dir, code = run_bench_in_vm(args.config, args.results, only=args.only, run_id=args.run_id,
                                            timeout_s=args.vm_timeout, trials=args.trials)
        except KeyboardInterrupt:
            _ignore_further_interrupts()
            print("latlab: interrupted; the VM was stopped, what it measured is kept", file=sys.stderr)
            return 130
        print_run(run_dir)
        return code if code else cases_exit_code(run_dir)
    try:
        run_dir = run_bench(args.config, args.results, local=args.local, only=args.only, run_id=args.run_id,
                            argv=sys.argv, trials=args.trials)
    except KeyboardInterrupt:
        _ignore_further_interrupts()
        print("latlab: interrupted; what was measured is kept and the run is marked incomplete",
              file=sys.stderr)
        return 130
    return cases_exit_code(run_dir)


def _trials(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 100:
        raise argparse.ArgumentTypeError(f"--trials wants a whole number from 1 to 100, not {text!r}")
    return n


def _ignore_further_interrupts() -> None:
    """The run is over and recorded: a second SIGINT (a key pressed twice, or the re-delivery of one that landed
    in a fork hook) must not turn exit code 130 into death by signal on the way out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _list_cases(args: argparse.Namespace) -> int:
    """Each case the config would run, the module that produces its samples, where its timestamps are taken."""
    import textwrap

    from latlab.bench import plan
    from latlab.config import load_config

    bench_plan = plan(load_config(args.config), args.only)
    for bench, params in bench_plan.benchmarks:
        print(f"{bench.name}:")
        for case in bench.cases(params):
            print(f"  {case.title}")
            print(f"      samples from: {getattr(case, 'producer', type(case).__module__)}")
            stamps = getattr(case, "timestamps", "") or "(none: this case measures nothing)"
            print(textwrap.fill(stamps, 110, initial_indent="      timestamps:   ", subsequent_indent=" " * 20))
    return 0


def cases_exit_code(run_dir: Path) -> int:
    """EXIT_CASES when a case of the run failed or is incomplete (naming them), else 0."""
    from latlab.report import load_summary

    bad = [c for c in load_summary(run_dir)["cases"] if not c.get("complete", True)]
    if not bad:
        return 0
    names = "; ".join(f"{c['group']} {c['engine']}" for c in bad[:5]) + (" …" if len(bad) > 5 else "")
    print(f"latlab: {len(bad)} case(s) failed or incomplete: {names}", file=sys.stderr)
    return EXIT_CASES


def _cmd_report(args: argparse.Namespace) -> int:
    import json

    from latlab import compact
    from latlab.report import load_summary, render, render_matrix, resolve_run

    runs = [resolve_run(r, args.results) for r in args.runs or ["latest"]]
    summaries = [load_summary(r) for r in runs]
    if args.html:
        from latlab.html_report import write_for_run

        for run in runs:
            print(write_for_run(run))
    elif args.json:
        print(json.dumps([row for s in summaries for row in compact.rows(s)], indent=1))
    elif args.csv:
        print("".join(compact.render_csv(s) for s in summaries), end="")
    elif args.wide:
        print(render(summaries))
        for summary in summaries:
            print(render_matrix(summary), end="")
    else:
        for run, summary in zip(runs, summaries, strict=True):
            print(compact.render(summary, run))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from latlab.compare import compare_runs, regressions, render
    from latlab.report import resolve_run

    run_a, run_b = resolve_run(args.run_a, args.results), resolve_run(args.run_b, args.results)
    rows = compare_runs(run_a, run_b, threshold=args.threshold)
    print(render(rows, run_a, run_b, args.threshold), end="")
    if args.fail_on_regression is not None:
        worse = regressions(rows, args.fail_on_regression)
        if worse:
            names = "; ".join(f"{r.group} {r.engine} p50 {r.changes[0].percent:+.1f}%" for r in worse)
            print(f"latlab: regression beyond {args.fail_on_regression:g}%: {names}", file=sys.stderr)
            return EXIT_REGRESSION
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    from latlab import leftovers

    removed = leftovers.sweep(unclaimed=args.all)
    print("\n".join(removed) if removed else "latlab clean: nothing left behind by dead runs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latlab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"latlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="build the lab, run the configured benchmarks, print the table")
    bench.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="YAML config (default %(default)s)")
    bench.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results root (default %(default)s)")
    bench.add_argument("--local", action="store_true",
                       help="no namespaces: both hosts on loopback in this namespace (no root needed)")
    bench.add_argument("--only", action="append", help="run only this benchmark section (repeatable)")
    bench.add_argument("--run-id", help="name the run folder (must not exist)")
    bench.add_argument("--trials", type=_trials, default=1, metavar="N",
                       help="run every case N times, interleaved (case A, B, …, then A, B, … again); the report "
                            "gives each case's p50 across the trials with its range (default 1)")
    bench.add_argument("--vm", action="store_true",
                       help="run inside one boot of the lab VM (Debian's kernel under qemu): Onload, soft-RoCE")
    bench.add_argument("--list", action="store_true",
                       help="print each case, the module that produces its samples and where its timestamps are "
                            "taken; run nothing")
    bench.add_argument("--vm-timeout", type=float, default=1500.0, help="seconds the VM may take (default %(default)s)")
    bench.set_defaults(func=_cmd_bench)

    report = sub.add_parser("report", help="print the report of one or several runs (fits the terminal)")
    report.add_argument("runs", nargs="*", help="run folders or ids (default: the newest)")
    form = report.add_mutually_exclusive_group()
    form.add_argument("--wide", action="store_true", help="every column, one table for all runs (about 200 wide)")
    form.add_argument("--json", action="store_true", help="one object per case, for machines")
    form.add_argument("--csv", action="store_true", help="one line per case, for spreadsheets")
    form.add_argument("--html", action="store_true",
                      help="write report.html into each run folder that has none (runs write theirs when they end)")
    report.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    report.set_defaults(func=_cmd_report)

    compare = sub.add_parser("compare", help="is run B faster than run A? the change per case, with a verdict")
    compare.add_argument("run_a", help="the baseline run (folder, id or latest)")
    compare.add_argument("run_b", help="the run to judge against it")
    compare.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    compare.add_argument("--threshold", type=float, default=5.0,
                         help="smallest change in %% that earns a verdict (default %(default)s)")
    compare.add_argument("--fail-on-regression", type=float, metavar="PCT",
                         help="exit 4 when a case's p50 is slower by more than PCT %% beyond doubt")
    compare.set_defaults(func=_cmd_compare)

    clean = sub.add_parser("clean", help="remove what killed runs left behind (their namespaces)")
    clean.add_argument("--all", action="store_true",
                       help="also latlab-* namespaces that no live run claims (left by older versions)")
    clean.set_defaults(func=_cmd_clean)

    from latlab import multihost

    multihost.register(sub)
    for ep in metadata.entry_points(group="latlab.commands"):
        ep.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `latlab` script."""
    catch_ctrl_c()  # Ctrl-C means "stop, keep what was measured"
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LatlabError as exc:
        print(f"latlab: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `latlab report | head`: the reader has what it wanted. Point stdout at /dev/null so that Python's
        # final flush does not fail again, and end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
