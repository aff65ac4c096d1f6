"""The stacks of the ping-pong matrix, by name. Imported lazily: a stack's module loads when asked for."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toe_bench.stacks.base import Stack

# name -> (module, class); the order is the report's
REGISTRY = {
    "kernel": ("toe_bench.stacks.kernel", "KernelStack"),
    "busy-poll": ("toe_bench.stacks.kernel", "BusyPollStack"),
    "af_xdp": ("toe_bench.stacks.af_xdp", "AfXdpStack"),
    "dpdk": ("toe_bench.stacks.dpdk", "DpdkStack"),
    "onload": ("toe_bench.stacks.onload", "OnloadStack"),
    "vma": ("toe_bench.stacks.vendor_nic", "VmaStack"),
    "xlio": ("toe_bench.stacks.vendor_nic", "XlioStack"),
    "toe": ("toe_bench.stacks.vendor_nic", "ChelsioToeStack"),
}
NAMES = tuple(REGISTRY)


def get(name: str) -> Stack:
    """A fresh instance of the named stack."""
    module, cls = REGISTRY[name]
    return getattr(import_module(module), cls)()
