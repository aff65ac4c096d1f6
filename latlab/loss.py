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
    if not 0 < percent < 100:
        raise LatlabError(f"loss percent must be between 0 and 100, got {percent}")
    # numgen draws 0..9999, so fractional percentages (0.5 %) are honoured too.
    with _drop_table(host, name, "prerouting",
                     f"udp dport {port} numgen random mod 10000 < {round(percent * 100)} counter drop"):
        yield


@contextlib.contextmanager
def tcp_blackhole(host: LabHost, port: int, direction: str, name: str) -> Iterator[None]:
    """Drop every TCP segment of `host`'s connections on its `port`, `direction` "out" (what the host sends
    from it) or "in" (what arrives for it), until the block ends; the table `name` is deleted on exit. TCP
    retransmits what is dropped, so what the application wrote is lost only if the connection dies meanwhile."""
    if direction not in ("in", "out"):
        raise LatlabError(f"direction must be 'in' or 'out', got {direction!r}")
    hook, match = ("output", f"tcp sport {port}") if direction == "out" else ("prerouting", f"tcp dport {port}")
    with _drop_table(host, name, hook, f"{match} counter drop"):
        yield


@contextlib.contextmanager
def _drop_table(host: LabHost, name: str, hook: str, rule: str) -> Iterator[None]:
    """An nft table `name` in the host's namespace holding one rule on `hook`, for the block."""
    require_tool("nft", "nftables")
    ruleset = f"table inet {name} {{\n  chain {hook} {{\n    type filter hook {hook} priority -300;\n" \
              f"    {rule}\n  }}\n}}\n"
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
