"""The venues benchmark: two exchange simulators quoting in step, the smart order router on both, a participant
colocated at the slow venue; its config, the cost of latency over a sweep, and a venue killed mid-session."""

from __future__ import annotations

import dataclasses
import ipaddress

import numpy as np
import pytest

from latlab.errors import ConfigError
from latlab.topology import BridgeSpec, bridge_lab
from trader.venues_plugin import HOSTS, VenuesCase, configure, point_figures, slope
from trader.venues_run import PARTICIPANT, ROUTER, run_venues

from .conftest import needs_netns

# The participant waits 2 ms after the slow venue's quotes; the slow venue holds the router's orders 0 or 8 ms:
# margins far wider than this machine's noise, so who takes the quote is decided by the added time alone.
SETUP = dataclasses.replace(configure({"rounds": 20, "participant_react_us": 2000, "delays_us": [0, 8000],
                                       "network": "10.81.7.0/24", "group": "239.77.7.1"}))


def test_a_typo_or_an_impossible_sweep_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"venues\.delay_us"):
        configure({"delay_us": [0]})
    with pytest.raises(ConfigError, match="delays_us must be below quote_ms"):
        configure({"delays_us": [0, 15000], "quote_ms": 15})
    with pytest.raises(ConfigError, match=r"venues\.slow\.quotes\.shares"):
        configure({"slow": {"name": "S", "quotes": [{"ticks": 0, "shares": 0}]}})
    with pytest.raises(ConfigError, match="different names"):
        configure({"slow": {"name": "FAST", "quotes": [{"ticks": 0, "shares": 100}]}})


def test_the_slope_is_least_squares_and_undefined_on_one_point():
    assert slope([0, 100, 200], [1.0, 2.0, 3.0]) == pytest.approx(0.01)
    assert np.isnan(slope([0, 0], [1.0, 2.0]))


@pytest.fixture(scope="module")
def vlab():
    spec = BridgeSpec(ipaddress.IPv4Network(SETUP.network), HOSTS, dict.fromkeys(HOSTS))
    with bridge_lab(spec, "vn") as lab:
        yield lab


@needs_netns
def test_a_colocated_participant_takes_the_slow_venues_quote_once_the_venue_is_slow_enough(vlab, tmp_path):
    runs = [run_venues(vlab, SETUP, delay, tmp_path, f"d{k}") for k, delay in enumerate(SETUP.delays_us)]
    fast, slow = SETUP.fast.name, SETUP.slow.name
    best = min(SETUP.slow.quotes)[1]
    for run in runs:
        p = run.parents
        assert run.router.status == "ok" and run.router.parents >= 15
        assert run.router.counts["unknown_token_reports"] == 0 and not run.router.venues_down
        for venue in (fast, slow):  # every share the router counts, the venue counted too, and charged for
            assert run.exchanges[venue].venue["duplicate_tokens"] == 0
            taker_fee = SETUP.fast.taker_fee if venue == fast else SETUP.slow.taker_fee
            assert run.exchanges[venue].fees.get(ROUTER, 0) == run.taken(venue, ROUTER) * taker_fee
        assert run.taken(fast, ROUTER) + run.taken(slow, ROUTER) == int(p["filled"].sum())
        assert [run.taken(fast, ROUTER), run.taken(slow, ROUTER)] == p["filled_at"].sum(axis=0).tolist()
        # the split goes for the slow venue's better price first (unless a loaded machine let the quote go first)
        assert (p["asked"][:, 1] > 0).mean() >= 0.8
    at_once, held = runs
    quoted = [int((r.rounds[slow]["t_send"] > 0).sum()) for r in runs]  # a busy machine may skip a round
    # no added time: the router's child reaches the slow venue's best quote before the participant's
    assert at_once.taken(slow, PARTICIPANT) <= 0.25 * best * quoted[0], quoted
    # 8 ms added: the participant (2 ms, colocated) takes it nearly every round; the router misses, re-routes
    # to a worse price, and takes longer to complete
    assert held.taken(slow, PARTICIPANT) >= 0.75 * best * quoted[1], (quoted, held.participant, held.exchanges)
    a, h = point_figures(at_once, SETUP), point_figures(held, SETUP)
    assert h[f"missed at {slow} per parent"] > a[f"missed at {slow} per parent"] + 0.5 * best
    assert h["slippage ¢/share"] > a["slippage ¢/share"]
    assert h["reroutes per parent"] > a["reroutes per parent"]
    assert np.median(held.parents["completion_ns"]) > np.median(at_once.parents["completion_ns"])
    # the venue's added time is in the order round trip the router measures at its gateway, and only at that venue
    assert np.median(held.order_round_trip(slow)) >= 8e6 > np.median(at_once.order_round_trip(slow))
    assert np.median(held.order_round_trip(fast)) < 8e6
    rows = VenuesCase(SETUP)._rows(runs, True, "")
    by_group = {r.group: r for r in rows if r.role == "context"}
    cost = by_group["venues: cost of latency"].figures
    assert cost[f"missed shares per parent per µs at {slow}"] > 0 and cost["slippage ¢/share per µs"] > 0
    t2t = [r for r in rows if r.group.startswith("venues: tick-to-trade at")]
    assert [r.group for r in t2t] == [f"venues: tick-to-trade at {fast}", f"venues: tick-to-trade at {slow}"]
    assert all(len(r.samples_ns) >= 30 and r.budget == "tick_to_trade" for r in t2t)
    round_trips = [r for r in rows if r.group.startswith("venues: order round trip at")]
    assert len(round_trips) == 2 and all(len(r.samples_ns) >= 15 and r.budget == "order_round_trip"
                                         for r in round_trips)
    assert all(r.complete for r in rows)


@needs_netns
def test_a_venue_killed_mid_session_is_marked_down_and_the_router_goes_on_at_the_other(vlab, tmp_path):
    setup = dataclasses.replace(SETUP, rounds=60, receive="blocking", router_cpu=None)  # the other receive mode
    run = run_venues(vlab, setup, 0.0, tmp_path, "kill", kill_slow_after_s=0.4)  # about round 20 of 60
    assert setup.slow.name not in run.exchanges and setup.fast.name in run.exchanges
    assert run.router.status == "ok" and run.router.venues_down == [setup.slow.name]
    assert any("venue SLOW lost" in line for line in run.router.log)
    p = run.parents
    after = p["decided_ns"] > p["decided_ns"][0] + int(0.6e9)  # well after the kill: the fast venue alone
    assert after.sum() >= 10 and (p["asked"][after, 1] == 0).all() and (p["got"][after, 0] > 0).all()
    # the fast venue counts every share the router says it filled there; nothing was sent twice
    assert run.taken(setup.fast.name, ROUTER) == int(p["filled_at"][:, 0].sum())
    assert run.exchanges[setup.fast.name].venue["duplicate_tokens"] == 0


def test_the_cost_of_latency_figure_is_drawn_from_the_sweep_rows():
    from latlab import figures

    def point(delay: float, missed: float, p50: float) -> dict:
        return {"group": "venues: smart order router", "engine": f"router +{delay:g}", "metric": "parent completion",
                "params": {"slow_extra_us": delay}, "stats_ns": {"p50": p50, "p99": 2 * p50},
                "figures": {"missed at SLOW per parent": missed, "slippage ¢/share": 0.8 + missed / 300}}

    summary = {"cases": [point(800, 80, 9e5), point(0, 5, 4e5), {"group": "pingpong", "engine": "x"}]}
    [(title, fig)] = list(figures.venues(None, summary))
    try:
        assert title == "venues: the cost of latency"
        missed_axis, completion_axis = fig.axes[0], fig.axes[1]
        assert list(missed_axis.lines[0].get_xdata()) == [0, 800]      # sorted by the added time
        assert list(missed_axis.lines[0].get_ydata()) == [5, 80]
        assert list(completion_axis.lines[0].get_ydata()) == [400, 900]  # p50 in µs
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    assert list(figures.venues(None, {"cases": []})) == []
