"""Shared fixtures: root/netns gates, a throwaway two-host lab, one short bench run for the whole session."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
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
