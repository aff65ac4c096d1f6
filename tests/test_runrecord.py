"""Run folders: unique sortable ids, atomic writes, never an overwrite, incomplete runs said so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latlab.errors import LatlabError
from latlab.report import load_summary, render
from latlab.results import RTT, CaseResult
from latlab.runrecord import RunRecord, new_run_id, write_new


def test_run_ids_sort_by_time_and_are_unique():
    ids = [new_run_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(len(i) == len("20261121T143732Z-617dc2") for i in ids)
    assert sorted(ids)[0][:16] <= sorted(ids)[-1][:16]


def test_create_never_reuses_a_folder(tmp_path):
    a = RunRecord.create(tmp_path)
    b = RunRecord.create(tmp_path)
    assert a.dir != b.dir
    with pytest.raises(LatlabError, match="already exists"):
        RunRecord.create(tmp_path, a.run_id)


def test_write_new_refuses_to_overwrite_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "x.json"
    write_new(target, "first")
    with pytest.raises(LatlabError, match="never overwritten"):
        write_new(target, "second")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def _result(**kw) -> CaseResult:
    base = {"group": "udp 64B busy-poll", "engine": "latlab", "role": "own", "metric": RTT, "timestamps": "t"}
    return CaseResult(**{**base, **kw})


def test_incomplete_results_mark_the_run_and_the_table(tmp_path):
    rec = RunRecord.create(tmp_path)
    samples = np.arange(1000, 2000, dtype=np.int64)
    rec.add(_result(samples_ns=samples, send_ns=np.arange(1000, dtype=np.int64) * 1000), 100_000)
    rec.add(_result(engine="sockperf", role="reference", samples_ns=samples * 2, complete=False,
                    note="incomplete: interrupted"), 100_000)
    rec.finish(complete=True)
    summary = load_summary(rec.dir)
    assert summary["complete"] is False
    files = {p.name for p in rec.dir.iterdir()}
    assert {"udp-64b-busy-poll-latlab.hgrm", "udp-64b-busy-poll-latlab.hlog", "summary.json"} <= files
    table = render([summary])
    assert "(run incomplete)" in table and "incomplete: interrupted" in table
    assert "latlab/sockperf" in table and "0.50" in table  # own ÷ reference: half


def test_a_run_killed_before_its_summary_reads_as_incomplete(tmp_path):
    rec = RunRecord.create(tmp_path)
    rec.write_json("manifest.json", {})
    summary = load_summary(rec.dir)
    assert summary["complete"] is False and "killed" in summary["incomplete_reason"]


def test_run_ids_are_names_not_paths(tmp_path):
    from latlab.errors import LatlabError
    from latlab.runrecord import RunRecord

    root = tmp_path / "results"
    for bad in ("../../x", "/abs", "a/b", ".hidden", "..", ""):
        with pytest.raises(LatlabError, match="not a plain name"):
            RunRecord.create(root, bad)
    assert not (tmp_path / "x").exists() and not root.exists()
    assert RunRecord.create(root, "nightly-2026.12.02_a").dir == root / "nightly-2026.12.02_a"


def test_an_unwritable_results_folder_is_named(tmp_path, monkeypatch):
    from latlab.errors import LatlabError
    from latlab.runrecord import RunRecord

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(LatlabError, match=f"cannot create the results folder {tmp_path / 'r'}"):
        RunRecord.create(tmp_path / "r")


def test_a_corrupt_summary_is_named_by_report(tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run1"
    run.mkdir()
    (run / "summary.json").write_text('{"cases": [')
    out = subprocess.run([sys.executable, "-m", "latlab.cli", "report", str(run)], capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"{run / 'summary.json'} is not a readable summary" in out.stderr


def test_a_run_with_a_failed_case_exits_3(tmp_path):
    from latlab.cli import EXIT_CASES, cases_exit_code

    record = RunRecord.create(tmp_path, "r1")
    ok = CaseResult(group="udp 64B busy-poll", engine="latlab", role="own", metric=RTT, timestamps="t",
                    samples_ns=np.arange(1, 50))
    record.add(ok, 250_000_000)
    record.finish(complete=True)
    assert cases_exit_code(record.dir) == 0
    record = RunRecord.create(tmp_path, "r2")
    record.add(ok, 250_000_000)
    record.add(CaseResult(group="dpdk: udp 64B busy-poll", engine="latlab", role="own", metric=RTT, timestamps="t",
                          complete=False, note="failed: testpmd exited 1"), 250_000_000)
    record.finish(complete=True)
    assert cases_exit_code(record.dir) == EXIT_CASES == 3


def _timed(**kw) -> CaseResult:
    return _result(samples_ns=np.arange(1000, 2000, dtype=np.int64),
                   send_ns=np.arange(1000, dtype=np.int64) * 1000, **kw)


def test_an_interrupt_while_rendering_leaves_no_lone_hgrm_and_the_case_listed(tmp_path, monkeypatch):
    from latlab import hdr

    rec = RunRecord.create(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hdr, "hlog_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rec.add(_timed(), 100_000)
    rec.finish(complete=False, reason="interrupted")
    assert not list(rec.dir.glob("*.hgrm"))  # rendered before written: no .hgrm without its .hlog
    [case] = load_summary(rec.dir)["cases"]
    assert case["partial_files"] and not case["complete"] and "files partial" in case["note"]


def test_an_interrupt_between_a_cases_files_marks_it_partial_naming_what_it_has(tmp_path, monkeypatch):
    from latlab import runrecord

    rec = RunRecord.create(tmp_path)
    real = runrecord.write_new

    def second_write_interrupted(path, data):
        if path.suffix == ".hlog":
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(runrecord, "write_new", second_write_interrupted)
    with pytest.raises(KeyboardInterrupt):
        rec.add(_timed(), 100_000)
    monkeypatch.setattr(runrecord, "write_new", real)
    rec.finish(complete=False, reason="interrupted")
    [case] = load_summary(rec.dir)["cases"]
    assert case["partial_files"] and case["files"] == {"hgrm": "udp-64b-busy-poll-latlab.hgrm"}
    assert {p.name for p in rec.dir.glob("*.h*")} == {"udp-64b-busy-poll-latlab.hgrm"}
    assert "(run incomplete)" in render([load_summary(rec.dir)])
