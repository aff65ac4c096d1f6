"""Run the checks, render them, apply and revert runtime tunings with the previous values saved in one file."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hostprep.checks import NOT_READY, READY, UNKNOWN, Check, Context, FileKnob, Result, all_checks

EXIT_READY, EXIT_ERROR, EXIT_NOT_READY = 0, 1, 2
DEFAULT_STATE = Path("/var/lib/latlab/hostprep-state.json")


def run_checks(ctx: Context, checks: list[Check] | None = None) -> list[Result]:
    out = []
    for check in checks or all_checks():
        try:
            out.append(check.check(ctx))
        except Exception as exc:
            out.append(Result(check.name, UNKNOWN, why=f"{type(exc).__name__}: {exc}", runtime=check.runtime))
    return out


def exit_code(results: list[Result]) -> int:
    return EXIT_NOT_READY if any(r.status in (NOT_READY, UNKNOWN) for r in results) else EXIT_READY


def cmdline_diff(results: list[Result], ctx: Context) -> list[str]:
    """Boot parameters to add (boot-time knobs are reported, never applied)."""
    have = ctx.cmdline()
    wanted = [p for r in results if r.status == NOT_READY for p in r.cmdline]
    return sorted({p for p in wanted if have.get(p.partition("=")[0]) != p.partition("=")[2]})


def render(results: list[Result], ctx: Context) -> str:
    width = max(len(r.name) for r in results)
    lines = [f"{'check':<{width}}  {'status':<14}  {'now':<34}  target / why"]
    for r in results:
        status = f"unknown: {r.why}" if r.status == UNKNOWN else r.status
        tail = r.target if r.status == READY else "; ".join(x for x in (r.target, r.why) if x)
        if r.runtime and r.status == NOT_READY:
            tail += "  [runtime: `latlab hostprep apply --yes`]"
        lines.append(f"{r.name:<{width}}  {status if r.status != UNKNOWN else 'unknown':<14}  {r.value[:34]:<34}  "
                     f"{tail if r.status != UNKNOWN else status}")
    diff = cmdline_diff(results, ctx)
    if diff:
        lines.append("")
        lines.append("boot-time items, not applied — kernel command line to add: " + " ".join(diff))
    counts = {s: sum(r.status == s for r in results) for s in (READY, NOT_READY, UNKNOWN)}
    lines.append(f"\n{counts[READY]} ready, {counts[NOT_READY]} not ready, {counts[UNKNOWN]} unknown, "
                 f"{len(results) - sum(counts.values())} not applicable")
    return "\n".join(lines)


def to_json(results: list[Result], ctx: Context) -> dict[str, Any]:
    return {"checks": [asdict(r) for r in results], "cmdline_diff": cmdline_diff(results, ctx),
            "exit_code": exit_code(results)}


def apply(ctx: Context, state_file: Path, yes: bool) -> tuple[int, str]:
    """Write every not-ready runtime knob's target, saving the old values; without `yes`, say what would change."""
    if yes and state_file.exists():
        return EXIT_ERROR, f"{state_file} holds an earlier apply: run `latlab hostprep revert` first"
    knobs = [c for c in all_checks() if isinstance(c, FileKnob)]
    todo = [(k, r) for k in knobs if (r := k.check(ctx)).status == NOT_READY]
    if not todo:
        return EXIT_READY, "nothing to apply: every runtime item is ready or not applicable"
    plan = "\n".join(f"  {k.name}: {r.value} -> {r.target}" for k, r in todo)
    if not yes:
        return EXIT_ERROR, f"would change (nothing changed; add --yes to apply):\n{plan}"
    saved: dict[str, dict[str, str]] = {}
    try:
        for knob, result in todo:
            saved[knob.name] = {"path": knob.path, "old": result.value}
            knob.write(ctx, knob.target)
    except OSError as exc:
        _restore(ctx, knobs, saved)
        return EXIT_ERROR, f"could not write {knob.path}: {exc}; everything applied so far was restored"
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved, indent=2))
    os.replace(tmp, state_file)
    return EXIT_READY, f"applied (previous values saved in {state_file}):\n{plan}"


def _restore(ctx: Context, knobs: list[FileKnob], saved: dict[str, dict[str, str]]) -> list[str]:
    by_name = {k.name: k for k in knobs}
    errors = []
    for name, entry in saved.items():
        try:
            by_name[name].write(ctx, entry["old"])
        except (OSError, KeyError) as exc:
            errors.append(f"{name}: {exc}")
    return errors


def revert(ctx: Context, state_file: Path) -> tuple[int, str]:
    """Restore the values saved by apply, then remove the state file."""
    if not state_file.exists():
        return EXIT_ERROR, f"no saved state at {state_file}: nothing to revert, nothing changed"
    saved = json.loads(state_file.read_text())
    knobs = [c for c in all_checks() if isinstance(c, FileKnob)]
    errors = _restore(ctx, knobs, saved)
    if errors:
        return EXIT_ERROR, "could not restore: " + "; ".join(errors) + f" (state kept in {state_file})"
    state_file.unlink()
    return EXIT_READY, "restored: " + ", ".join(f"{n}={e['old']}" for n, e in saved.items())


def manifest_section() -> dict[str, Any]:
    """The check report every run's manifest embeds."""
    ctx = Context(bench_cpus=[])
    return to_json(run_checks(ctx), ctx)
