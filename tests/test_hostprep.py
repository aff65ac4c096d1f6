"""hostprep: checks on this machine, unknown never reads as ready, and apply/revert round trips."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hostprep.checks import NOT_APPLICABLE, NOT_READY, READY, UNKNOWN, Context, Sysctl, Thp, all_checks
from hostprep.report import apply, exit_code, revert, run_checks

from .conftest import REPO, latlab_cmd

STATUSES = {READY, NOT_READY, NOT_APPLICABLE, UNKNOWN}


def test_check_on_this_machine_covers_every_item():
    ctx = Context(bench_cpus=[1])
    results = run_checks(ctx)
    names = {r.name for r in results}
    for needed in ("cpu_isolation", "irq_default_affinity", "irqbalance", "smt", "cpu_governor", "turbo", "c_states",
                   "transparent_hugepage", "kernel.numa_balancing", "kernel.timer_migration", "vm.stat_interval",
                   "kernel.watchdog", "vm.swappiness", "net.core.busy_read", "net.core.busy_poll", "nic_coalescing",
                   "nic_rings_channels", "nic_numa_locality", "hugepages", "firewall_conntrack", "tuned_profile",
                   "hw_timestamping", "ptp_sync"):
        assert needed in names
    assert all(r.status in STATUSES for r in results)
    assert all(r.why for r in results if r.status in (NOT_APPLICABLE, UNKNOWN))


def test_cli_exit_codes_table_and_json():
    out = subprocess.run(latlab_cmd("hostprep", "check", "--json", "--cpus", "1"), capture_output=True, text=True,
                         cwd=REPO)
    report = json.loads(out.stdout)
    assert out.returncode == report["exit_code"] in (0, 2)
    table = subprocess.run(latlab_cmd("hostprep", "check"), capture_output=True, text=True, cwd=REPO)
    assert "cpu_isolation" in table.stdout and "ready" in table.stdout


def test_unreadable_sources_are_unknown_never_ready(tmp_path):
    fake = tmp_path / "root"
    (fake / "proc/sys/vm").mkdir(parents=True)
    (fake / "proc/sys/vm/swappiness").mkdir()  # a directory where a file should be: unreadable
    ctx = Context(root=fake)
    result = Sysctl("vm.swappiness", "0", "why").check(ctx)
    assert result.status == UNKNOWN and "cannot read" in result.why
    iso = next(c for c in all_checks() if c.name == "cpu_isolation").check(ctx)
    assert iso.status == UNKNOWN
    assert exit_code([result]) == 2


def test_boot_items_become_a_cmdline_diff(tmp_path):
    fake = tmp_path / "root"
    (fake / "proc").mkdir(parents=True)
    (fake / "proc/cmdline").write_text("BOOT_IMAGE=/vmlinuz root=/dev/vda1 nohz_full=3\n")
    (fake / "sys/devices/system/cpu").mkdir(parents=True)
    (fake / "sys/devices/system/cpu/isolated").write_text("\n")
    from hostprep.report import cmdline_diff

    ctx = Context(root=fake, bench_cpus=[3])
    results = run_checks(ctx, [c for c in all_checks() if c.name == "cpu_isolation"])
    assert results[0].status == NOT_READY
    assert cmdline_diff(results, ctx) == ["isolcpus=3", "rcu_nocbs=3"]


ROUND_TRIP = ("vm.stat_interval", "vm.swappiness", "kernel.timer_migration", "net.core.busy_read", "net.core.busy_poll")


def _values() -> dict[str, str]:
    return {k: Path("/proc/sys/" + k.replace(".", "/")).read_text().strip() for k in ROUND_TRIP}


@pytest.mark.skipif(os.geteuid() != 0, reason="writing sysctls needs root")
def test_apply_and_revert_leave_every_value_as_it_was(tmp_path):
    ctx = Context()
    state = tmp_path / "state.json"
    thp = Thp()
    before, thp_before = _values(), thp.current(ctx)
    code, message = apply(ctx, state, yes=False)
    assert "nothing changed" in message or "nothing to apply" in message
    assert _values() == before and not state.exists()
    try:
        code, message = apply(ctx, state, yes=True)
        assert code == 0, message
        if "nothing to apply" in message:
            pytest.skip("this host is already tuned: nothing to round-trip (see the fake-root test)")
        saved = json.loads(state.read_text())
        for key in ROUND_TRIP:
            knob = Sysctl(key, "", "")
            if key in saved:
                assert knob.current(ctx) == next(c for c in all_checks() if c.name == key).target
        code, message = apply(ctx, state, yes=True)
        assert code == 1 and "revert" in message  # a second apply would lose the first's saved values
    finally:
        code, message = revert(ctx, state)
    assert code == 0, message
    assert _values() == before and thp.current(ctx) == thp_before
    assert not state.exists()
    code, message = revert(ctx, state)
    assert code == 1 and "nothing to revert" in message


def test_manifest_embeds_the_report(bench_run):
    manifest = json.loads((bench_run / "manifest.json").read_text())
    names = {c["name"] for c in manifest["hostprep"]["checks"]}
    assert "transparent_hugepage" in names and "exit_code" in manifest["hostprep"]


def test_apply_and_revert_on_a_fake_root_restore_exact_values(tmp_path):
    """The same round trip on copies of the files, so it runs whatever this host's state."""
    fake = tmp_path / "root"
    values = {"proc/sys/vm/swappiness": "33", "proc/sys/vm/stat_interval": "1", "proc/sys/net/core/busy_read": "0",
              "sys/kernel/mm/transparent_hugepage/enabled": "always [madvise] never"}
    for rel, value in values.items():
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text(value + "\n")
    ctx = Context(root=fake)
    state = tmp_path / "state.json"
    code, message = apply(ctx, state, yes=True)
    assert code == 0, message
    assert (fake / "proc/sys/vm/swappiness").read_text().strip() == "0"
    assert (fake / "sys/kernel/mm/transparent_hugepage/enabled").read_text().strip() == "never"
    code, message = revert(ctx, state)
    assert code == 0, message
    assert (fake / "proc/sys/vm/swappiness").read_text().strip() == "33"
    assert (fake / "sys/kernel/mm/transparent_hugepage/enabled").read_text().strip() == "madvise"
    assert not state.exists()


def test_stack_checks_say_what_each_stack_needs(tmp_path, monkeypatch):
    from hostprep.stacks import OnloadStack, RdmaStack, VendorStacks

    root = tmp_path / "root"
    (root / "sys/class/net/eth0").mkdir(parents=True)
    (root / "proc").mkdir()
    ctx = Context(root=root)
    monkeypatch.delenv("ONLOAD_SRC", raising=False)
    onload = OnloadStack().check(ctx)
    assert onload.status == NOT_READY and "make bench-stacks" in onload.why  # no /proc/modules here
    (root / "proc/modules").write_text("")
    assert "ONLOAD_SRC" in OnloadStack().check(ctx).target
    monkeypatch.setenv("ONLOAD_SRC", "/src/onload.tgz")
    assert OnloadStack().check(ctx).status == READY
    assert VendorStacks().check(ctx).status == NOT_APPLICABLE
    (root / "sys/class/infiniband/mlx5_0").mkdir(parents=True)
    assert RdmaStack().check(ctx).value == "RDMA devices: mlx5_0"
