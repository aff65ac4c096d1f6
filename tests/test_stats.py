"""The bootstrap interval of a percentile difference: it covers a known shift and narrows with more samples."""

from __future__ import annotations

import numpy as np
import pytest

from latlab.stats import percentile_difference_ci


def test_interval_covers_a_known_shift_and_narrows_with_samples():
    rng = np.random.default_rng(3)
    widths = []
    for n in (500, 8000):
        a = rng.lognormal(3.5, 0.4, n) + 1.0          # b shifted by exactly 1
        b = rng.lognormal(3.5, 0.4, n)
        diff, low, high = percentile_difference_ci(a, b)
        assert low < diff < high and low < 1.0 < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2                   # about 1/sqrt(16) as wide


def test_same_samples_give_zero_and_a_seeded_interval():
    x = np.arange(1000.0)
    assert percentile_difference_ci(x, x)[0] == 0.0
    assert percentile_difference_ci(x, x[::-1]) == percentile_difference_ci(x, x[::-1])
    with pytest.raises(ValueError):
        percentile_difference_ci(x, np.zeros(0))


def _paired(seed: int, n: int = 400, shift: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs that share a large common part (the moment's load): a = common + e, b = common − shift + f."""
    rng = np.random.default_rng(seed)
    common = rng.lognormal(3.0, 0.5, n)
    return common + rng.normal(0, 1, n), common - shift + rng.normal(0, 1, n)


def test_paired_interval_covers_the_true_difference_about_95_percent_of_the_time():
    from latlab.stats import paired_percentile_difference_ci

    hits = 0
    for seed in range(100):
        a, b = _paired(seed)
        _, low, high = paired_percentile_difference_ci(a, b, resamples=400, seed=seed)
        hits += low <= 2.0 <= high  # a and b differ by exactly the shift: the true p50 difference is 2
    assert 88 <= hits <= 100


def test_paired_interval_is_narrower_than_resampling_each_side_alone():
    from latlab.stats import paired_percentile_difference_ci

    paired, independent = [], []
    for seed in range(10):
        a, b = _paired(seed)
        _, low, high = paired_percentile_difference_ci(a, b, resamples=400)
        paired.append(high - low)
        _, low, high = percentile_difference_ci(a, b, resamples=400)
        independent.append(high - low)
    assert np.mean(paired) < 0.5 * np.mean(independent)
    with pytest.raises(ValueError):
        paired_percentile_difference_ci(np.ones(3), np.ones(4))


def test_paired_floor_samples_are_aligned_pair_by_pair():
    from trader.t2t_run import RunResult

    send = np.array([100, 200, 300, 400, 500, 600], np.int64)
    to_floor = np.array([True, False, False, True, True, False])
    # columns: TRADER, FLOOR; the trader missed the third pair's trigger (0: no order)
    rx = np.array([[0, 110], [230, 0], [0, 0], [0, 0], [0, 540], [0, 0]], np.int64)
    rx[2, 0], rx[3, 1] = 350, 420
    run = RunResult(users=["TRADER", "FLOOR"], t_send=send, t_rx=rx, filled=np.zeros(6, np.int64),
                    to_floor=to_floor, exchange={}, traders={}, stages={})
    trader, floor = run.paired_wire_to_wire("TRADER", "FLOOR")
    assert trader.tolist() == [30, 50] and floor.tolist() == [10, 20]  # the third pair has no trader answer


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_paired_triggers_follow_either_side_equally_often(seed):
    """The trigger before changes how fast the next one is received, so each side's triggers must follow the
    trader's and the floor's alike: one of each pair to the floor, and the pairs in alternating order."""
    from venue.exchange import floor_turns

    n = 400
    to_floor = floor_turns(n, seed)
    assert to_floor.reshape(-1, 2).sum(axis=1).tolist() == [1] * (n // 2)
    after_floor = to_floor[:-1]
    for mine in (to_floor[1:], ~to_floor[1:]):  # the floor's triggers, then the trader's
        assert abs(int(after_floor[mine].sum()) - int(mine.sum()) / 2) <= 1
    assert floor_turns(n, seed).tolist() == to_floor.tolist()
    assert {bool(floor_turns(n, s)[0]) for s in range(8)} == {True, False}  # the seed picks the first
    assert len(floor_turns(7, seed)) == 7


def test_app_cost_below_the_traders_own_work_is_flagged():
    """The trader does what the floor does and more: an app cost under its own decode → encoded p50 means the
    floor paid for something outside the application, and the row says so."""
    from trader.t2t_plugin import _below_own_work

    application = np.full(100, 300, np.int64)  # 0.30 µs
    assert _below_own_work({"app cost p50 µs": 0.35}, application) == ""
    caveat = _below_own_work({"app cost p50 µs": 0.12}, application)
    assert "0.12 µs is below the trader's own decode → encoded p50 (0.30 µs)" in caveat and "understates" in caveat
    # below it, but the interval reaches it: noise, not a bias
    assert _below_own_work({"app cost p50 µs": 0.22, "app cost p50 95% CI high µs": 0.34}, application) == ""
    assert "whole interval" in _below_own_work({"app cost p50 µs": 0.12, "app cost p50 95% CI high µs": 0.2},
                                               application)
    assert _below_own_work({}, application) == "" and _below_own_work({"app cost p50 µs": 0.1}, application[:0]) == ""
