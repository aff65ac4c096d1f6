"""`latlab hostprep check|apply|revert`: exit 0 ready, 2 not ready, 1 error."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hostprep.checks import Context
from hostprep.report import DEFAULT_STATE, apply, exit_code, render, revert, run_checks, to_json


def _context(args: argparse.Namespace) -> Context:
    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else []
    return Context(bench_cpus=cpus, nics=args.nic or [])


def _cmd(args: argparse.Namespace) -> int:
    ctx = _context(args)
    if args.action == "check":
        results = run_checks(ctx)
        print(json.dumps(to_json(results, ctx), indent=2) if args.json else render(results, ctx))
        return exit_code(results)
    code, message = apply(ctx, args.state, args.yes) if args.action == "apply" else revert(ctx, args.state)
    print(json.dumps({"exit_code": code, "message": message}) if args.json else message)
    return code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hostprep", help="check this host's latency readiness; apply or revert runtime tunings")
    p.add_argument("action", choices=("check", "apply", "revert"))
    p.add_argument("--cpus", help="benchmark CPUs, such as 2,3 (for isolation and IRQ checks)")
    p.add_argument("--nic", action="append", help="a NIC to check (repeatable)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--yes", action="store_true", help="apply: really change the runtime values")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where apply saves the previous values")
    p.set_defaults(func=_cmd)
