import random

import pytest

from serverbench.results.inference import (
    Change,
    PrecisionGoal,
    fails_if_slower,
    median_ci,
    pair_by_round,
    paired_change,
    repeats_for,
    unpaired_change,
)


def test_a_95_percent_interval_of_the_median_needs_six_repeats():
    assert repeats_for(0.95) == 6
    assert repeats_for(0.75) == 3


def test_with_three_repeats_the_interval_is_min_max_and_says_it_is_only_75_percent_sure():
    estimate = median_ci([100.0, 90.0, 110.0])
    assert estimate is not None
    assert (estimate.median, estimate.low, estimate.high) == (100.0, 90.0, 110.0)
    assert estimate.confidence == pytest.approx(0.75)
    assert estimate.half_width_pct == pytest.approx(10.0)


def test_with_twenty_repeats_the_interval_drops_the_outer_order_statistics():
    estimate = median_ci([float(v) for v in range(1, 21)])
    assert estimate is not None
    # x(6)..x(15): 1 - 2 P(Bin(20, 1/2) <= 5) = 0.9586
    assert (estimate.low, estimate.high) == (6.0, 15.0)
    assert estimate.confidence == pytest.approx(0.9586, abs=1e-4)


def test_the_median_is_a_real_repeat_and_nothing_gives_none():
    estimate = median_ci([4.0, 1.0, 3.0, 2.0])
    assert estimate is not None
    assert estimate.median == 2.0
    assert median_ci([]) is None


@pytest.mark.parametrize("count", [6, 9])
def test_the_median_interval_covers_as_often_as_it_claims_even_for_skewed_values(count):
    rng = random.Random(7)
    trials, hits, claimed = 2000, 0, 1.0
    for _ in range(trials):
        # skewed: a few disturbed windows are much slower; the true median of 1/lognormal is 1
        values = [1 / rng.lognormvariate(0, 0.3) for _ in range(count)]
        estimate = median_ci(values)
        assert estimate is not None
        claimed = estimate.confidence
        hits += estimate.low <= 1.0 <= estimate.high
    assert claimed >= 0.95
    assert hits / trials >= claimed - 0.02


def test_paired_change_finds_a_ten_percent_loss_that_drift_between_rounds_hides():
    rng = random.Random(3)
    # each round's level drifts by +-15 %, far more than the 10 % between the sides
    levels = [rng.uniform(0.85, 1.15) * 10_000 for _ in range(8)]
    a = [level * rng.uniform(0.99, 1.01) for level in levels]
    b = [level * 0.9 * rng.uniform(0.99, 1.01) for level in levels]
    change = paired_change(a, b)
    assert change is not None
    assert change.paired
    assert change.significant
    assert change.low <= 0.9 <= change.high
    assert change.change_pct == pytest.approx(-10, abs=2)
    # the same values unpaired cannot tell
    unpaired = unpaired_change(a, b, drift_pct=0)
    assert unpaired is not None
    assert not unpaired.significant


def test_paired_change_of_five_rounds_reaches_only_94_percent():
    change = paired_change([1.0, 2.0, 3.0, 4.0, 5.0], [1.1, 2.1, 3.2, 4.3, 5.1])
    assert change is not None
    assert change.confidence == pytest.approx(1 - 2 / 32)
    with pytest.raises(ValueError, match="same count"):
        paired_change([1.0], [1.0, 2.0])


def test_unpaired_change_of_five_repeats_each_is_a_true_95_percent_interval():
    a = [100.0, 101.0, 99.0, 100.5, 99.5]
    b = [110.0, 111.0, 109.0, 110.5, 109.5]
    change = unpaired_change(a, b, drift_pct=0)
    assert change is not None
    assert change.confidence == pytest.approx(1 - 2 * 4 / 252)  # P(U <= 2) = 4/252
    assert change.significant
    assert change.change_pct == pytest.approx(10.0, abs=0.5)


def test_separate_runs_drift_widens_the_unpaired_interval():
    a = [100.0, 101.0, 99.0, 100.5, 99.5]
    b = [103.0, 104.0, 102.0, 103.5, 102.5]
    tight = unpaired_change(a, b, drift_pct=0)
    wide = unpaired_change(a, b, drift_pct=4)
    assert tight is not None
    assert wide is not None
    assert tight.significant
    assert not wide.significant
    assert wide.ratio == tight.ratio
    assert wide.drift_pct == 4


def test_change_of_no_values_is_none_and_non_positive_values_are_refused():
    assert paired_change([], []) is None
    assert unpaired_change([], [1.0]) is None
    with pytest.raises(ValueError, match="positive"):
        unpaired_change([0.0], [1.0])


def test_the_same_values_always_give_the_same_interval():
    a, b = [3.0, 1.0, 2.0, 5.0], [2.5, 1.5, 2.5, 4.0]
    assert paired_change(a, b) == paired_change(a, b)
    assert unpaired_change(a, b) == unpaired_change(a, b)


def test_pair_by_round_keeps_only_rounds_both_sides_measured():
    a, b = pair_by_round({1: 10.0, 2: 11.0, 3: 12.0}, {3: 6.0, 1: 5.0})
    assert (a, b) == ([10.0, 12.0], [5.0, 6.0])


def _change(low_pct: float, high_pct: float) -> Change:
    return Change(
        ratio=1 + (low_pct + high_pct) / 200,
        low=1 + low_pct / 100,
        high=1 + high_pct / 100,
        confidence=0.95,
        paired=True,
        count=6,
    )


@pytest.mark.parametrize(
    ("low_pct", "high_pct", "limit_pct", "fails"),
    [
        (-15.0, -8.0, 5.0, True),  # the whole interval is a loss beyond 5 %
        (-15.0, -3.0, 5.0, False),  # significant, but it may be a 3 % loss: within the limit
        (-12.0, 2.0, 5.0, False),  # not significant
        (3.0, 9.0, 5.0, False),  # faster
    ],
)
def test_fail_if_slower_fails_only_when_the_whole_interval_is_beyond_the_limit(
    low_pct, high_pct, limit_pct, fails
):
    assert fails_if_slower(_change(low_pct, high_pct), limit_pct) is fails


def test_precision_goal_needs_a_95_percent_interval_within_the_target():
    goal = PrecisionGoal(target_pct=2.0, max_repeats=10)
    steady = [100.0, 100.5, 99.5, 100.2, 99.8]
    assert not goal.reached(steady)  # five repeats are at most 94 % sure
    assert goal.reached([*steady, 100.1])
    assert not goal.reached([100.0, 104.0, 96.0, 100.0, 100.0, 100.0])


def test_precision_goal_repeats_the_widest_cells_first_within_the_cap_and_the_budget():
    goal = PrecisionGoal(target_pct=2.0, max_repeats=6, budget_s=100.0)
    values = {
        ("gunicorn",): [100.0, 140.0, 60.0],
        ("uvicorn",): [100.0, 101.0, 99.0],
        ("bjoern",): [100.0, 100.5, 99.5, 100.2, 99.8, 100.1],  # reached
        ("nginx",): [100.0, 150.0, 50.0, 100.0, 100.0, 100.0],  # at the cap
    }
    cost = {key: 30.0 for key in values}
    assert goal.cells_to_repeat(values, elapsed_s=0.0, round_s=cost) == [
        ("gunicorn",),
        ("uvicorn",),
    ]
    assert goal.cells_to_repeat(values, elapsed_s=50.0, round_s=cost) == [("gunicorn",)]
    assert goal.cells_to_repeat(values, elapsed_s=90.0, round_s=cost) == []


def test_precision_goal_says_why_a_cell_did_not_reach_it():
    goal = PrecisionGoal(target_pct=2.0, max_repeats=3)
    assert goal.why_not_reached([100.0, 100.1, 100.2, 100.0, 99.9, 100.0], False) is None
    capped = goal.why_not_reached([100.0, 110.0, 90.0], budget_spent=False)
    assert capped == "+-10.0 % at 75 % confidence after 3 repeats; the cap of 3 repeats was reached"
    goal = PrecisionGoal(target_pct=2.0, max_repeats=10)
    spent = goal.why_not_reached([100.0, 110.0, 90.0], budget_spent=True)
    assert spent is not None
    assert spent.endswith("the time budget ran out")
    assert goal.why_not_reached([], budget_spent=True) == "no successful repeat"
