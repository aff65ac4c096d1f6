"""The figures of a run, drawn one way for the HTML report and the notebook: percentile distributions per case
group on a log "nines" axis (latlab solid, references dashed), a CDF per group, the stack matrix (latency
against payload, one line per stack), multicast loss and latency per rate, tick-to-trade stages,
the router's cost of latency across venues.

Each function takes a run folder and its summary and returns (title, Figure) pairs; nothing is written here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from latlab.analysis import nines_ticks, read_hgrm
from latlab.report import matrix_rows

Figures = Iterator[tuple[str, Figure]]


def _groups(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for case in summary["cases"]:
        if case.get("files", {}).get("hgrm"):
            groups.setdefault(case["group"], []).append(case)
    return groups


def percentiles(run_dir: Path, summary: dict[str, Any]) -> Figures:
    """Per case group: each engine's percentile distribution on a log nines axis."""
    ticks, labels = nines_ticks(5)
    for group, cases in _groups(summary).items():
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        for case in cases:
            dist = read_hgrm(run_dir / case["files"]["hgrm"])
            keep = dist.percentile < 1.0
            ax.plot(1.0 / (1.0 - dist.percentile[keep]), dist.value_us[keep],
                    "-" if case["role"] == "own" else "--", label=f"{case['engine']} ({case['metric']})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ticks, labels)
        ax.set_xlabel("percentile")
        ax.set_ylabel("µs")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        yield group, fig


def cdfs(run_dir: Path, summary: dict[str, Any]) -> Figures:
    """Per case group: the CDF of each engine (one axis per group, never forty curves on one)."""
    for group, cases in _groups(summary).items():
        fig, ax = plt.subplots(figsize=(7.5, 3.0))
        for case in cases:
            dist = read_hgrm(run_dir / case["files"]["hgrm"])
            ax.plot(dist.value_us, dist.percentile, "-" if case["role"] == "own" else "--", label=case["engine"])
        ax.set_xscale("log")
        ax.set_xlabel("µs")
        ax.set_ylabel("fraction ≤ x")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        yield f"CDF: {group}", fig


def stack_matrix(run_dir: Path, summary: dict[str, Any]) -> Figures:
    """Latency against payload, one line per stack (p50 solid, p99 dashed), per protocol and receive mode; only
    rows whose evidence showed the stack carried the traffic."""
    rows = [r for r in matrix_rows(summary["cases"]) if r["stats_ns"].get("count") and r["evidence"] is not False
            and r["size"]]
    panels = sorted({(r["proto"], r["receive"]) for r in rows})
    if len({r["stack"] for r in rows}) < 2:
        return
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (proto, receive) in zip(axes.flat, panels, strict=False):  # more axes than panels: hidden above
        for stack, engine in sorted({(r["stack"], r["engine"]) for r in rows if (r["proto"], r["receive"]) ==
                                     (proto, receive)}):
            pts = sorted((r["size"], r["stats_ns"]) for r in rows
                         if (r["stack"], r["engine"], r["proto"], r["receive"]) == (stack, engine, proto, receive))
            sizes = [s for s, _ in pts]
            (line,) = ax.plot(sizes, [st["p50"] / 1e3 for _, st in pts], marker="o", label=f"{stack} ({engine})")
            ax.plot(sizes, [st["p99"] / 1e3 for _, st in pts], "--", color=line.get_color(), alpha=0.6)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("payload (bytes)")
        ax.set_ylabel("RTT µs (p50 solid, p99 dashed)")
        ax.set_title(f"{proto.upper()}, {receive}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    yield "stack matrix: latency against payload", fig


def multicast_sweep(run_dir: Path, summary: dict[str, Any]) -> Figures:
    """Loss and one-way latency per offered rate."""
    sweep = [c for c in summary["cases"] if c["group"] == "mcast sweep" and c.get("stats_ns", {}).get("count")]
    if not sweep:
        return
    rates = [c["params"]["rate"] for c in sweep]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax1.plot(rates, [c["figures"].get("loss %", 0) for c in sweep], marker="o")
    ax1.set_xscale("log")
    ax1.set_xlabel("offered messages/s")
    ax1.set_ylabel("loss % (before recovery)")
    for name in ("p50", "p99", "p99.9"):
        ax2.plot(rates, [c["stats_ns"].get(name, 0) / 1e3 for c in sweep], marker="o", label=name)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("offered messages/s")
    ax2.set_ylabel("one-way µs")
    ax2.legend()
    fig.tight_layout()
    yield "multicast: loss and latency per rate", fig


def tick_to_trade(run_dir: Path, summary: dict[str, Any]) -> Figures:
    """The trader's stages (p50 and p99 each) and the wire-to-wire distributions."""
    t2t = [c for c in summary["cases"] if c["group"].startswith("tick-to-trade") and c.get("stats_ns", {}).get("count")]
    stages = [c for c in t2t if c["group"].endswith("stages") and c["engine"].startswith("stage ")
              and "(" not in c["engine"]]
    if not stages:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    for q, offset in (("p50", -0.2), ("p99", 0.2)):
        ax1.bar([i + offset for i in range(len(stages))], [c["stats_ns"][q] / 1e3 for c in stages], width=0.4,
                label=q)
    ax1.set_xticks(range(len(stages)), [c["engine"].removeprefix("stage ") for c in stages], rotation=30)
    ax1.set_yscale("log")
    ax1.set_ylabel("µs per stage")
    ax1.set_title("trader stages (kernel rx → sent)")
    ax1.legend()
    for c in t2t:
        if c["metric"] == "wire-to-wire" and c.get("files", {}).get("hgrm"):
            dist = read_hgrm(run_dir / c["files"]["hgrm"])
            ax2.plot(dist.value_us, dist.percentile, label=c["engine"])
    ax2.set_xscale("log")
    ax2.set_xlabel("wire-to-wire µs (exchange side)")
    ax2.set_ylabel("percentile")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    yield "tick-to-trade: stages and wire-to-wire", fig


def venues(run_dir: Path, summary: dict[str, Any]) -> Figures:
    """The smart order router against the slow venue's added response time: what it missed there and the
    slippage it paid, and its parent completion (p50, p99)."""
    sweep = sorted((c for c in summary["cases"] if c["group"] == "venues: smart order router"
                    and "slow_extra_us" in c.get("params", {})), key=lambda c: c["params"]["slow_extra_us"])
    if not sweep:
        return
    delays = [c["params"]["slow_extra_us"] for c in sweep]
    missed = next((k for k in sweep[0]["figures"] if k.startswith("missed at ")), "")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    ax1.plot(delays, [c["figures"].get(missed, 0) for c in sweep], marker="o", label=f"{missed} (shares)")
    ax1.set_xlabel("slow venue's added response time µs")
    ax1.set_ylabel("shares per parent")
    twin = ax1.twinx()
    twin.plot(delays, [c["figures"].get("slippage ¢/share", 0) for c in sweep], marker="s", color="tab:red",
              label="slippage ¢/share (fees included)")
    twin.set_ylabel("¢ per share")
    ax1.legend(loc="upper left", fontsize=7)
    twin.legend(loc="lower right", fontsize=7)
    ax1.set_title("cost of latency")
    for q in ("p50", "p99"):
        ax2.plot(delays, [c.get("stats_ns", {}).get(q, 0) / 1e3 for c in sweep], marker="o", label=q)
    ax2.set_xlabel("slow venue's added response time µs")
    ax2.set_ylabel("parent completion µs")
    ax2.legend()
    fig.tight_layout()
    yield "venues: the cost of latency", fig


SECTIONS = (stack_matrix, tick_to_trade, venues, multicast_sweep, percentiles, cdfs)


def all_figures(run_dir: Path, summary: dict[str, Any]) -> Figures:
    """Every figure of the run, in the HTML report's order; each is closed after the caller has used it."""
    for section in SECTIONS:
        for title, fig in section(run_dir, summary):
            try:
                yield title, fig
            finally:
                plt.close(fig)
