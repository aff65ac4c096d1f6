"""`latlab merge-run`: build one run folder from results collected on several hosts (ansible/bench.yml).

The collect folder holds, per host, sample files and `case-*.json` descriptors:
  {"group": "udp 64B busy-poll", "engine": "latlab", "role": "own", "metric": "RTT", "timestamps": "...",
   "format": "npz" | "sockperf-full-log", "file": "udp.npz", "key": "rtt_ns", "send_key": "send_ns",
   "params": {...}, "status": {...}}
and optionally `hostprep.json` (the host's `latlab hostprep check --json`) and `facts.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from latlab import __version__, compact
from latlab.errors import LatlabError
from latlab.manifest import git_commit, package_versions
from latlab.results import CaseResult
from latlab.runrecord import RunRecord


def _result(host_dir: Path, desc: dict[str, Any]) -> CaseResult:
    path = host_dir / desc["file"]
    samples = send = None
    note = desc.get("note", "")
    complete = desc.get("status", {}).get("status", "ok") == "ok"
    if desc.get("role") == "skipped" or desc.get("drop_samples"):
        # a stack that could not run on the host, or ran without evidence that it carried the traffic: no figures
        return CaseResult(group=desc["group"], engine=desc["engine"], role=desc.get("role", "own"),
                          metric=desc.get("metric", "RTT"), timestamps=desc.get("timestamps", ""),
                          complete=desc.get("role") == "skipped", note=note,
                          params={**desc.get("params", {}), "host": host_dir.name})
    if not path.exists():
        complete, note = False, f"{path.name} was not collected from {host_dir.name}"
    elif desc.get("format") == "sockperf-full-log":
        from latlab.reference.sockperf import parse_full_log

        full = parse_full_log(path)
        samples, send = full.rtt_ns, full.send_ns
    else:
        data = np.load(path)
        samples = data[desc.get("key", "rtt_ns")]
        send = data[desc["send_key"]] if desc.get("send_key") in data else None
    return CaseResult(group=desc["group"], engine=desc["engine"], role=desc.get("role", "own"),
                      metric=desc.get("metric", "RTT"), timestamps=desc.get("timestamps", ""), samples_ns=samples,
                      send_ns=send, warmup=int(desc.get("status", {}).get("warmup", 0)), complete=complete,
                      note=note, params={**desc.get("params", {}), "host": host_dir.name})


def merge(collect: Path, results_root: Path, run_id: str | None, hlog_interval_ns: int = 250_000_000) -> Path:
    """Assemble the run; returns its folder."""
    hosts = sorted(p for p in collect.iterdir() if p.is_dir()) if collect.is_dir() else []
    if not hosts:
        raise LatlabError(f"nothing collected in {collect}")
    record = RunRecord.create(results_root, run_id)
    manifest: dict[str, Any] = {"run_id": record.run_id, "latlab_version": __version__, "kind": "multi-host (ansible)",
                                "controller": {"git": git_commit(Path.cwd()), "tools": package_versions()},
                                "hosts": {}}
    results = []
    for host_dir in hosts:
        entry: dict[str, Any] = {}
        for name in ("facts", "hostprep"):
            f = host_dir / f"{name}.json"
            if f.exists():
                entry[name] = json.loads(f.read_text())
        manifest["hosts"][host_dir.name] = entry
        for desc_file in sorted(host_dir.glob("case-*.json")):
            results.append(_result(host_dir, json.loads(desc_file.read_text())))
    record.write_json("manifest.json", manifest)
    for r in results:
        record.add(r, hlog_interval_ns, benchmark="pingpong")  # bench.yml runs the ping-pong stacks
    record.finish(complete=bool(results), reason="" if results else "no case descriptors were collected")
    return record.dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge-run", help="build one run folder from results collected on several hosts")
    p.add_argument("collect", type=Path, help="folder with one subfolder per host")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--run-id")

    def run(args: argparse.Namespace) -> int:
        folder = merge(args.collect, args.results, args.run_id)
        compact.print_run(folder)
        return 0

    p.set_defaults(func=run)


