"""Ansible: lint with the production profile, site.yml converged twice on localhost (the second run changes
nothing), and bench.yml across three namespace hosts reached over SSH (sshd started in each by the test)."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from latlab.topology import BridgeSpec, bridge_lab

from .conftest import REPO, needs_netns

ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.slow]


def playbook(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    # No SSH connection multiplexing: a persistent master would keep sessions open on the test's hosts after the run.
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "PATH": f"{BIN}:{os.environ['PATH']}",
           "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPath=none"}
    return subprocess.run([str(BIN / "ansible-playbook"), *args], capture_output=True, text=True, cwd=ANSIBLE,
                          env=env, timeout=timeout)


def recap(output: str) -> dict[str, int]:
    line = next(line for line in output.splitlines()
                if line.startswith(("localhost", "exchange", "trader")) and "ok=" in line)
    return {k: int(v) for k, v in (part.split("=") for part in line.split(":", 1)[1].split())}


def test_ansible_lint_production_profile():
    out = subprocess.run([str(BIN / "ansible-lint"), "--nocolor"], capture_output=True, text=True, cwd=ANSIBLE,
                         env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "Profile 'production' was required, and it passed" in out.stdout + out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="converging site.yml installs packages: needs root")
def test_site_converges_on_localhost_and_is_idempotent(tmp_path):
    inventory = tmp_path / "inventory.yml"
    state = tmp_path / "hostprep-state.json"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
        "latlab_common_dest": str(tmp_path / "opt"), "latlab_tuning_state_file": str(state),
        "latlab_dpdk_hugepages": 0}}}}))
    try:
        first = playbook("-i", str(inventory), "site.yml")
        assert first.returncode == 0, first.stdout[-4000:]
        assert recap(first.stdout)["failed"] == 0
        for reason in ("skipping RDMA: no RDMA device", "skipping Onload: no Solarflare NIC",
                       "skipping vfio-pci binding"):
            assert reason in first.stdout  # hardware parts skip with a stated reason
        assert state.exists() and (tmp_path / "opt" / ".venv" / "bin" / "latlab").exists()
        second = playbook("-i", str(inventory), "site.yml")
        assert second.returncode == 0, second.stdout[-4000:]
        assert recap(second.stdout)["changed"] == 0, second.stdout[-4000:]
    finally:
        if state.exists():
            subprocess.run([sys.executable, "-m", "latlab.cli", "hostprep", "revert", "--state", str(state)],
                           cwd=REPO, check=True, capture_output=True)
        Path("/etc/sysctl.d/90-latlab-hugepages.conf").unlink(missing_ok=True)


def test_unsupported_distribution_fails_early(tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
        "latlab_common_supported": ["Gentoo"], "latlab_common_install_packages": False}}}}))
    out = playbook("-i", str(inventory), "site.yml")
    assert out.returncode != 0 and "unsupported distribution Debian" in out.stdout


class Sshd:
    """An sshd inside a namespace host, on the host's address, with keys made for the test."""

    def __init__(self, host, keys: Path) -> None:
        self.config = keys / f"sshd-{host.name}.conf"
        self.pidfile = keys / f"sshd-{host.name}.pid"
        self.config.write_text("\n".join([
            f"ListenAddress {host.address}", "Port 22", f"HostKey {keys / 'host_key'}", f"PidFile {self.pidfile}",
            f"AuthorizedKeysFile {keys / 'client_key.pub'}", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "UsePAM no", "StrictModes no", ""]))
        self.proc = subprocess.Popen(host.command(["/usr/sbin/sshd", "-D", "-e", "-f", str(self.config)]),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@needs_netns
@pytest.mark.timeout(600)
@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="openssh-server not installed: make setup")
def test_bench_playbook_runs_across_ssh_hosts_and_merges_one_run(tmp_path):
    before_sessions = set(subprocess.run(["pgrep", "-f", "sshd: root@notty"], capture_output=True,
                                         text=True).stdout.split())
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    tag = secrets.token_hex(3)
    spec = BridgeSpec(ipaddress.IPv4Network("10.79.3.0/24"), ("exchange", "trader", "fanout"), {})
    daemons: list[Sshd] = []
    with bridge_lab(spec, tag, root_address="10.79.3.254/24") as lab:
        try:
            daemons = [Sshd(h, keys) for h in lab.hosts.values()]
            # busy polling needs a NAPI context on each host's veth, which a TSO-capable sender defeats: the
            # bridge's ports are the senders here (hostrun turns GRO on and TSO off on the hosts' own ends)
            for i in range(len(spec.names)):
                subprocess.run(["ip", "netns", "exec", f"latlab-{tag}-sw", "ethtool", "-K", f"ll{tag}{i}s", "tso",
                                "off", "gro", "on"], check=True, capture_output=True)
            inventory = tmp_path / "inventory.yml"
            common = {"ansible_user": "root", "ansible_ssh_private_key_file": str(keys / "client_key"),
                      # throwaway hosts made by this test: their keys are new each time, so they are not checked
                      "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                      "ansible_python_interpreter": "/usr/bin/python3", "latlab_common_dest": str(REPO)}
            inventory.write_text(yaml.safe_dump({"all": {"vars": common, "children": {
                name: {"hosts": {name: {"ansible_host": lab.hosts[name].address}}}
                for name in ("exchange", "trader", "fanout")}}}))
            results = tmp_path / "results"
            run_id = f"test-{tag}"
            out = playbook("-i", str(inventory), "bench.yml", "-e", f"latlab_bench_run_id={run_id}",
                           "-e", f"latlab_bench_results={results}",
                           "-e", f"latlab_bench_collect={tmp_path / 'collect'}",
                           "-e", f"latlab_bench_controller_python={sys.executable}",
                           "-e", json.dumps({"latlab_bench_stacks": ["kernel", "busy-poll", "onload"],
                                             "latlab_bench_seconds": 1}))
            assert out.returncode == 0, out.stdout[-5000:]
        finally:
            for d in daemons:
                d.stop()
    run = results / run_id
    summary = json.loads((run / "summary.json").read_text())
    # sockperf busy-polls through net.core.busy_read, which only the root namespace can set: on these namespace
    # hosts its busy-poll rows must say so, not show figures under the stack's name
    incomplete = [c for c in summary["cases"] if not c["complete"]]
    assert all(c["group"].startswith("busy-poll:") and c["engine"] == "sockperf" and
               c["note"].startswith("not accelerated") for c in incomplete), incomplete
    rows = {(c["group"], c["engine"]): c for c in summary["cases"]}
    for proto in ("udp", "tcp"):
        own, ref = rows[(f"{proto} 64B multi-host", "latlab")], rows[(f"{proto} 64B multi-host", "sockperf")]
        # Measured across hosts (a functional check: sockperf keeps only what follows its own 400 ms warm-up).
        assert own["stats_ns"]["count"] > 100 and ref["stats_ns"]["count"] > 20
        assert own["params"]["host"] == "trader"
        assert own["params"]["evidence"]["holds"] and own["params"]["stack"] == "kernel"
        busy = rows[(f"busy-poll: {proto} 64B multi-host", "latlab")]
        assert busy["params"]["receive"] == "blocking" and busy["stats_ns"]["count"] > 100
        assert busy["params"]["evidence"]["holds"] and busy["params"]["evidence"]["busy_poll_rx_packets"] > 0
    skipped = [c for c in summary["cases"] if c["role"] == "skipped"]
    assert skipped and all("onload: not available" in c["note"] for c in skipped)  # no Onload on these hosts
    manifest = json.loads((run / "manifest.json").read_text())
    assert set(manifest["hosts"]) == {"exchange", "trader", "fanout"}
    assert all("checks" in h["hostprep"] for h in manifest["hosts"].values())
    report = subprocess.run([sys.executable, "-m", "latlab.cli", "report", "--wide", str(run)], capture_output=True,
                            text=True, cwd=REPO)
    assert "latlab/sockperf" in report.stdout
    assert (run / "report.html").exists()  # the merged run's page, written as it was merged
    sessions = subprocess.run(["pgrep", "-f", "sshd: root@notty"], capture_output=True, text=True).stdout.split()
    assert not set(sessions) - before_sessions, "SSH sessions to the test's hosts outlived the run"
