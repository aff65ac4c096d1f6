"""UDP counters of a lab host's network namespace (/proc/net/snmp): what a receiver dropped."""

from __future__ import annotations

import subprocess
import sys

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


def _table(text: str, prefix: str) -> dict[str, int]:
    """One `Prefix:` table of /proc/net/snmp or /proc/net/netstat (a header line, then a value line)."""
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith(prefix + ":")]
    if len(rows) < 2:
        return {}
    return {name: int(value) for name, value in zip(rows[0], rows[1], strict=False)}


def namespace_counters(host: LabHost) -> dict[str, dict[str, int]]:
    """Udp, Tcp and TcpExt counters of the host's namespace, read in one process."""
    # this interpreter reads them inside the namespace: nothing but nsenter is needed on PATH
    read = "import sys\nfor p in ('/proc/net/snmp', '/proc/net/netstat'):\n    sys.stdout.write(open(p).read())"
    out = subprocess.run(host.command([sys.executable, "-c", read]), capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return {table: _table(out, table) for table in ("Udp", "Tcp", "TcpExt")}


def link_counters(host: LabHost, ifname: str | None = None) -> dict[str, int]:
    """rx/tx packet, byte and drop counters of the host's interface (its lab veth by default), read with
    `ip -s` inside the namespace (a plain nsenter --net still shows the root namespace's /sys)."""
    import json

    name = ifname or host.ifname
    out = subprocess.run(host.command(["ip", "-j", "-s", "link", "show", "dev", name]), capture_output=True,
                         text=True, check=True, timeout=30).stdout
    stats = json.loads(out)[0]["stats64"]
    return {f"{side}_{key}": int(stats[side][key]) for side in ("rx", "tx") for key in ("packets", "bytes", "dropped")}


def delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """after − before, table by table."""
    return {t: udp_delta(before.get(t, {}), after[t]) for t in after}
