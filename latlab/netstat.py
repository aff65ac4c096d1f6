"""UDP counters of a lab host's network namespace (/proc/net/snmp): what a receiver dropped."""

from __future__ import annotations

import subprocess

from latlab.topology import LabHost


def udp_counters(host: LabHost) -> dict[str, int]:
    """The `Udp:` line of /proc/net/snmp as seen in `host`'s namespace (InDatagrams, RcvbufErrors, ...)."""
    out = subprocess.run(host.command(["cat", "/proc/net/snmp"]), capture_output=True, text=True, check=True,
                         timeout=30).stdout
    rows = [line.split()[1:] for line in out.splitlines() if line.startswith("Udp:")]
    if len(rows) < 2:
        return {}
    return {name: int(value) for name, value in zip(rows[0], rows[1], strict=False)}


def udp_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """after − before for every counter both hold."""
    return {k: after[k] - before[k] for k in after if k in before}
