import pytest

from serverbench.report.evidence import grouped, littles_law_gap, nagle_signature


def test_nagle_fires_on_a_40_ms_primer_and_not_without_one():
    assert nagle_signature(40_500.0, 8) is not None
    assert nagle_signature(500.0, 8) is None
    assert nagle_signature(None, 8) is None


CLEAN = {
    "requests": 100_000,
    "duration_s": 10.0,
    "mean_latency_us": 10_000.0,  # 10,000 req/s x 10 ms = 100 in flight
    "latency_samples": 100_000,
    "connections": 100,
    "errors": 0,
    "closed_loop": True,
    "reconnects": False,
}


def test_littles_law_holds_for_a_busy_closed_loop():
    assert littles_law_gap(**CLEAN) is None  # type: ignore[arg-type]


def test_littles_law_fires_on_an_unexplained_gap():
    gap = littles_law_gap(**{**CLEAN, "mean_latency_us": 5_000.0})  # type: ignore[arg-type]
    assert gap is not None
    assert gap.in_flight == pytest.approx(50.0)
    assert gap.ratio == pytest.approx(0.5)


@pytest.mark.parametrize(
    "explained",
    [
        {"latency_samples": 150_000},  # coordinated-omission samples in the mean
        {"errors": 5_000},  # timeouts and socket errors
        {"reconnects": True},  # a server that closes every connection
        {"closed_loop": False},  # an open loop has no fixed number in flight
        {"mean_latency_us": None},
    ],
)
def test_littles_law_is_silent_where_the_evidence_explains_the_gap(explained):
    case = {**CLEAN, "mean_latency_us": 5_000.0, **explained}
    assert littles_law_gap(**case) is None


def test_identical_messages_are_said_once_with_their_count():
    assert grouped(["died", "died", "died"], 3) == ["3 of 3 repeats: died"]
    assert grouped(["a", "b", "a"], 4) == ["2 of 4 repeats: a", "1 of 4 repeats: b"]
    assert grouped(["only"], 1) == ["only"]
