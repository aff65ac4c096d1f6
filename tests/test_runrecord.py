"""Run folders: unique sortable ids, atomic writes, never an overwrite, incomplete runs said so."""

from __future__ import annotations

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
