"""One folder per run: results/<run-id>/, files written atomically and never overwritten."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from latlab import hdr
from latlab.errors import LatlabError
from latlab.results import CaseResult

SUMMARY = "summary.json"
MANIFEST = "manifest.json"


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second, then 6 random hex digits."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: str) -> None:
    """Run ids are names, not paths: letters, digits, '.', '_' and '-', not starting with a dot."""
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise LatlabError(f"run id {run_id!r} is not a plain name (letters, digits, . _ -): run ids are not paths")


def write_new(path: Path, data: str | bytes) -> None:
    """Write a file atomically; refuse if it already exists (a run never overwrites anything)."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise LatlabError(f"{path} already exists; results are never overwritten") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


class RunRecord:
    """The folder of one run and the summary built up as cases finish."""

    def __init__(self, directory: Path, run_id: str, trials: int = 1) -> None:
        self.dir = directory
        self.run_id = run_id
        self.trials = trials
        self.cases: list[dict[str, Any]] = []
        self.started = time.time()

    @classmethod
    def create(cls, results_root: Path, run_id: str | None = None, trials: int = 1) -> RunRecord:
        """Make a fresh run folder; an explicit run id that exists is an error, a generated one retries."""
        if run_id is not None:
            check_run_id(run_id)
        try:
            results_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LatlabError(f"cannot create the results folder {results_root}: {exc.strerror}") from None
        for _ in range(20):
            rid = run_id or new_run_id()
            try:
                (results_root / rid).mkdir()
            except PermissionError:
                raise LatlabError(f"cannot write in the results folder {results_root}: permission denied "
                                  "(choose another with --results)") from None
            except FileExistsError:
                if run_id:
                    raise LatlabError(f"run {rid} already exists in {results_root}") from None
                time.sleep(0.01)
                continue
            return cls(results_root / rid, rid, trials)
        raise LatlabError(f"could not create a unique run folder in {results_root}")

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.dir / name
        write_new(path, json_text(obj))
        return path

    def write_text(self, name: str, text: str) -> Path:
        path = self.dir / name
        write_new(path, text)
        return path

    def add(self, result: CaseResult, hlog_interval_ns: int, benchmark: str = "", trial: int = 1) -> dict[str, Any]:
        """Write a result's .hgrm/.hlog files and add its entry to the summary; in a run of several trials the
        entry says which, and its files carry `-t<trial>` (attachments `t<trial>-`).

        The entry is listed before its files are written and each histogram's files are rendered before any
        is written, so an interrupt leaves either no file or a case marked `partial_files` naming what it has.
        """
        entry: dict[str, Any] = {
            "group": result.group, "engine": result.engine, "role": result.role, "metric": result.metric,
            "timestamps": result.timestamps, "warmup": result.warmup, "complete": result.complete,
            "note": result.note, "params": result.params, "figures": result.figures, "files": {},
            "path": result.path,
        }
        if result.budget:
            entry["budget"] = result.budget
        if benchmark:
            entry["benchmark"] = benchmark
        if self.trials > 1:
            entry["trial"] = trial
        self.cases.append(entry)
        try:
            self._write_case_files(result, entry, hlog_interval_ns, trial)
        except BaseException:
            entry["complete"] = False
            entry["partial_files"] = True
            entry["note"] = "; ".join(n for n in (entry["note"], "files partial: interrupted while writing") if n)
            raise
        return entry

    def _write_case_files(self, result: CaseResult, entry: dict[str, Any], hlog_interval_ns: int,
                          trial: int = 1) -> None:
        stem = result.slug if self.trials == 1 else f"{result.slug}-t{trial}"
        if result.samples_ns is not None and len(result.samples_ns):
            entry["stats_ns"] = self._write_histograms(stem, result, result.samples_ns, entry["files"],
                                                       hlog_interval_ns)
            if result.corrected_ns is not None:
                files: dict[str, str] = {}
                entry["corrected"] = {
                    "files": files,
                    "what": "coordinated-omission corrected: receive time minus intended send time",
                }
                entry["corrected"]["stats_ns"] = self._write_histograms(
                    stem + "-corrected", result, result.corrected_ns, files, hlog_interval_ns)
        elif result.mean_only_ns is not None:
            entry["stats_ns"] = {"mean": result.mean_only_ns}
        else:
            entry["stats_ns"] = {}
        for name, source in result.attachments.items():
            if source.exists():
                stored = name if self.trials == 1 else f"t{trial}-{name}"
                entry["files"][name] = self.write_text(stored, source.read_text(errors="replace")).name

    def _write_histograms(self, stem: str, result: CaseResult, values: Any, files: dict[str, str],
                          hlog_interval_ns: int) -> dict[str, float]:
        """Render the .hgrm (and the .hlog when samples have send times), then write them as a group."""
        hist = hdr.build_histogram(values)
        texts = {"hgrm": hdr.hgrm_text(hist)}
        times = result.send_ns if result.send_ns is not None else None
        if times is not None and len(times) == len(values):
            comment = f"latlab {self.run_id} {result.group} {result.engine} {result.metric} ns"
            texts["hlog"] = hdr.hlog_text(times, values, hlog_interval_ns, comment, self.started)
        stats = hdr.stats(hist)
        for kind, text in texts.items():
            files[kind] = self.write_text(f"{stem}.{kind}", text).name
        return stats

    def finish(self, complete: bool, reason: str = "", budgets: dict[str, Any] | None = None) -> Path:
        """Write summary.json: every case so far, whether the run completed, and (given) the latency budgets
        judged on them (latlab.budgets). Only the first call writes."""
        if (self.dir / SUMMARY).exists():
            return self.dir / SUMMARY
        all_complete = complete and all(c["complete"] for c in self.cases)
        return self.write_json(SUMMARY, {
            "run_id": self.run_id,
            "complete": all_complete,
            "incomplete_reason": reason if not complete else "",
            "started": self.started,
            "finished": time.time(),
            "trials": self.trials,
            "cases": self.cases,
            **({"budgets": budgets} if budgets is not None else {}),
        })
