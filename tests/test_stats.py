import pytest

from serverbench.results.stats import median_index, summarize


def test_summary_of_an_odd_count():
    summary = summarize([3.0, 1.0, 2.0])
    assert summary is not None
    assert (summary.median, summary.minimum, summary.maximum, summary.count) == (2.0, 1.0, 3.0, 3)
    assert summary.spread_pct == pytest.approx(100.0)


def test_the_median_of_an_even_count_is_a_real_repeat_and_matches_the_median_index():
    values = [10.0, 40.0, 20.0, 30.0]
    summary = summarize(values)
    assert summary is not None
    assert summary.median == 20.0
    assert values[median_index(values)] == summary.median


def test_nothing_to_summarize_is_none_not_zero():
    assert summarize([]) is None


def test_spread_of_a_zero_median():
    summary = summarize([0.0])
    assert summary is not None
    assert summary.spread_pct == 0.0
