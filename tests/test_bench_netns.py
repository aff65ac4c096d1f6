"""`latlab bench` end to end on the two-namespace lab: files, manifest, report, clean-up and bad situations."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hdrh.log import HistogramLogReader

from latlab import hdr
from latlab.analysis import read_hgrm
from latlab.errors import LabUnavailable

from .conftest import REPO, latlab_cmd, needs_netns, short_config, started_bench

pytestmark = needs_netns


def _leftovers(tag_prefix: str = "latlab-") -> tuple[list[str], str]:
    namespaces = [n for n in os.listdir("/run/netns") if n.startswith(tag_prefix)] \
        if os.path.isdir("/run/netns") else []
    listing = subprocess.run(["ps", "-eo", "stat=,pid=,args="], capture_output=True, text=True).stdout
    # Zombies are not running; an earlier, killed session's may linger unreaped in a container.
    procs = "\n".join(line for line in listing.splitlines() if not line.startswith("Z")
                      and any(name in line for name in ("sockperf", "qperf", "toe_bench.engine")))
    return namespaces, procs


def test_bench_writes_every_case_with_histograms_and_a_manifest(bench_run: Path):
    summary = json.loads((bench_run / "summary.json").read_text())
    assert summary["complete"] is True
    rows = {(c["group"], c["engine"]): c for c in summary["cases"]}
    for proto in ("udp", "tcp"):
        group = f"{proto} 64B busy-poll"
        own, ref, qp = rows[(group, "latlab")], rows[(group, "sockperf")], rows[(group, "qperf")]
        assert own["metric"] == ref["metric"] == "RTT"
        assert own["warmup"] == 500 and own["complete"]
        assert own["stats_ns"]["count"] > 1000 and ref["stats_ns"]["count"] > 1000
        assert qp["stats_ns"]["mean"] > 0 and "mean only" in qp["note"]
        for case in (own, ref):
            dist = read_hgrm(bench_run / case["files"]["hgrm"])
            assert dist.total_count[-1] == case["stats_ns"]["count"]
            reader = HistogramLogReader(str(bench_run / case["files"]["hlog"]), hdr.new_histogram())
            total = 0
            while (h := reader.get_next_interval_histogram()) is not None:
                total += h.get_total_count()
            assert total == case["stats_ns"]["count"]
    manifest = json.loads((bench_run / "manifest.json").read_text())
    assert manifest["lab"]["kind"] == "two-host netns over veth" and manifest["lab"]["used_by"] == ["pingpong"]
    assert all(set(c["path"]["hosts"]) == {"a", "b"} for c in summary["cases"])  # each case names its path
    assert manifest["nic"]["a"]["driver"] == "veth"
    assert manifest["host"]["kernel"] == os.uname().release
    assert manifest["tools"]["sockperf"] and manifest["tools"]["qperf"]
    assert manifest["parameters"]["pingpong"]["duration_s"] == 0.5
    assert manifest["clock"]["source"]
    assert manifest["git"]["commit"]


def test_report_prints_the_table_with_ratios(bench_run: Path):
    compact = subprocess.run(latlab_cmd("report", str(bench_run)), capture_output=True, text=True, cwd=REPO,
                             env={**os.environ, "COLUMNS": "80"})
    assert compact.returncode == 0, compact.stderr
    assert max(len(line) for line in compact.stdout.splitlines()) <= 80
    assert "pingpong (µs)" in compact.stdout and "÷ref p50" in compact.stdout
    out = subprocess.run(latlab_cmd("report", "--wide", str(bench_run)), capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    for needle in ("udp 64B busy-poll", "tcp 64B busy-poll", "latlab/sockperf", "ratio", "p99.99", "qperf"):
        assert needle in out.stdout
    two = subprocess.run(latlab_cmd("report", "--wide", str(bench_run), str(bench_run)), capture_output=True,
                         text=True)
    assert two.stdout.count(bench_run.name) >= 6


def test_bench_leaves_no_namespace_or_process(bench_run: Path):
    namespaces, procs = _leftovers()
    assert namespaces == [] and procs == ""


def test_lab_is_removed_even_when_the_body_fails():
    import secrets

    from latlab.topology import parse_lab, two_host_lab

    from .conftest import LAB_SECTION

    tag = secrets.token_hex(3)
    with pytest.raises(RuntimeError), two_host_lab(parse_lab(LAB_SECTION), tag) as lab:
        assert set(lab.namespaces) <= set(os.listdir("/run/netns"))
        out = subprocess.run(lab.hosts["a"].command(["ip", "-br", "addr"]), capture_output=True, text=True)
        assert "10.77.9.1/24" in out.stdout and f"ll{tag}a" in out.stdout
        raise RuntimeError("boom")
    assert not any(tag in n for n in os.listdir("/run/netns"))
    assert f"ll{tag}" not in subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout


def test_building_over_an_existing_namespace_fails_cleanly():
    from pyroute2 import netns

    from latlab.topology import parse_lab, two_host_lab

    from .conftest import LAB_SECTION

    netns.create("latlab-dupe00-b")
    try:
        with pytest.raises(LabUnavailable, match="--local"), \
                two_host_lab(parse_lab(LAB_SECTION), "dupe00"):
            pass
        assert "latlab-dupe00-a" not in os.listdir("/run/netns")
        assert not (Path("/run/latlab/owners") / "dupe00.json").exists()  # nothing claimed in its name
    finally:
        netns.remove("latlab-dupe00-b")


@pytest.fixture
def shared_tmp():
    """A folder an unprivileged user can write (pytest's own tmp is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="latlab-test-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def repo_reachable_by_others():
    """An unprivileged user must reach the checkout and its venv: a clone in or under a root-only folder
    (mktemp -d) gets o+rx on the checkout and o+x on its parent folders for the test, put back afterwards."""
    changed = []
    for folder, needed in ((REPO, stat.S_IROTH | stat.S_IXOTH), *((f, stat.S_IXOTH) for f in REPO.parents)):
        mode = folder.stat().st_mode
        if mode & needed != needed:
            folder.chmod(mode | needed)
            changed.append((folder, mode))
    try:
        yield
    finally:
        for folder, mode in changed:
            folder.chmod(stat.S_IMODE(mode))


@pytest.mark.usefixtures("repo_reachable_by_others")
def test_not_root_names_what_is_missing_and_local_still_runs(shared_tmp: Path):
    config = short_config(shared_tmp, references=["sockperf"], protocols=["udp"], duration_s=0.3)
    config.chmod(0o644)
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
    env = {**os.environ, "CI": "true", "HOME": str(shared_tmp)}
    results = shared_tmp / "results"
    denied = subprocess.run([*as_nobody, *latlab_cmd("bench", "--config", str(config), "--results", str(results))],
                            capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert denied.returncode == 1
    assert "needs root" in denied.stderr and "--local" in denied.stderr
    local = subprocess.run([*as_nobody, *latlab_cmd("bench", "--local", "--config", str(config), "--results",
                                                    str(results))],
                           capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert local.returncode == 0, local.stderr
    assert "÷ref p50" in local.stdout and re.search(r"latlab +[0-9.]+ .* [0-9.]+ sockperf", local.stdout)
    [run] = [p for p in results.iterdir() if (p / "summary.json").exists()]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["lab"]["kind"].startswith("local loopback")


def test_missing_reference_tool_is_a_row_not_a_failure(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("nsenter", "taskset", "ethtool", "git", "qperf", "ss", "ip"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    config = short_config(tmp_path, protocols=["udp"], duration_s=0.3)
    out = subprocess.run(latlab_cmd("bench", "--config", str(config), "--results", str(tmp_path / "r")),
                         capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={**os.environ, "CI": "true", "PATH": str(bin_dir)})
    assert out.returncode == 3, out.stderr  # every other case ran; the exit code says one was not measured
    assert "1 case(s) failed or incomplete: udp 64B busy-poll sockperf" in out.stderr
    assert "sockperf not installed: `make setup`" in " ".join(out.stdout.split())  # as the report wraps it
    [run] = list((tmp_path / "r").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    engines = {c["engine"]: c for c in summary["cases"]}
    assert engines["latlab"]["stats_ns"]["count"] > 0 and engines["qperf"]["stats_ns"]["mean"] > 0
    assert engines["sockperf"]["complete"] is False


def _lab_datagrams(pid: int) -> int:
    """UDP datagrams the namespaces claimed by the run `pid` have taken in (0 before it has claimed any)."""
    total = 0
    for path in Path("/run/latlab/owners").glob("*.json") if Path("/run/latlab/owners").is_dir() else []:
        try:
            claim = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for ns in claim.get("namespaces", []) if claim.get("pid") == pid else []:
            out = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"], capture_output=True, text=True,
                                 timeout=30)
            rows = [line.split() for line in out.stdout.splitlines() if line.startswith("Udp:")]
            if len(rows) == 2:
                total += int(rows[1][rows[0].index("InDatagrams")])
    return total


def _interrupt_bench(tmp_path: Path, protocols: list[str], round_trips: int) -> tuple[int, str, str, Path]:
    """A long ping-pong bench, Ctrl-C'd once its first case says it is running and its lab has carried about
    `round_trips` round trips. Returns (exit code, stdout, stderr, run folder)."""
    config = short_config(tmp_path, protocols=protocols, duration_s=20, count=50_000_000)
    results = tmp_path / "r"
    proc, err_lines, reader = started_bench(config, results)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("running udp" in line for line in err_lines):
            time.sleep(0.01)
        while round_trips and time.monotonic() < deadline and _lab_datagrams(proc.pid) < 2 * round_trips:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout = proc.stdout.read()
        proc.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    [run] = list(results.iterdir())
    return proc.returncode, stdout, "".join(err_lines), run


def test_ctrl_c_keeps_what_was_measured_and_cleans_up(tmp_path: Path):
    # the first 20-second case has started and measured: 500 warm-up round trips, then some
    code, stdout, stderr, run = _interrupt_bench(tmp_path, ["udp", "tcp"], round_trips=5000)
    assert code == 130, stderr
    assert "marked incomplete" in stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is False and "interrupted" in summary["incomplete_reason"]
    [first] = summary["cases"]
    assert first["engine"] == "latlab" and first["complete"] is False, stderr[-3000:]
    assert first["stats_ns"]["count"] > 1000  # what was measured before Ctrl-C is kept
    assert (run / first["files"]["hgrm"]).exists()
    assert "INCOMPLETE (interrupted" in stdout
    namespaces, procs = _leftovers(f"latlab-{run.name[-6:]}")
    assert namespaces == [] and procs == ""


def test_ctrl_c_before_the_first_sample_still_names_the_case(tmp_path: Path):
    """Ctrl-C as the first case starts: the case still has a row, incomplete and interrupted, not a failure (the
    plug-in's own when the engine had started, else the core's)."""
    code, _, stderr, run = _interrupt_bench(tmp_path, ["udp"], round_trips=0)
    assert code == 130, stderr
    [first] = json.loads((run / "summary.json").read_text())["cases"]
    assert first["engine"] in ("latlab", "-") and first["role"] in ("own", "interrupted"), first
    assert first["complete"] is False and "interrupted" in first["note"], first
    namespaces, procs = _leftovers(f"latlab-{run.name[-6:]}")
    assert namespaces == [] and procs == ""


def test_a_second_run_never_touches_the_first(bench_run: Path):
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in bench_run.iterdir() if p.is_file()}
    out = subprocess.run(latlab_cmd("bench", "--config", str(short_config(bench_run.parent)), "--results",
                                    str(bench_run.parent), "--run-id", bench_run.name),
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 1 and "already exists" in out.stderr
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in bench_run.iterdir() if p.is_file()}
    assert before == after


def test_helpers_die_with_a_killed_run(tmp_path: Path):
    """SIGKILL of the driver (no chance to clean up) must not leave busy-polling servers behind."""
    script = tmp_path / "kill.py"
    script.write_text(
        "import sys, time\nfrom pathlib import Path\nfrom latlab.procs import Proc\n"
        "p = Proc(['sockperf', 'server', '-i', '127.0.0.1', '-p', '18777'], Path(sys.argv[1]), 'sockperf')\n"
        "print(p.popen.pid, flush=True)\ntime.sleep(60)\n")
    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path / "log")], stdout=subprocess.PIPE,
                              text=True, cwd=REPO)
    child = int(driver.stdout.readline())
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists(), "the server outlived its killed parent"


def _namespaces() -> set[str]:
    return {p.name for p in Path("/run/netns").iterdir()} if Path("/run/netns").is_dir() else set()


def _claimed_by(pid: int, n: int, existing: bool = False) -> bool:
    """Whether a claim of the process names at least n namespaces (with `existing`: that exist already)."""
    for path in Path("/run/latlab/owners").glob("*.json") if Path("/run/latlab/owners").is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        names = set(data.get("namespaces", []))
        if data.get("pid") == pid and len(names & _namespaces() if existing else names) >= n:
            return True
    return False


def test_a_sigkilled_run_leaves_claimed_namespaces_that_clean_removes(tmp_path: Path):
    """SIGKILL gives no chance to clean up: the run's claim names what it left; `latlab clean` removes it."""
    before = _namespaces()
    proc, _lines, reader = started_bench(short_config(tmp_path, duration_s=30.0, count=10_000_000),
                                         tmp_path / "results")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _claimed_by(proc.pid, 2, existing=True):
        time.sleep(0.1)  # until the run has claimed both hosts and built them (a claim comes before its namespace)
    proc.kill()
    proc.wait(timeout=30)
    reader.join(timeout=10)
    left = {n for n in _namespaces() - before if n.startswith("latlab-")}
    assert len(left) == 2, left
    tag = next(iter(left)).split("-")[1]
    claim = json.loads((Path("/run/latlab/owners") / f"{tag}.json").read_text())
    assert set(claim["namespaces"]) == left and claim["pid"] == proc.pid
    out = subprocess.run(latlab_cmd("clean"), capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0 and f"run {tag}" in out.stdout and all(n in out.stdout for n in left)
    assert not (left & _namespaces()) and not (Path("/run/latlab/owners") / f"{tag}.json").exists()


def test_the_next_bench_removes_what_a_dead_run_left(tmp_path: Path):
    """A claim whose owner is gone (a real namespace, a pid that has exited) is swept when a bench starts;
    a live run's claim is left alone."""
    from pyroute2 import netns

    from latlab import leftovers

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name, live_name = f"latlab-zz{os.getpid() % 10_000:04d}-a", f"latlab-zy{os.getpid() % 10_000:04d}-a"
    netns.create(name)
    netns.create(live_name)
    try:
        leftovers.OWNERS.mkdir(parents=True, exist_ok=True)
        claim = {"pid": dead.pid, "start": "1", "namespaces": [name]}
        (leftovers.OWNERS / "zz-dead.json").write_text(json.dumps(claim))
        leftovers.claim("zy-live", [live_name])       # claimed by this (live) process
        out = subprocess.run(latlab_cmd("bench", "--config", str(short_config(tmp_path, duration_s=0.2)),
                                        "--results", str(tmp_path / "results"), "--only", "pingpong"),
                             capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "CI": "true"})
        assert "run zz-dead" in out.stderr and name in out.stderr, out.stderr[-2000:]
        assert name not in _namespaces() and live_name in _namespaces()
    finally:
        leftovers.release("zy-live", [live_name])
        for n in (name, live_name):
            if n in _namespaces():
                netns.remove(n)


def test_trials_run_every_case_again_interleaved_and_the_report_folds_them(tmp_path: Path):
    """`--trials 2`: the whole case list runs, then runs again backwards (A, B, B, A: a drift of the host lands on
    every case alike); each trial keeps its own files and the printed report gives one line per case with its p50's
    range."""
    config = short_config(tmp_path, protocols=["udp", "tcp"], duration_s=0.3, references=[])
    out = subprocess.run(latlab_cmd("bench", "--config", str(config), "--results", str(tmp_path / "r"), "--trials",
                                    "2"), capture_output=True, text=True, cwd=REPO, timeout=180,
                         env={**os.environ, "CI": "true"})
    assert out.returncode == 0, out.stderr
    [run] = list((tmp_path / "r").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    order = [(c["trial"], c["group"].split()[0]) for c in summary["cases"]]
    assert order == [(1, "udp"), (1, "tcp"), (2, "tcp"), (2, "udp")] and summary["trials"] == 2  # ABBA
    for case in summary["cases"]:
        assert (run / case["files"]["hgrm"]).exists() and case["files"]["hgrm"].endswith(f"-t{case['trial']}.hgrm")
    assert out.stdout.count("p50 over 2 trials") == 2 and out.stdout.count("    latlab ") == 2


def test_segments_alternate_latlab_and_sockperf_and_pool_each_side(tmp_path: Path):
    """`segments: 2`: latlab's engine and sockperf run as one case, alternating, each side's segments pooled into one
    row with every segment's evidence; the ratio is printed as for separate cases."""
    config = short_config(tmp_path, protocols=["udp"], duration_s=2, segments=2, references=["sockperf"])
    out = subprocess.run(latlab_cmd("bench", "--config", str(config), "--results", str(tmp_path / "r")),
                         capture_output=True, text=True, cwd=REPO, timeout=180, env={**os.environ, "CI": "true"})
    assert out.returncode == 0, out.stderr
    [run] = list((tmp_path / "r").iterdir())
    rows = {c["engine"]: c for c in json.loads((run / "summary.json").read_text())["cases"]}
    assert set(rows) == {"latlab", "sockperf"}
    for engine, other in (("latlab", "sockperf"), ("sockperf", "latlab")):
        row = rows[engine]
        assert row["complete"] and row["stats_ns"]["count"] > 1000
        assert row["note"].startswith(f"2 segments alternating with {other} (ABBA), pooled; evidence: ")
        evidence = row["params"]["evidence"]
        assert evidence["holds"] and len(evidence["segments"]) == 2
        assert sum(s["samples"] for s in evidence["segments"]) == row["stats_ns"]["count"]
    assert re.search(r"latlab +[0-9.]+ .* [0-9.]+ sockperf", out.stdout)
