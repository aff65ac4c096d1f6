"""Latency budgets: each measured path against the limit the config gives it."""

from __future__ import annotations

import pytest

from latlab import budgets
from latlab.bench import check_sections
from latlab.budgets import BudgetsConfig
from latlab.config import validate
from latlab.errors import ConfigError


def _case(path: str, p50_us: float, p99_us: float, engine: str = "latlab", count: int = 1000) -> dict:
    return {"group": "g", "engine": engine, "budget": path,
            "stats_ns": {"p50": p50_us * 1000, "p99": p99_us * 1000, "count": count}}


def test_a_row_is_within_when_its_p99_is_and_headroom_is_budget_minus_percentile():
    cfg = validate(BudgetsConfig, {"tick_to_trade_us": 50}, "budgets")
    judged = budgets.judge([_case("tick_to_trade", 20, 45), _case("tick_to_trade", 20, 60, engine="slow"),
                            _case("market_data_one_way", 30, 80), _case("", 1, 2),
                            _case("tick_to_trade", 1, 2, engine="empty", count=0)], cfg)
    assert judged["limits_us"] == {"tick_to_trade": 50, "order_round_trip": 10_000, "market_data_one_way": 10_000}
    fast, slow, md = judged["rows"]  # unmarked and unmeasured rows are not judged
    assert (fast["within"], fast["headroom_p50_us"], fast["headroom_p99_us"]) == (True, 30, 5)
    assert (slow["within"], slow["headroom_p99_us"]) == (False, -10)  # over at p99 though within at p50
    assert md["path"] == "market_data_one_way" and md["within"]
    text = "\n".join(budgets.report_lines(judged, 100))
    assert "tick_to_trade ≤ 50: within p50 20.0 (headroom 30.0)  p99 45.0 (headroom 5.0)" in text
    assert "tick_to_trade ≤ 50: OVER" in text and "not measured in this run: order_round_trip (≤ 10,000)" in text


@pytest.mark.parametrize(("section", "named"), [
    ({"tick_to_trade": 100}, "budgets.tick_to_trade: unknown key; did you mean 'tick_to_trade_us'?"),
    ({"order_round_trip_us": 0}, "budgets.order_round_trip_us: input should be greater than 0"),
    ({"market_data_one_way_us": "fast"}, "budgets.market_data_one_way_us"),
])
def test_a_bad_budget_is_refused_naming_the_key(section, named):
    with pytest.raises(ConfigError, match="budgets") as err:
        check_sections({"budgets": section})
    assert named in str(err.value)
