"""`latlab compare`: a known 10 % shift is found with its interval, no shift gives no verdict, bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latlab import cli
from latlab.compare import bootstrap_change, compare_runs, read_distribution
from latlab.errors import LatlabError
from latlab.results import RTT, CaseResult
from latlab.runrecord import RunRecord


def _run(root: Path, samples: dict[str, np.ndarray], version: str = "0.1.0") -> Path:
    rec = RunRecord.create(root)
    rec.write_json("manifest.json", {"latlab_version": version})
    for group, values in samples.items():
        rec.add(CaseResult(group=group, engine="latlab", role="own", metric=RTT, timestamps="t", samples_ns=values,
                           send_ns=np.arange(len(values), dtype=np.int64) * 10_000), 250_000_000)
    rec.finish(complete=True)
    return rec.dir


def _latency(seed: int, n: int = 20_000, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (scale * (20_000 + rng.lognormal(8.0, 0.6, n))).astype(np.int64)


def test_a_known_ten_percent_shift_is_found_and_no_shift_is_no_verdict(tmp_path):
    a = _run(tmp_path, {"udp 64B": _latency(1), "tcp 64B": _latency(2)})
    b = _run(tmp_path, {"udp 64B": _latency(3, scale=1.10), "tcp 64B": _latency(4)})
    rows = {r.group: r for r in compare_runs(a, b)}
    shifted, same = rows["udp 64B"], rows["tcp 64B"]
    p50 = shifted.changes[0]
    assert shifted.verdict == "slower" and p50.low < 10.0 < p50.high and 8 < p50.percent < 12
    assert same.verdict == "no significant change" and same.changes[0].low < 0 < same.changes[0].high
    faster = {r.group: r for r in compare_runs(b, a)}["udp 64B"]
    assert faster.verdict == "faster"


def test_the_interval_covers_the_truth_about_as_often_as_it_says(tmp_path):
    """95 % intervals on 40 pairs of independent samples of one distribution: zero inside about 95 % of them."""
    from latlab.compare import Distribution

    def dist(seed: int) -> Distribution:
        values, counts = np.unique(_latency(seed, n=4000) // 100 * 100, return_counts=True)
        return Distribution(values, counts)

    covered = sum(1 for k in range(40) if (lambda c: c[1] <= 0 <= c[2])(
        bootstrap_change(dist(100 + k), dist(200 + k), 50, resamples=400, seed=k)))
    assert covered >= 34  # 95 % of 40 is 38; binomial noise allows a few less


def test_regression_gate_exits_4_and_names_the_case(tmp_path, capsys):
    a = _run(tmp_path, {"udp 64B": _latency(1)})
    b = _run(tmp_path, {"udp 64B": _latency(3, scale=1.10)})
    assert cli.main(["compare", str(a), str(b), "--fail-on-regression", "5"]) == cli.EXIT_REGRESSION
    assert "regression beyond 5%: udp 64B latlab p50 +" in capsys.readouterr().err
    assert cli.main(["compare", str(a), str(b), "--fail-on-regression", "20"]) == 0
    out = capsys.readouterr().out
    assert "udp 64B · latlab" in out and "slower" in out and "[+" in out


def test_no_common_case_another_version_or_a_missing_run_is_a_clear_error(tmp_path, capsys):
    a = _run(tmp_path, {"udp 64B": _latency(1)})
    b = _run(tmp_path, {"tcp 64B": _latency(1)})
    with pytest.raises(LatlabError, match="no measured case in common"):
        compare_runs(a, b)
    c = _run(tmp_path, {"udp 64B": _latency(1)}, version="9.9.9")
    with pytest.raises(LatlabError, match=r"latlab 0\.1\.0, .* by 9\.9\.9"):
        compare_runs(a, c)
    assert cli.main(["compare", str(a), str(tmp_path / "nope")]) == 1
    assert "no run" in capsys.readouterr().err


def test_the_distribution_read_back_is_the_recorded_one(tmp_path):
    values = _latency(7)
    run = _run(tmp_path, {"udp 64B": values})
    case = json.loads((run / "summary.json").read_text())["cases"][0]
    dist = read_distribution(run / case["files"]["hlog"])
    assert dist.total == len(values)
    assert dist.percentile(50) == case["stats_ns"]["p50"] and dist.percentile(99.9) == case["stats_ns"]["p99.9"]


def test_report_piped_into_head_ends_quietly_and_version_is_printed(tmp_path):
    import subprocess
    import sys

    rec = RunRecord.create(tmp_path)
    stats = {"count": 500, "min": 1000, "p50": 2000, "p90": 3000, "p99": 4000, "p99.9": 5000, "max": 6000}
    rec.write_json("summary.json", {"run_id": rec.run_id, "complete": True, "cases": [  # > a 64 KiB pipe
        {"group": f"udp {n}B", "engine": "latlab", "role": "own", "metric": RTT, "complete": True, "note": "",
         "stats_ns": stats} for n in range(16, 16 + 900)]})
    run = rec.dir
    piped = subprocess.run(f"{sys.executable} -m latlab.cli report {run} | head -3", shell=True,
                           capture_output=True, text=True)
    assert piped.returncode == 0 and len(piped.stdout.splitlines()) == 3
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr
    version = subprocess.run([sys.executable, "-m", "latlab.cli", "--version"], capture_output=True, text=True)
    assert version.stdout.strip().startswith("latlab 0.")


def _trial_run(root: Path, scales: list[float], seed: int) -> Path:
    """A run of len(scales) trials of one case, trial t's latencies scaled by scales[t]."""
    rec = RunRecord.create(root, trials=len(scales))
    rec.write_json("manifest.json", {"latlab_version": "0.1.0"})
    for t, scale in enumerate(scales, 1):
        values = _latency(seed + t, scale=scale)
        rec.add(CaseResult(group="udp 64B", engine="latlab", role="own", metric=RTT, timestamps="t",
                           samples_ns=values, send_ns=np.arange(len(values), dtype=np.int64) * 10_000),
                250_000_000, trial=t)
    rec.finish(complete=True)
    return rec.dir


def test_trials_are_kept_apart_reported_once_with_their_range_and_judged_by_it(tmp_path):
    """`--trials N` records each trial (its own files), the report folds them into one line whose note gives the
    p50's range across trials, and compare will not call a change that the trials' own spread covers."""
    from latlab import compact, trials

    wobbly = _trial_run(tmp_path / "a", [1.0, 1.12, 0.94], seed=10)
    summary = json.loads((wobbly / "summary.json").read_text())
    assert summary["trials"] == 3 and [c["trial"] for c in summary["cases"]] == [1, 2, 3]
    assert len({c["files"]["hlog"] for c in summary["cases"]}) == 3 and all("-t" in c["files"]["hlog"]
                                                                           for c in summary["cases"])
    [folded] = trials.merged(summary)["cases"]
    p50s = sorted(c["stats_ns"]["p50"] for c in summary["cases"])
    assert folded["stats_ns"]["p50"] == p50s[1] and folded["trials"]["p50_range_ns"] == [p50s[0], p50s[2]]
    assert folded["stats_ns"]["count"] == 60_000 and folded["trials"]["coverage"] == 0.75
    report = compact.render(summary, wobbly, columns=100)
    assert report.count("    latlab ") == 1 and "p50 over 3 trials" in report and "75 %" in report
    [row] = compact.rows(summary)
    assert row["count"] == 60_000 and row["trials"]["n"] == 3

    # B 6 % slower than A's middle trial: one run's bootstrap would call it, A's own trials span 19 %
    slower = _trial_run(tmp_path / "b", [1.06, 1.07, 1.05], seed=20)
    [cmp_row] = compare_runs(wobbly, slower, threshold=3.0)
    assert cmp_row.verdict == "no significant change" and "ranges across trials overlap" in cmp_row.note
    steady = _trial_run(tmp_path / "c", [1.0, 1.01, 0.99], seed=30)
    much_slower = _trial_run(tmp_path / "d", [1.2, 1.21, 1.19], seed=40)
    [cmp_row] = compare_runs(steady, much_slower)
    assert cmp_row.verdict == "slower" and cmp_row.a_count == 60_000


def test_trials_must_be_a_whole_number_from_1(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--trials", "0"])
    assert exc.value.code == 2 and "--trials wants a whole number from 1 to 100, not '0'" in capsys.readouterr().err


def test_trial_notes_that_differ_only_in_counts_are_said_once_named_by_their_own_trial():
    from latlab.trials import _notes

    same = ["evidence: 430,480 datagrams for 428480 samples", "evidence: 428176 datagrams for 426176 samples"]
    assert _notes(same, [1, 2]) == same[0] + " (trial 1; the other trials alike)"
    # a case that failed in trials 2 to 5 only: its note says so, not "trial 1"
    assert _notes(["failed: x"] * 4, [2, 3, 4, 5]) == "failed: x (trial 2; the other trials alike)"
    assert _notes(["evidence: fine", "not accelerated: the kernel took it"], [1, 2]) == (
        "trial 1: evidence: fine; trial 2: not accelerated: the kernel took it")
    assert _notes(["", ""], [1, 2]) == ""


def test_each_trials_own_ratio_to_the_reference_is_listed_and_counted(tmp_path):
    """Claims across trials ("≤ 1.0 × sockperf in 4 of 5") are read off each trial's own ratio, not the folded
    medians: the report lists every trial's p50 and p99 ratio and counts those at or under 1."""
    from latlab import compact

    rec = RunRecord.create(tmp_path, trials=3)
    rec.write_json("manifest.json", {"latlab_version": "0.1.0"})
    for t, own_scale in enumerate([0.9, 1.1, 0.95], 1):
        for engine, role, scale in (("latlab", "own", own_scale), ("sockperf", "reference", 1.0)):
            values = _latency(100 + t, scale=scale)
            rec.add(CaseResult(group="udp 64B", engine=engine, role=role, metric=RTT, timestamps="t",
                               samples_ns=values), 250_000_000, trial=t)
    rec.finish(complete=True)
    summary = json.loads((rec.dir / "summary.json").read_text())
    lines = compact.trial_lines(summary, 120)
    [p50] = [line for line in lines if "latlab/sockperf p50" in line]
    assert p50.strip() == "udp 64B, latlab/sockperf p50: 0.90 1.10 0.95 (≤ 1.00 in 2 of 3)"
    assert any("latlab/sockperf p99" in line for line in lines)
    assert "per trial" in compact.render(summary, rec.dir, columns=120)
    assert compact.trial_lines({**summary, "trials": 1}, 120) == []


def test_each_trial_gets_a_scratch_folder_of_its_own(tmp_path):
    """A trial must not find what an earlier trial left (the race's order store kept its tokens, and every trial
    after the first failed on a duplicate key)."""
    import threading

    from latlab.bench import _trial_context
    from latlab.plugin import RunContext

    ctx = RunContext(lab=None, workdir=tmp_path, stop=threading.Event(), quiet=True)  # type: ignore[arg-type]
    assert _trial_context(ctx, 1, 1) is ctx
    one, two = _trial_context(ctx, 1, 2), _trial_context(ctx, 2, 2)
    assert one.workdir != two.workdir and one.workdir.is_dir() and two.workdir.is_dir()
    assert one.workdir.parent == tmp_path and one.stop is ctx.stop and one.resources is ctx.resources
    assert _trial_context(ctx, 1, 2).workdir == one.workdir  # the cases of one trial share it
