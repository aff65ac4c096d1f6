"""`latlab bench --vm`: the same bench, run inside one boot of the lab VM (latlab/vm.py).

Used for what this host's kernel cannot do: the stack matrix with Onload's modules and soft-RoCE across a
veth, all in one boot so that ratios within it compare. The guest runs `latlab bench` itself (same
config, same code: the VM shares this file system), so its manifest describes the VM's kernel and lab.
Before the boot, each configured benchmark may prepare what the guest cannot make for itself on a
read-only file system (`prepare_vm(section, kernelver, log_dir)`: Onload's build for the VM's kernel).
The guest's console is written as it runs and kept in the run folder; a VM that does not finish still
leaves a run folder, marked incomplete, with that console.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from latlab import compact, vm
from latlab.bench import check_sections, sigterm_as_interrupt
from latlab.config import load_config
from latlab.errors import LatlabError
from latlab.plugin import load_benchmarks
from latlab.results import CaseResult
from latlab.runrecord import RunRecord, check_run_id, new_run_id

CONSOLE = "vm-console.log"
# Settings the guest needs from this environment (where the user's Onload source is, say).
PASS_ENV = ("ONLOAD_SRC", "LATLAB_CACHE")


@dataclass
class VmPreparation:
    """What a benchmark's `prepare_vm` hands back: a line to tell the user, folders the guest must see."""

    note: str = ""
    rodirs: list[Path] = field(default_factory=list)


def prepare(config: dict, log_dir: Path) -> VmPreparation:
    """Let each configured benchmark prepare for the VM's kernel; returns what they said and need shared."""
    merged = VmPreparation()
    for name, bench in load_benchmarks().items():
        hook = getattr(bench, "prepare_vm", None)
        if hook and name in config:
            got = hook(config[name] or {}, vm.KERNEL_VERSION, log_dir)
            merged.note = "\n".join(n for n in (merged.note, got.note) if n)
            merged.rodirs += got.rodirs
    return merged


def guest_script(config: Path, results: Path, run_id: str, only: list[str] | None, exit_file: Path,
                 trials: int = 1) -> str:
    # as absolute paths: the guest starts in the repository, wherever this run was started
    env = "".join(f"export {k}={shlex.quote(str(Path(os.environ[k]).resolve()))}\n"
                  for k in PASS_ENV if os.environ.get(k))
    argv = [sys.executable, "-m", "latlab.cli", "bench", "--config", str(config), "--results", str(results),
            "--run-id", run_id, "--trials", str(trials), *[x for o in (only or []) for x in ("--only", o)]]
    return (f"cd {shlex.quote(str(vm.REPO))}\n{env}export CI=true PYTHONDONTWRITEBYTECODE=1\n"
            f"{shlex.join(argv)}\necho $? > {shlex.quote(str(exit_file))}\n")


def run_bench_in_vm(config_path: Path, results_root: Path, *, only: list[str] | None = None,
                    run_id: str | None = None, timeout_s: float = 1500.0, trials: int = 1) -> tuple[Path, int]:
    """Boot the VM, run the bench inside, move its run folder into results_root; returns (run folder, the
    guest bench's exit code, or 1 when it never finished)."""
    reason = vm.unavailable_reason()
    if reason:
        raise LatlabError(f"the lab VM cannot start here: {reason}")
    config = load_config(config_path)  # a broken file is refused before the boot
    check_sections(config)
    if run_id is not None:
        check_run_id(run_id)
    run_id = run_id or new_run_id()
    if (results_root / run_id).exists():
        raise LatlabError(f"{results_root / run_id} already exists; results are never overwritten")
    # The guest sees this file system read-only (its own tmpfs on /tmp): it writes only into this folder.
    out = Path(tempfile.mkdtemp(prefix=f"latlab-vm-{run_id[-6:]}-", dir="/var/tmp"))
    try:
        prepared = prepare(config, out)
        for note in prepared.note.splitlines():
            print(f"latlab: {note}", file=sys.stderr)
        guest_config = out / "config.yaml"
        shutil.copyfile(config_path, guest_config)
        exit_file = out / "exit_code"
        script = out / "guest.sh"
        script.write_text(guest_script(guest_config, out / "results", run_id, only, exit_file, trials))
        console = out / CONSOLE
        print(f"latlab: booting the lab VM (kernel {vm.KERNEL_VERSION}); console: {console}", file=sys.stderr)
        failure = ""
        try:
            with sigterm_as_interrupt():
                vm.run(script, console, timeout_s, rwdir=out, rodirs=prepared.rodirs)
        except LatlabError as exc:
            failure = str(exc)
        except KeyboardInterrupt:
            failure = "interrupted (Ctrl-C or SIGTERM): the VM was stopped"
        inner = out / "results" / run_id
        code = int(exit_file.read_text()) if exit_file.exists() else 1
        run_dir = _adopt(inner, results_root, run_id, console, failure or "the VM's bench wrote no run")
        if failure.startswith("interrupted"):
            raise KeyboardInterrupt
        return run_dir, code if inner.exists() and not failure else 1
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _adopt(inner: Path, results_root: Path, run_id: str, console: Path, failure: str) -> Path:
    """Move the guest's run folder into results_root (copy under a hidden name, then rename), with the console;
    without one, record a run of one failed row that names the console."""
    results_root.mkdir(parents=True, exist_ok=True)
    if inner.exists():
        staging = results_root / f".{run_id}.vm-copy"
        shutil.copytree(inner, staging)
        if console.exists():
            shutil.copyfile(console, staging / CONSOLE)
        staging.rename(results_root / run_id)
        return results_root / run_id
    record = RunRecord.create(results_root, run_id)
    record.add(CaseResult(group="lab VM", engine="-", role="failed", metric="", timestamps="", complete=False,
                          note=f"failed: {failure}; see {CONSOLE}",
                          attachments={CONSOLE: console} if console.exists() else {}), 250_000_000)
    record.finish(complete=False, reason=failure)
    return record.dir


def print_run(run_dir: Path) -> None:
    compact.print_run(run_dir)
