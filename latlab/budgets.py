"""Latency budgets: what each path of a trading system may take, and each measured row against it.

A benchmark marks a row with the path it measures (`CaseResult.budget`): `tick_to_trade` (a market-data
packet in to the order out), `order_round_trip` (an order out to its answer, at the gateway) or
`market_data_one_way` (the feed's publisher to a subscriber). The `budgets` section of the config gives each
path its limit in µs; the defaults are the usual figures: HFT tick-to-trade under 100 µs, a broker's
algorithms within 1–10 ms at the gateway (10 ms), a retail backend's market data under 10 ms.

A row is within its budget when its p99 is; the report shows the headroom at p50 and p99 (budget − the
percentile: negative is over).
"""

from __future__ import annotations

import textwrap
from typing import Annotated, Any

from pydantic import Field

from latlab.config import Schema

PATHS = ("tick_to_trade", "order_round_trip", "market_data_one_way")
Micros = Annotated[float, Field(gt=0, le=3.6e9)]


class BudgetsConfig(Schema):
    """The `budgets` section: µs per path."""

    tick_to_trade_us: Micros = 100.0           # HFT: a market-data packet in, the order out
    order_round_trip_us: Micros = 10_000.0     # a broker's algorithms at the gateway: 1–10 ms
    market_data_one_way_us: Micros = 10_000.0  # a retail backend's market data

    def limit_us(self, path: str) -> float:
        return float(getattr(self, f"{path}_us"))


def judge(cases: list[dict[str, Any]], budgets: BudgetsConfig) -> dict[str, Any]:
    """The budgets and, for every case marked with a path and measured, its p50 and p99 against the limit."""
    rows = []
    for case in cases:
        path, st = case.get("budget", ""), case.get("stats_ns", {})
        if path not in PATHS or not st.get("count"):
            continue
        limit = budgets.limit_us(path)
        p50, p99 = st["p50"] / 1000, st["p99"] / 1000
        rows.append({"path": path, "group": case["group"], "engine": case["engine"], "trial": case.get("trial", 1),
                     "budget_us": limit, "p50_us": p50, "p99_us": p99, "headroom_p50_us": limit - p50,
                     "headroom_p99_us": limit - p99, "within": p99 <= limit, "count": st["count"]})
    return {"limits_us": {path: budgets.limit_us(path) for path in PATHS}, "rows": rows}


def report_lines(judged: dict[str, Any] | None, cols: int) -> list[str]:
    """The report's section: each measured path against its budget, and the paths no row measured."""
    if not judged:
        return []
    lines = ["", "latency budgets (within: p99 ≤ budget; headroom = budget − percentile, µs)"]
    measured = set()
    for r in judged["rows"]:
        measured.add(r["path"])
        verdict = "within" if r["within"] else "OVER"
        trial = f" (trial {r['trial']})" if r["trial"] != 1 else ""
        lines.append(f"  {r['path']} ≤ {r['budget_us']:,.0f}: {verdict:6} p50 {r['p50_us']:,.1f} "
                     f"(headroom {r['headroom_p50_us']:,.1f})  p99 {r['p99_us']:,.1f} "
                     f"(headroom {r['headroom_p99_us']:,.1f})")
        lines += textwrap.wrap(f"{r['group']} · {r['engine']}{trial}", cols, initial_indent="      ",
                               subsequent_indent="      ")
    unmeasured = [p for p in PATHS if p not in measured]
    if unmeasured:
        lines += textwrap.wrap("not measured in this run: " + ", ".join(
            f"{p} (≤ {judged['limits_us'][p]:,.0f})" for p in unmeasured), cols, initial_indent="  ",
            subsequent_indent="  ")
    return lines
