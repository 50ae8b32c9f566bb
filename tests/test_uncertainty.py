from serverbench.report.uncertainty import describe_change, describe_rate, plus_minus
from serverbench.results.inference import Change, median_ci, paired_change, unpaired_change


def test_a_rate_with_a_95_percent_interval():
    estimate = median_ci([11_780.0, 11_600.0, 11_900.0, 11_700.0, 11_850.0, 12_000.0])
    assert estimate is not None
    assert describe_rate(estimate) == "11,780 req/s ±1.9 % (95 % CI, 6 repeats)"


def test_three_repeats_say_how_little_they_are_sure_of():
    estimate = median_ci([100.0, 90.0, 110.0])
    assert estimate is not None
    assert plus_minus(estimate) == "±10.0 % (75 % CI, 3 repeats)"
    single = median_ci([100.0])
    assert single is not None
    assert plus_minus(single) == "(1 repeat, no interval)"


def test_a_93_75_percent_interval_is_never_called_95():
    estimate = median_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert estimate is not None
    assert "(93 % CI, 5 repeats)" in plus_minus(estimate)


def test_a_significant_change_and_no_difference():
    faster = paired_change(
        [100.0, 98.0, 103.0, 99.0, 101.0, 100.0], [106.0, 104.0, 110.0, 105.0, 107.0, 106.5]
    )
    assert faster is not None
    text = describe_change(faster)
    assert text.startswith("faster by 6.")
    assert "(95 % CI +" in text
    assert text.endswith("paired by round, 6 rounds)")
    same = Change(
        ratio=1.01, low=0.97, high=1.041, confidence=0.968, paired=False, count=5, drift_pct=4.0
    )
    assert describe_change(same) == (
        "no significant difference (95 % CI -3.0 to +4.1 %, separate runs, 4 % drift allowed)"
    )
    slower = Change(ratio=0.9, low=0.85, high=0.95, confidence=0.95, paired=True, count=8)
    assert describe_change(slower).startswith("slower by 10.0 %")


def test_one_repeat_a_side_has_no_interval_of_its_own():
    # one round paired: the interval has no width and no coverage, so no change is significant
    one_round = paired_change([100.0], [80.0])
    assert one_round is not None
    assert not one_round.significant
    assert describe_change(one_round).startswith(
        "no significant difference (1 repeat a side: no interval,"
    )
    # separate runs of one repeat each: only the drift allowed between runs makes an interval,
    # and the text says so instead of "0 % CI"
    separate = unpaired_change([100.0], [70.0], drift_pct=5.0)
    assert separate is not None
    assert separate.significant
    text = describe_change(separate)
    assert text.startswith("slower by 30.0 % (1 repeat a side: run drift only, ")
    assert "0 % CI" not in text
    assert not unpaired_change([100.0], [95.0], drift_pct=5.0).significant  # type: ignore[union-attr]
