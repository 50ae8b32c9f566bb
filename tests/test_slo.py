import pytest

from serverbench.errors import UsageError
from serverbench.plan.slo import RateSpec, Slo, parse_error_budget, parse_rate, parse_slo


@pytest.mark.parametrize(
    ("text", "percentile", "limit_us"),
    [
        ("p99=50ms", 99.0, 50_000.0),
        ("p99.9=200ms", 99.9, 200_000.0),
        ("p50=2ms", 50.0, 2_000.0),
        ("p99=1s", 99.0, 1_000_000.0),
        ("p90=750us", 90.0, 750.0),
        ("p99<=100ms", 99.0, 100_000.0),
        (" p99 = 0.5s ", 99.0, 500_000.0),
    ],
)
def test_slo_forms(text, percentile, limit_us):
    assert parse_slo(text) == Slo(percentile=percentile, limit_us=limit_us)


@pytest.mark.parametrize("text", ["p99", "99=50ms", "p99=50", "p100=1ms", "p0=1ms", "p99=0ms", ""])
def test_slo_refused_with_an_example(text):
    with pytest.raises(UsageError, match=r"e\.g\. p99=50ms"):
        parse_slo(text)


def test_slo_key_text_and_spec_round_trip():
    slo = parse_slo("p99.9=200ms")
    assert slo.key == "99.9"
    assert slo.text == "p99.9 <= 200 ms"
    assert parse_slo(slo.spec) == slo
    assert parse_slo("p99=1500us").text == "p99 <= 1.5 ms"


@pytest.mark.parametrize(
    ("text", "share"), [("0.1%", 0.001), ("0%", 0.0), ("1 %", 0.01), ("0.005", 0.005), ("0", 0.0)]
)
def test_error_budget_forms(text, share):
    assert parse_error_budget(text) == pytest.approx(share)


@pytest.mark.parametrize("text", ["100%", "150%", "5", "lots", "-1%"])
def test_error_budget_refused(text):
    with pytest.raises(UsageError, match="--max-errors"):
        parse_error_budget(text)


def test_absolute_and_relative_rates():
    assert parse_rate("2000") == RateSpec(rps=2000.0)
    assert parse_rate("2.5k") == RateSpec(rps=2500.0)
    assert parse_rate("750/s").rps == 750.0
    half = parse_rate("50%")
    assert half.relative
    assert half.resolve(4000.0) == pytest.approx(2000.0)
    assert parse_rate("110%").resolve(1000.0) == pytest.approx(1100.0)
    assert parse_rate("2000").resolve(None) == 2000.0
    assert half.text == "50%"


def test_a_share_without_a_peak_says_what_to_do():
    with pytest.raises(UsageError, match="give an absolute rate"):
        parse_rate("50%").resolve(None)


@pytest.mark.parametrize("text", ["0", "0%", "fast", "-5", "50%%"])
def test_bad_rates_refused(text):
    with pytest.raises(UsageError, match="--rate"):
        parse_rate(text)


def test_rates_resolve_per_stack_against_its_own_peak():
    from serverbench.plan.slo import resolve_rates

    specs = [parse_rate(t) for t in ("25%", "50%", "1000", "90%")]
    assert resolve_rates(specs, 3000.0) == (750.0, 1500.0, 1000.0, 2700.0)
    assert resolve_rates([parse_rate("1000")], None) == (1000.0,)


def test_shares_of_the_peak_measure_the_closed_loop_profile_first():
    from serverbench.plan.profiles import PROFILES, at_shares

    smoke = PROFILES["smoke"]
    profiles = at_shares([smoke], [0.5, 0.9])
    assert [p.name for p in profiles] == ["smoke", "smoke@50%", "smoke@90%"]
    assert [p.open_loop for p in profiles] == [False, True, True]
    assert profiles[1].rate_share == 0.5
    assert profiles[1].peak_profile == "smoke"
    assert profiles[1].rate_per_s is None
