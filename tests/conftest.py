"""Shared fixtures: root/netns gates, a throwaway two-host lab, one short bench run for the whole session."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from latlab.topology import netns_unavailable_reason, parse_lab, two_host_lab

from .sanitized import load_from_env

SANITIZED = load_from_env()  # `make test-sanitized`: the instrumented C extensions, before any test imports them
REPO = Path(__file__).resolve().parent.parent
NETNS_REASON = netns_unavailable_reason()
needs_netns = pytest.mark.skipif(NETNS_REASON is not None, reason=f"netns lab unavailable: {NETNS_REASON}")
needs_sockperf = pytest.mark.skipif(shutil.which("sockperf") is None, reason="sockperf not installed: make setup")
needs_qperf = pytest.mark.skipif(shutil.which("qperf") is None, reason="qperf not installed: make setup")

LAB_SECTION = {"hosts": {"a": {"address": "10.77.9.1/24", "cpu": 0}, "b": {"address": "10.77.9.2/24", "cpu": 1}}}


def short_config(tmp: Path, **pingpong: object) -> Path:
    """A bench config that runs each case briefly, written to tmp."""
    import yaml

    section = {"protocols": ["udp", "tcp"], "sizes": [64], "receive": "busy-poll", "warmup": 500,
               "count": 200_000, "duration_s": 0.5, "timeout_s": 1.0, "port": 17301,
               "references": ["sockperf", "qperf"]}
    section.update(pingpong)
    path = tmp / f"bench-{secrets.token_hex(3)}.yaml"
    path.write_text(yaml.safe_dump({"lab": {"mtu": 1500, "hosts": {
        "a": {"address": "10.77.8.1/24", "cpu": 0}, "b": {"address": "10.77.8.2/24", "cpu": 1}}},
        "results": {"hlog_interval_s": 0.1}, "pingpong": section}))
    return path


def latlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "latlab.cli", *args]


def started_bench(config: Path, results: Path) -> tuple[subprocess.Popen, list[str], threading.Thread]:
    """`latlab bench` started in the background (to be interrupted): the process, its stderr lines as they come,
    and the thread reading them (join it after the process ends to have them all)."""
    proc = subprocess.Popen(latlab_cmd("bench", "--config", str(config), "--results", str(results)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "CI": "true"})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    return proc, lines, reader


def _host_state() -> dict[str, set[str]]:
    """What a test could leave on the host: namespaces, links of the root namespace, nftables tables, rxe
    devices, and live child processes of this pytest."""
    def lines(cmd: list[str]) -> list[str]:
        if not shutil.which(cmd[0]):
            return []
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return out.stdout.splitlines() if out.returncode == 0 else []

    children = set()
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == me and not fields.get("State", "").strip().startswith("Z"):
            children.add(f"{status.parent.name} {fields.get('Name', '').strip()}")
    return {
        "netns": {line.split()[0] for line in lines(["ip", "netns", "list"]) if line.strip()},
        "links": {line.split(":")[1].strip().split("@")[0] for line in lines(["ip", "-o", "link", "show"])},
        "nft tables": {line.strip() for line in lines(["nft", "list", "tables"]) if line.strip()},
        "rdma links": {line.split()[1] for line in lines(["rdma", "link", "show"]) if "rxe" in line},
        "child processes": children,
    }


def _left_behind(before: dict[str, set[str]], grace_s: float = 5.0) -> dict[str, list[str]]:
    """What is there now and was not before; a teardown that lags (a namespace's veth going with it) gets
    `grace_s`."""
    deadline = time.monotonic() + grace_s
    while True:
        after = _host_state()
        new = {kind: sorted(after[kind] - before[kind]) for kind in after if after[kind] - before[kind]}
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """After every test: nothing it created is still there (namespaces, links, nft tables, rxe devices,
    processes). What a test starts it stops, in a finally or a fixture. (A module's shared lab is set up
    before this snapshot and checked by the session's.)"""
    before = _host_state()
    yield
    if new := _left_behind(before):
        pytest.fail(f"the test left behind: {new}")


@pytest.fixture(autouse=True, scope="session")
def nothing_left_behind_by_the_session():
    """The same after the last test, for what module and session fixtures built."""
    before = _host_state()
    yield
    if new := _left_behind(before):
        pytest.fail(f"the test session left behind: {new}")


@pytest.fixture
def lab():
    """A fresh two-host namespace lab, removed after the test."""
    if NETNS_REASON:
        pytest.skip(f"netns lab unavailable: {NETNS_REASON}")
    with two_host_lab(parse_lab(LAB_SECTION), secrets.token_hex(3)) as built:
        yield built


@pytest.fixture(scope="session")
def bench_run(tmp_path_factory) -> Path:
    """One real `latlab bench` on the netns lab (sockperf and qperf included), shared by several tests."""
    if NETNS_REASON:
        pytest.skip(f"netns lab unavailable: {NETNS_REASON}")
    tmp = tmp_path_factory.mktemp("bench")
    results = tmp / "results"
    out = subprocess.run(latlab_cmd("bench", "--config", str(short_config(tmp)), "--results", str(results)),
                         capture_output=True, text=True, timeout=240, cwd=REPO,
                         env={**os.environ, "CI": "true"})
    assert out.returncode == 0, out.stderr + out.stdout
    runs = list(results.iterdir())
    assert len(runs) == 1
    return runs[0]
