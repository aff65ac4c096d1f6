"""RDMA devices and GIDs from sysfs: find the RoCEv2 IPv4 GID of a netdev, or say what exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from latlab.errors import LatlabError

SYSFS = Path("/sys/class/infiniband")


@dataclass(frozen=True)
class Gid:
    device: str
    port: int
    index: int
    gid: str
    type: str
    netdev: str

    @property
    def ipv4(self) -> str | None:
        """The IPv4 address of an IPv4-mapped GID (::ffff:a.b.c.d)."""
        raw = self.gid.replace(":", "")
        if len(raw) == 32 and raw.startswith("0" * 20 + "ffff"):
            return ".".join(str(int(raw[24 + 2 * i:26 + 2 * i], 16)) for i in range(4))
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def devices(root: Path = SYSFS) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def gids(device: str, root: Path = SYSFS) -> list[Gid]:
    """Every populated GID of every port of `device`."""
    out = []
    ports = root / device / "ports"
    for port_dir in sorted(ports.iterdir()) if ports.is_dir() else []:
        port = int(port_dir.name)
        for gid_file in sorted((port_dir / "gids").iterdir(), key=lambda p: int(p.name)):
            gid = _read(gid_file)
            if not gid or gid.replace(":", "").strip("0") == "":
                continue
            idx = gid_file.name
            out.append(Gid(device, port, int(idx), gid, _read(port_dir / "gid_attrs" / "types" / idx),
                           _read(port_dir / "gid_attrs" / "ndevs" / idx)))
    return out


def describe(root: Path = SYSFS) -> str:
    """All devices and their GIDs, for error messages."""
    lines = []
    for dev in devices(root):
        lines.append(dev)
        lines += [f"  port {g.port} gid {g.index}: {g.gid} {g.type} {g.netdev}" for g in gids(dev, root)]
    return "\n".join(lines) or "no RDMA devices (/sys/class/infiniband is empty or absent)"


def pick_gid(device: str, port: int = 1, index: int | None = None, netdev: str | None = None,
             root: Path = SYSFS) -> Gid:
    """The GID to use: `index` if given, else the RoCEv2 IPv4 GID (of `netdev` when given)."""
    if device not in devices(root):
        raise LatlabError(f"no RDMA device {device!r}; have:\n{describe(root)}")
    table = [g for g in gids(device, root) if g.port == port]
    if not table:
        raise LatlabError(f"{device} has no GIDs on port {port}; have:\n{describe(root)}")
    if index is not None:
        for g in table:
            if g.index == index:
                return g
        raise LatlabError(f"{device} port {port} has no GID index {index}; have:\n{describe(root)}")
    for g in table:
        if g.type == "RoCE v2" and g.ipv4 and (netdev is None or g.netdev == netdev):
            return g
    raise LatlabError(f"{device} port {port} has no RoCE v2 IPv4 GID{f' on {netdev}' if netdev else ''}; "
                      f"have:\n{describe(root)}")


def rxe_loadable() -> bool:
    """Whether soft-RoCE can be set up on this host without a VM: rdma_rxe is loaded, built in, or loadable."""
    if Path("/sys/module/rdma_rxe").exists():
        return True
    if not Path("/proc/modules").exists():
        return False
    import subprocess

    return subprocess.run(["modprobe", "-n", "rdma_rxe"], capture_output=True, timeout=30).returncode == 0
