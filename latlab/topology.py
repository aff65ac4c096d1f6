"""The built-in lab: hosts as network namespaces joined by a veth pair (pyroute2), or loopback.

A Lab is what benchmarks see: named hosts with an address, a CPU and a way to run a command there.
Namespaces and links are named after the run's tag and removed by those names.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field

from latlab import leftovers
from latlab.config import CpuId, Schema, interface_address, validate
from latlab.cpu import available_cpus
from latlab.errors import ConfigError, LabUnavailable

NETNS_DIR = "/run/netns"


def pyroute2_configured() -> None:
    """Configure pyroute2 before use. It forks short-lived helpers to work inside namespaces and stops them
    with a signal: without `disable_mp_signal` a helper keeps this process's handlers, so a SIGTERM becomes a
    KeyboardInterrupt that unwinds the helper's copy of the caller (and would finish the run twice). Its
    2-second reply deadline is also too short on a loaded 2-core machine."""
    from pyroute2 import config

    config.disable_mp_signal = True
    config.default_communicate_timeout = 30


@dataclass(frozen=True)
class LabHost:
    """One host of the lab."""

    name: str
    address: str
    cpu: int | None
    netns: str | None = None
    ifname: str = "lo"

    def command(self, argv: Sequence[str]) -> list[str]:
        """argv that runs in this host's network namespace."""
        if self.netns is None:
            return list(argv)
        return ["nsenter", f"--net={NETNS_DIR}/{self.netns}", "--", *argv]


@dataclass
class Lab:
    """The hosts of a lab and how they are joined."""

    kind: str
    hosts: dict[str, LabHost]
    mtu: int
    namespaces: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, object]:
        """What the manifest records of the topology."""
        return {
            "kind": self.kind,
            "mtu": self.mtu,
            "hosts": {h.name: {"address": h.address, "cpu": h.cpu, "netns": h.netns, "ifname": h.ifname}
                      for h in self.hosts.values()},
        }


@dataclass(frozen=True)
class LabSpec:
    """The validated `lab` section of the config."""

    mtu: int
    addresses: dict[str, ipaddress.IPv4Interface]
    cpus: dict[str, int | None]


class HostConfig(Schema):
    """One host of the `lab` section."""

    address: str  # with prefix length: 10.77.0.1/24
    cpu: CpuId | None = None  # null or absent: unpinned


class HostsConfig(Schema):
    a: HostConfig
    b: HostConfig


class LabConfig(Schema):
    """The `lab` section: the MTU and the two hosts `a` and `b`."""

    mtu: Annotated[int, Field(ge=576, le=65535)] = 1500
    hosts: HostsConfig | None = None


def parse_lab(data: Mapping[str, Any] | None, path: str = "lab") -> LabSpec:
    """Validate the `lab` section: two hosts `a` and `b` with address/prefix, optional cpu, and an MTU.
    Without a `hosts` mapping the lab is a 10.77.0.1/.2 pair on CPUs 0 and 1 (or 0 and 0 on one CPU)."""
    section = validate(LabConfig, data, path)
    cpu_ids = available_cpus()
    hosts = section.hosts or HostsConfig(a=HostConfig(address="10.77.0.1/24", cpu=cpu_ids[0]),
                                         b=HostConfig(address="10.77.0.2/24", cpu=cpu_ids[1 % len(cpu_ids)]))
    addresses: dict[str, ipaddress.IPv4Interface] = {}
    cpus: dict[str, int | None] = {}
    for name in ("a", "b"):
        host: HostConfig = getattr(hosts, name)
        addresses[name] = interface_address(host.address, f"{path}.hosts.{name}.address")
        if host.cpu is not None and host.cpu not in cpu_ids:
            raise ConfigError(f"{path}.hosts.{name}.cpu", f"cpu {host.cpu} is not available (have {cpu_ids})")
        cpus[name] = host.cpu
    if addresses["a"].network != addresses["b"].network:
        raise ConfigError(f"{path}.hosts.b.address", "must be in the same subnet as hosts.a.address")
    if addresses["a"].ip == addresses["b"].ip:
        raise ConfigError(f"{path}.hosts.b.address", "must differ from hosts.a.address")
    return LabSpec(mtu=section.mtu, addresses=addresses, cpus=cpus)


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be built here, or None when they can."""
    if os.geteuid() != 0:
        return "the two-namespace lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    if not os.path.exists("/proc/self/ns/net"):
        return "this kernel has no network namespace support (CONFIG_NET_NS)"
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return "pyroute2 is not installed: `make setup`"
    return None


TWO_HOST = "two-host"  # a benchmark's `lab`: the a/b pair of the `lab` section, built by the core
OWN = "own"  # a benchmark's `lab`: each case builds its own path and describes it in its results


@contextlib.contextmanager
def no_lab() -> Iterator[Lab]:
    """No shared lab: every selected benchmark builds its own path (a bridge, a VM) and its cases say which."""
    yield Lab(kind="none shared: each case records the path it ran on (summary.json, cases[].path)", hosts={},
              mtu=0)


@contextlib.contextmanager
def local_lab(spec: LabSpec) -> Iterator[Lab]:
    """Both hosts on loopback in the current namespace (the fallback that needs no privileges)."""
    yield Lab(kind="local loopback (one namespace)", mtu=65536, hosts={
        name: LabHost(name=name, address="127.0.0.1", cpu=spec.cpus[name]) for name in ("a", "b")})


@contextlib.contextmanager
def two_host_lab(spec: LabSpec, tag: str) -> Iterator[Lab]:
    """Two namespaces `latlab-<tag>-a/b` joined by veth `ll<tag>a`/`ll<tag>b`; removed on exit."""
    reason = netns_unavailable_reason()
    if reason:
        raise LabUnavailable(f"{reason}; run with --local to use loopback in one namespace instead")
    names = {h: f"latlab-{tag}-{h}" for h in ("a", "b")}
    ifnames = {h: f"ll{tag}{h}"[:15] for h in ("a", "b")}
    created: list[str] = []
    try:
        try:
            _build_pair(spec, names, ifnames, created, tag)
        except OSError as exc:
            raise LabUnavailable(f"could not build the namespace lab: {exc}; --local runs on loopback") from exc
        hosts = {h: LabHost(name=h, address=str(spec.addresses[h].ip), cpu=spec.cpus[h], netns=names[h],
                            ifname=ifnames[h]) for h in ("a", "b")}
        yield Lab(kind="two-host netns over veth", hosts=hosts, mtu=spec.mtu, namespaces=list(created))
    finally:
        _removed(created, tag)


def _new_namespace(name: str, tag: str, created: list[str]) -> None:
    """Create a namespace, claimed for this run first (so that a SIGKILL at any point leaves nothing unclaimed)."""
    from pyroute2 import netns

    leftovers.claim(tag, [name])
    try:
        netns.create(name)
    except BaseException:
        # not ours (it existed: EEXIST) or never made: a later `latlab clean` must not remove it in our name
        leftovers.release(tag, [name])
        raise
    created.append(name)


def _removed(created: list[str], tag: str) -> None:
    remove_namespaces(created)
    leftovers.release(tag, created)


def _build_pair(spec: LabSpec, names: dict[str, str], ifnames: dict[str, str], created: list[str],
                tag: str) -> None:
    pyroute2_configured()
    from pyroute2 import IPRoute, NetNS

    for ns in names.values():
        _new_namespace(ns, tag, created)
    with IPRoute() as ipr:
        ipr.link("add", ifname=ifnames["a"], kind="veth",
                 peer={"ifname": ifnames["b"], "net_ns_fd": names["b"]})
        index = ipr.link_lookup(ifname=ifnames["a"])[0]
        ipr.link("set", index=index, net_ns_fd=names["a"])
    for h in ("a", "b"):
        with NetNS(names[h]) as ns:
            index = ns.link_lookup(ifname=ifnames[h])[0]
            ns.link("set", index=index, mtu=spec.mtu)
            iface = spec.addresses[h]
            ns.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            ns.link("set", index=index, state="up")
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")


def remove_namespaces(names: Sequence[str]) -> None:
    """Delete namespaces by name (their veth ends go with them); missing ones are ignored."""
    pyroute2_configured()
    from pyroute2 import netns

    for name in names:
        with contextlib.suppress(OSError, FileNotFoundError):
            netns.remove(name)


@dataclass(frozen=True)
class BridgeSpec:
    """Hosts on one Ethernet segment: a publisher and N subscribers, one subnet, an MTU."""

    network: ipaddress.IPv4Network
    names: tuple[str, ...]
    cpus: dict[str, int | None]
    mtu: int = 1500

    def address(self, index: int) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.network.network_address + index + 1}/{self.network.prefixlen}")


@contextlib.contextmanager
def bridge_lab(spec: BridgeSpec, tag: str, root_address: str | None = None) -> Iterator[Lab]:
    """Hosts `latlab-<tag>-<name>` joined through a Linux bridge in namespace `latlab-<tag>-sw`.

    Each host gets one veth into the bridge, its address, and a 224.0.0.0/4 route on that veth, so
    multicast sent by one host reaches the others (the bridge floods or snoops IGMP joins). With
    `root_address` (address/prefix) this namespace joins the bridge too, as a controller (`ll<tag>r`),
    so that tools here (ssh, Ansible) reach the hosts; that link is deleted on exit as well.
    """
    reason = netns_unavailable_reason()
    if reason:
        raise LabUnavailable(f"{reason}; the multicast lab needs namespaces")
    created: list[str] = []
    try:
        try:
            hosts = _build_bridge(spec, tag, created)
            if root_address:
                _attach_root(tag, root_address)
        except OSError as exc:
            raise LabUnavailable(f"could not build the bridge lab: {exc}") from exc
        yield Lab(kind=f"{len(spec.names)} netns hosts on a Linux bridge", hosts=hosts, mtu=spec.mtu,
                  namespaces=list(created))
    finally:
        _removed(created, tag)


def _attach_root(tag: str, address: str) -> None:
    from pyroute2 import IPRoute, NetNS

    iface = ipaddress.IPv4Interface(address)
    inner, outer = f"ll{tag}r", f"ll{tag}rs"
    with IPRoute() as ipr:
        ipr.link("add", ifname=inner, kind="veth", peer={"ifname": outer, "net_ns_fd": f"latlab-{tag}-sw"})
        index = ipr.link_lookup(ifname=inner)[0]
        ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        ipr.link("set", index=index, state="up")
    with NetNS(f"latlab-{tag}-sw") as sw:
        port = sw.link_lookup(ifname=outer)[0]
        sw.link("set", index=port, master=sw.link_lookup(ifname="br0")[0], state="up")


def _build_bridge(spec: BridgeSpec, tag: str, created: list[str]) -> dict[str, LabHost]:
    pyroute2_configured()
    from pyroute2 import IPRoute, NetNS

    switch = f"latlab-{tag}-sw"
    _new_namespace(switch, tag, created)
    with NetNS(switch) as sw:
        sw.link("add", ifname="br0", kind="bridge")
        bridge = sw.link_lookup(ifname="br0")[0]
        sw.link("set", index=bridge, mtu=spec.mtu, state="up")
    hosts: dict[str, LabHost] = {}
    for i, name in enumerate(spec.names):
        ns_name = f"latlab-{tag}-{name}"
        _new_namespace(ns_name, tag, created)
        inner, outer = f"ll{tag}{i}", f"ll{tag}{i}s"
        with IPRoute() as ipr:
            ipr.link("add", ifname=inner, kind="veth", peer={"ifname": outer, "net_ns_fd": switch})
            ipr.link("set", index=ipr.link_lookup(ifname=inner)[0], net_ns_fd=ns_name)
        with NetNS(switch) as sw:
            port = sw.link_lookup(ifname=outer)[0]
            sw.link("set", index=port, master=sw.link_lookup(ifname="br0")[0], mtu=spec.mtu, state="up")
        iface = spec.address(i)
        with NetNS(ns_name) as ns:
            index = ns.link_lookup(ifname=inner)[0]
            ns.link("set", index=index, mtu=spec.mtu)
            ns.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            ns.link("set", index=index, state="up")
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            ns.route("add", dst="224.0.0.0/4", oif=index)
        hosts[name] = LabHost(name=name, address=str(iface.ip), cpu=spec.cpus.get(name), netns=ns_name,
                              ifname=inner)
    return hosts
