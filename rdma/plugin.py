"""The `rdma` benchmark: verbs latency (latlab's pyverbs drivers) beside perftest on the same device, same run.

With an RDMA device on this host it runs here; without one it boots the soft-RoCE VM (latlab/vm.py);
with neither it reports exactly what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from latlab import vm
from latlab.abba import interleaved_note
from latlab.config import OneOrMore, Schema, validate
from latlab.errors import LatlabError
from latlab.plugin import RunContext, SectionBenchmark
from latlab.procs import tool_version
from latlab.results import RTT, CaseResult
from latlab.topology import OWN
from rdma import devices, perftest
from rdma.verbs import TESTS

OWN_TIMESTAMPS = ("latlab user space CLOCK_MONOTONIC: before post_send, after the answering completion "
                  "(WRITE: after the peer's write lands in polled memory)")
PERFTEST_HALF = "perftest cycle counter; its -H samples are RTT/2 for send/write, shown here ×2 as RTT"
PERFTEST_READ = "perftest cycle counter; ib_read_lat samples are RTT"
TCG_NOTE = "soft-RoCE in a TCG VM: absolute figures mean little, compare the ratio"
LOOPBACK_NOTE = "rxe loopback: one device serves both ends, the traffic never crosses the veth"
PATHS = ("wire", "loopback")  # soft-RoCE: an rxe device per veth end (the wire), or one device (rxe's loopback)


DeviceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class RdmaParams(Schema):
    """The `rdma` section: validated as written, used as is."""

    tests: OneOrMore(Literal[TESTS]) = TESTS  # type: ignore[valid-type]
    size: Annotated[int, Field(ge=16, le=1 << 20)] = 64
    iterations: Annotated[int, Field(ge=10, le=10_000_000)] = 1000
    warmup: Annotated[int, Field(ge=0, le=10_000_000)] = 100
    inline: bool = True
    events: bool = False
    device: DeviceName | None = None  # an RDMA device on this host (default: the first one)
    netdev: DeviceName | None = None  # the network device under it
    perftest: bool = True
    # latlab and perftest alternate test by test in this many segments (ABBA order), the iterations split among
    # them and each side pooled: the TCG VM's speed drifts over minutes, so runs minutes apart are not comparable
    segments: Annotated[int, Field(ge=1, le=100)] = 1
    vm_timeout_s: Annotated[float, Field(ge=30, le=86_400)] = 300.0
    force_vm: bool = False
    reference_engine: bool = True
    fault_check: bool = False
    path: Literal[PATHS] = "wire"


def configure(data: Mapping[str, Any] | None, path: str = "rdma") -> RdmaParams:
    """Validate the section; every error names its field."""
    return validate(RdmaParams, data, path)


def inside_args(p: RdmaParams, out: Path) -> list[str]:
    return ["--out", str(out), "--setup-rxe-pair" if p.path == "wire" else "--setup-rxe",
            "--tests", ",".join(p.tests), "--size", str(p.size), "--iterations",
            str(p.iterations), "--warmup", str(p.warmup), *(["--events"] if p.events else []),
            *([] if p.inline else ["--no-inline"]), *(["--perftest"] if p.perftest else []),
            *(["--segments", str(p.segments)] if p.perftest and p.segments > 1 else []),
            *(["--reference"] if p.reference_engine else []), *(["--fault-check"] if p.fault_check else [])]


@dataclass
class RdmaCase:
    params: RdmaParams

    producer = "rdma.inside (latlab's verbs engines, perftest)"
    timestamps = OWN_TIMESTAMPS

    @property
    def title(self) -> str:
        return f"rdma {','.join(self.params.tests)} {self.params.size}B"

    @property
    def expected_seconds(self) -> float:
        return 150.0

    def run(self, ctx: RunContext) -> list[CaseResult]:
        # The VM writes its results here: outside the repository, which the guest sees read-only (a writable
        # folder nested in a read-only mount would be read-only too), and not under /tmp (the guest's own tmpfs).
        out = Path(tempfile.mkdtemp(prefix=f"latlab-rdma-{ctx.tag}-", dir="/var/tmp"))
        try:
            return self._run(ctx, out)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def _run(self, ctx: RunContext, out: Path) -> list[CaseResult]:
        p = self.params
        present = devices.devices()
        attachments: dict[str, Path] = {}
        if present and not p.force_vm:
            device = p.device or present[0]
            where = f"RDMA device {device} on this host"
            subprocess.run([sys.executable, "-m", "rdma.inside", "--device", device,
                            *(["--netdev", p.netdev] if p.netdev else []),
                            *[a for a in inside_args(p, out) if not a.startswith("--setup-rxe")]],
                           capture_output=True, text=True, timeout=p.vm_timeout_s)
        elif devices.rxe_loadable() and not p.force_vm:
            where = f"soft-RoCE (rxe) on this host, kernel {os.uname().release}"
            subprocess.run([sys.executable, "-m", "rdma.inside", *inside_args(p, out)],
                           capture_output=True, text=True, timeout=p.vm_timeout_s)
        else:
            reason = vm.unavailable_reason()
            if reason:
                return [CaseResult(group=f"rdma {p.size}B", engine="latlab", role="own", metric=RTT,
                                   timestamps=OWN_TIMESTAMPS, complete=False,
                                   note=f"skipped: no RDMA device here, and no soft-RoCE VM: {reason}",
                                   path={"kind": "none: no RDMA device here and no soft-RoCE VM"})]
            script = out / "inside.sh"
            script.write_text(f"cd {vm.REPO}\n{sys.executable} -m rdma.inside "
                              + " ".join(inside_args(p, out)) + "\n")
            console = ctx.workdir / "rdma-vm-console.log"  # on the host, kept until the run is recorded
            attachments["rdma-vm-console.log"] = console
            where = f"soft-RoCE (rxe) in a TCG VM, kernel {vm.KERNEL_VERSION}"
            try:
                vm.run(script, console, p.vm_timeout_s, rwdir=out)
            except LatlabError as exc:
                return [CaseResult(group=f"rdma {p.size}B", engine="latlab", role="own", metric=RTT,
                                   timestamps=OWN_TIMESTAMPS, complete=False, note=str(exc), attachments=attachments,
                                   path=rdma_path(where, {}))]
        return self._results(out, where, attachments)

    def _results(self, out: Path, where: str, attachments: dict[str, Path]) -> list[CaseResult]:
        """The rows of what the RDMA run wrote into `out`, each with the path it ran on."""
        p = self.params
        path = out / "inside.json"
        if not path.exists():
            return [CaseResult(group=f"rdma {p.size}B", engine="latlab", role="own", metric=RTT,
                               timestamps=OWN_TIMESTAMPS, complete=False, attachments=attachments,
                               note="the RDMA run wrote no results (see the console log)", path=rdma_path(where, {}))]
        inside = json.loads(path.read_text())
        results = self._rows(out, where, inside, attachments)
        ran_on = rdma_path(where, inside)
        for result in results:
            result.path = ran_on
        return results

    def _rows(self, out: Path, where: str, inside: dict[str, Any], attachments: dict[str, Path]) -> list[CaseResult]:
        p = self.params
        tcg = "VM" in where
        common = {"stack": "rdma", "transport": where, "kernel": inside.get("kernel"),
                  "device": inside.get("device"), "server_device": inside.get("server_device"),
                  "gid_index": inside.get("gid_index"), "gid": inside.get("gid"), "path": inside.get("path")}
        results: list[CaseResult] = []
        if "error" in inside:
            results.append(CaseResult(group=f"rdma {p.size}B", engine="latlab", role="own", metric=RTT,
                                      timestamps=OWN_TIMESTAMPS, complete=False, note=inside["error"]))
        interop = {r.get("test"): r.get("status") for r in inside.get("interop", [])}
        for key, engine, role, folder in (("latlab", "latlab", "own", "c"),
                                          ("pyverbs", "latlab pyverbs", "context", "python"),
                                          ("rdma_cm", "latlab pyverbs rdma_cm", "context", "python")):
            for r in inside.get(key, []):
                test = r.get("test", "?")
                npz = out / folder / f"{test}.npz"
                if test == "cm":
                    test = "send"  # the same RC SEND ping-pong, connected through rdma_cm
                ok = r.get("status") == "ok" and npz.exists()
                data = np.load(npz) if npz.exists() else None
                wire_note, evidence = wire_evidence(inside.get("path"), r.get("wire"), p.iterations)
                notes = [wire_note, TCG_NOTE if tcg and role == "own" else "", r.get("error", "")]
                if role == "own" and test in interop:
                    notes.append(f"compiled client vs pyverbs server: {interop[test]}")
                if r.get("segments"):
                    notes.append(interleaved_note(r["segments"], [perftest.TOOLS.get(test, "perftest")]))
                results.append(CaseResult(
                    group=f"rdma {test} {p.size}B", engine=engine, role=role, metric=RTT,
                    timestamps=OWN_TIMESTAMPS, samples_ns=data["rtt_ns"] if data is not None else None,
                    send_ns=data["send_ns"] if data is not None else None, warmup=int(r.get("warmup", 0)),
                    complete=ok, note="; ".join(n for n in notes if n),
                    figures={"completions": r.get("measured", 0),
                             "answered": r.get("server", {}).get("answered", 0)},
                    params={**common, "test": test, "inline": r.get("inline"), "events": p.events,
                            "impl": folder, "payload_checked": True, "evidence": evidence,
                            "segments": r.get("segments", 1)},
                    attachments=attachments))
                attachments = {}
        for impl, runs in inside.get("fault", {}).items():
            for r in runs:
                results.append(CaseResult(
                    group="rdma fault check (WRITE, bad rkey)", engine=f"latlab {impl}", role="context", metric=RTT,
                    timestamps=OWN_TIMESTAMPS, complete=r.get("status") == "error",
                    note=f"client: {r.get('error', r.get('status'))}; server: "
                         f"{r.get('server', {}).get('error', r.get('server', {}).get('status'))}"))
        for r in inside.get("perftest", []):
            test = r["test"]
            npz = out / f"perftest-{test}.npz"
            samples = np.load(npz)["samples_ns"] if npz.exists() else None
            if samples is not None and r.get("half_rtt"):
                samples = samples * 2
            wire_note, evidence = wire_evidence(inside.get("path"), r.get("wire"), p.iterations)
            results.append(CaseResult(
                group=f"rdma {test} {p.size}B", engine=perftest.TOOLS.get(test, test), role="reference",
                metric=RTT,
                timestamps=PERFTEST_HALF if r.get("half_rtt") else PERFTEST_READ, samples_ns=samples,
                complete=r.get("status") == "ok",
                note="; ".join(n for n in (wire_note,
                                           interleaved_note(r["segments"], ["latlab"]) if r.get("segments") else "",
                                           r.get("note", ""), r.get("error", "")) if n),
                params={**common, "perftest_summary_us": r.get("summary_us", {}), "evidence": evidence,
                        "segments": r.get("segments", 1)}))
        return results


PATH_WORDS = {"wire": "an rxe device on each end of a veth pair: the RoCE traffic crosses the veth",
              "loopback": "one rxe device serves both ends (rxe's loopback): the traffic never crosses the veth"}


def rdma_path(where: str, inside: dict[str, Any]) -> dict[str, Any]:
    """Where an RDMA case ran: this host or the VM (its kernel), the devices, the network devices under them."""
    path: dict[str, Any] = {
        "kind": where, "kernel": inside.get("kernel"),
        "rdma_devices": {"client": inside.get("device"), "server": inside.get("server_device")},
        "netdevs": {"client": inside.get("netdev"), "server": inside.get("server_netdev")},
        "path": PATH_WORDS.get(inside.get("path", ""), "the RDMA device's own port"),
    }
    if "VM" in where:
        path["vm"] = {"kernel": vm.KERNEL_VERSION, "accelerator": "TCG (emulated, no KVM)", "memory": vm.MEMORY,
                      "cpus": vm.CPUS, "console": "rdma-vm-console.log"}
    return path


def wire_evidence(path: str | None, wire: dict[str, int] | None, iterations: int) -> tuple[str, dict[str, Any]]:
    """The note and evidence of where soft-RoCE traffic went: across the veth (its counters), or rxe's loopback."""
    if path == "loopback":
        return LOOPBACK_NOTE, {"holds": False, "path": "loopback"}
    if path != "wire" or not wire:
        return "", {}
    sent, got = wire.get("rxa_tx_packets", 0), wire.get("rxb_rx_packets", 0)
    holds = sent >= iterations and got >= sent
    note = (f"crossed the veth: rxa tx +{sent}, rxb rx +{got}" if holds else
            f"did not cross the veth as expected: rxa tx +{sent}, rxb rx +{got}")
    return note, {"holds": holds, "path": "wire", **wire}


# OWN: an RDMA device here, or rxe on a veth pair in the soft-RoCE VM; each result says which
BENCHMARK = SectionBenchmark("rdma", RdmaParams, OWN, configure, lambda params: [RdmaCase(params)], lambda: {
    "perftest": tool_version(["ib_send_lat", "--version"]), "rdma_vm_kernel": vm.KERNEL_VERSION})
