"""What a run creates on the host is claimed in its name, so that a run killed with SIGKILL can be cleaned up.

Each run writes /run/latlab/owners/<tag>.json (its pid and the pid's start time, so a reused pid is not
mistaken for the owner, and the namespaces it created). A normal exit removes the namespaces and the
claim. `sweep()` removes what belongs to runs whose owner is gone: every `latlab bench` calls it before it
starts, and `latlab clean` calls it on request (also for `latlab-*` namespaces that no live run claims).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

OWNERS = Path("/run/latlab/owners")
PREFIX = "latlab-"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _claim_file(tag: str) -> Path:
    return OWNERS / f"{tag}.json"


def _write(path: Path, data: dict) -> None:
    """The claim written whole (a reader never sees half of it)."""
    OWNERS.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def claim(tag: str, namespaces: list[str]) -> None:
    """Record that this process owns these namespaces (added to what the tag already claims)."""
    path = _claim_file(tag)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {"pid": os.getpid(), "start": _start_time(os.getpid()), "namespaces": []}
    data["namespaces"] = sorted(set(data["namespaces"]) | set(namespaces))
    _write(path, data)


def release(tag: str, namespaces: list[str]) -> None:
    """These namespaces were removed: drop them from the claim (and the claim when it is empty)."""
    path = _claim_file(tag)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    data["namespaces"] = sorted(set(data["namespaces"]) - set(namespaces))
    if data["namespaces"]:
        _write(path, data)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _alive(data: dict) -> bool:
    start = _start_time(int(data.get("pid", 0))) if data.get("pid") else None
    return start is not None and start == data.get("start")


def _namespaces_here() -> set[str]:
    try:
        return {p.name for p in Path("/run/netns").iterdir()}
    except OSError:
        return set()


def sweep(unclaimed: bool = False) -> list[str]:
    """Remove the namespaces of runs whose owner has died (and, with `unclaimed`, `latlab-*` namespaces
    that no live run claims); returns one line per run or namespace removed."""
    from latlab.topology import remove_namespaces

    removed: list[str] = []
    live: set[str] = set()
    here = _namespaces_here()
    for path in sorted(OWNERS.glob("*.json")) if OWNERS.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(data):
            live.update(data.get("namespaces", []))
            continue
        present = [n for n in data.get("namespaces", []) if n in here]
        remove_namespaces(present)
        here -= set(present)
        path.unlink(missing_ok=True)
        removed.append(f"run {path.stem} (pid {data.get('pid')}, gone): removed "
                       + (", ".join(present) if present else "nothing left"))
    if unclaimed:
        strays = sorted(n for n in here if n.startswith(PREFIX) and n not in live)
        remove_namespaces(strays)
        removed += [f"namespace {n} (no live run claims it): removed" for n in strays]
    return removed
