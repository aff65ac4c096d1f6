"""Packet loss injected with nftables inside a lab host (this kernel has no netem)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

from latlab.errors import LatlabError
from latlab.procs import require_tool
from latlab.topology import LabHost


@contextlib.contextmanager
def udp_loss(host: LabHost, port: int, percent: float, name: str) -> Iterator[None]:
    """Drop `percent` % of UDP datagrams to `port` arriving at `host`; the table `name` is deleted on exit."""
    if percent <= 0:
        yield
        return
    require_tool("nft", "nftables")
    if not 0 < percent < 100:
        raise LatlabError(f"loss percent must be between 0 and 100, got {percent}")
    # numgen draws 0..9999, so fractional percentages (0.5 %) are honoured too.
    threshold = round(percent * 100)
    ruleset = "\n".join([
        f"table inet {name} {{",
        "  chain ingress {",
        "    type filter hook prerouting priority -300;",
        f"    udp dport {port} numgen random mod 10000 < {threshold} counter drop",
        "  }",
        "}",
        "",
    ])
    _nft(host, ["-f", "-"], ruleset)
    try:
        yield
    finally:
        _nft(host, ["delete", "table", "inet", name], None, check=False)


def dropped(host: LabHost, name: str) -> int:
    """Packets the loss rule has dropped so far."""
    out = _nft(host, ["list", "table", "inet", name], None)
    for word_index, word in enumerate(out.split()):
        if word == "packets":
            return int(out.split()[word_index + 1])
    return 0


def _nft(host: LabHost, args: list[str], stdin: str | None, check: bool = True) -> str:
    res = subprocess.run(host.command(["nft", *args]), input=stdin, capture_output=True, text=True, timeout=10)
    if check and res.returncode != 0:
        raise LatlabError(f"nft {' '.join(args)} in {host.name}: {res.stderr.strip()}")
    return res.stdout
