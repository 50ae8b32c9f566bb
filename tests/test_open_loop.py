"""The open-loop engine's pure parts: schedules, rate split, histograms and their merge, the
generator-behind rule, error classification, settings and targets, the process protocol."""

from __future__ import annotations

import io
import itertools
import random

import pytest
from hdrh.histogram import HdrHistogram

from serverbench.apps.registry import BUILTIN_APPS, SEED_MSISDN
from serverbench.errors import ResultsError, UsageError
from serverbench.load.histogram import encoded, new_histogram
from serverbench.load.open_loop import OpenLoopSettings
from serverbench.load.open_loop.client import (
    FIRST_CONNECTIONS_MAX,
    FIRST_CONNECTIONS_MIN,
    first_connections,
)
from serverbench.load.open_loop.engine import merge_parts
from serverbench.load.open_loop.histogram import Percentiles, Recorder, bucket_floor, merge
from serverbench.load.open_loop.result import (
    ErrorCounts,
    ProcessPart,
    ResponseSample,
    behind_reason,
    loss_error_kind,
    status_is_error,
)
from serverbench.load.open_loop.schedule import ProcessSchedule, split_rate
from serverbench.load.open_loop.target import Target
from serverbench.load.open_loop.worker import decode_frame, read_frame, write_frame
from serverbench.run.verify import check_response

# -- schedules ---------------------------------------------------------------------------


def test_constant_schedule_is_evenly_spaced_and_exact() -> None:
    (schedule,) = split_rate(1000, 1, arrivals="constant", seed=1)
    offsets = list(schedule.offsets_s(2.0))
    assert len(offsets) == 2000
    assert offsets[0] == 0.0
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(offsets)}
    assert gaps == {0.001}
    assert offsets[-1] == pytest.approx(1.999)


def test_poisson_schedule_has_the_mean_rate_and_exponential_gaps() -> None:
    (schedule,) = split_rate(2000, 1, arrivals="poisson", seed=7)
    offsets = list(schedule.offsets_s(50.0))
    assert len(offsets) == pytest.approx(100_000, rel=0.01)
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    # exponential: the share of gaps above the mean is e^-1
    above = sum(g > 1 / 2000 for g in gaps) / len(gaps)
    assert above == pytest.approx(0.3679, abs=0.01)
    assert all(a < b for a, b in itertools.pairwise(offsets))


def test_poisson_schedule_is_determined_by_its_seed() -> None:
    def first(seed: int) -> list[float]:
        (schedule,) = split_rate(500, 1, arrivals="poisson", seed=seed)
        return list(schedule.offsets_s(1.0))

    assert first(3) == first(3)
    assert first(3) != first(4)


def test_constant_rate_split_interleaves_into_the_one_stream() -> None:
    (whole,) = split_rate(3000, 1, arrivals="constant", seed=1)
    parts = split_rate(3000, 3, arrivals="constant", seed=1)
    assert [p.rate_per_s for p in parts] == [1000, 1000, 1000]
    merged = sorted(t for p in parts for t in p.offsets_s(1.0))
    assert merged == pytest.approx(list(whole.offsets_s(1.0)), abs=1e-9)


def test_poisson_rate_split_gives_independent_streams_of_the_summed_rate() -> None:
    parts = split_rate(4000, 2, arrivals="poisson", seed=1)
    assert len({p.seed for p in parts}) == 2
    streams = [list(p.offsets_s(20.0)) for p in parts]
    assert streams[0][:10] != streams[1][:10]
    assert sum(map(len, streams)) == pytest.approx(80_000, rel=0.01)


def test_split_rate_refuses_zero_processes() -> None:
    with pytest.raises(ValueError, match="processes"):
        split_rate(100, 0, arrivals="constant", seed=1)


def test_empty_schedule_for_zero_rate() -> None:
    schedule = ProcessSchedule(arrivals="constant", rate_per_s=0, phase_s=0, seed=1)
    assert list(schedule.offsets_s(1.0)) == []


# -- histograms ----------------------------------------------------------------------------


def test_bucket_floor_keeps_the_hdr_bucket() -> None:
    hist = new_histogram()
    for value in [*range(1, 5000), 65_537, 999_999, 1_000_001, 59_999_999]:
        floor = bucket_floor(value)
        assert floor <= value
        assert hist._counts_index_for(floor) == hist._counts_index_for(value), value


def test_recorder_builds_the_same_histogram_as_raw_recording() -> None:
    rng = random.Random(5)
    values = [int(rng.lognormvariate(8, 2)) + 1 for _ in range(20_000)]
    values = [min(v, 59_000_000) for v in values]
    raw = new_histogram()
    recorder = Recorder()
    for value in values:
        raw.record_value(value)
        recorder.record(value)
    built = recorder.histogram()
    assert built.get_total_count() == raw.get_total_count() == len(values)
    assert list(built.counts) == list(raw.counts)
    for p in (50, 90, 99, 99.9, 100):
        assert built.get_value_at_percentile(p) == raw.get_value_at_percentile(p)


def test_recorder_clamps_out_of_range_values() -> None:
    recorder = Recorder()
    recorder.record(0)
    recorder.record(100_000_000)
    hist = recorder.histogram()
    assert hist.get_total_count() == 2
    assert hist.get_min_value() == 0 or hist.get_min_value() == 1
    assert hist.get_max_value() >= 59_000_000


def test_merge_adds_histograms_exactly() -> None:
    a, b, both = new_histogram(), new_histogram(), new_histogram()
    for value in range(1, 3000):
        (a if value % 3 else b).record_value(value * 7)
        both.record_value(value * 7)
    merged = merge([encoded(a), encoded(b)])
    assert list(merged.counts) == list(both.counts)
    assert merge([]).get_total_count() == 0


def test_merge_refuses_a_damaged_blob() -> None:
    with pytest.raises(ResultsError, match="does not decode"):
        merge(["not a histogram"])


def test_percentiles_of_an_empty_histogram_are_none() -> None:
    assert Percentiles.of(new_histogram()) is None
    hist = new_histogram()
    for value in range(1, 1001):
        hist.record_value(value)
    p = Percentiles.of(hist)
    assert p is not None
    assert (p.p50_us, p.p90_us, p.p99_us, p.max_us) == (500, 900, 990, 1000)


# -- merge of process parts ----------------------------------------------------------------


def _part(index: int, latencies: list[int], **overrides: object) -> ProcessPart:
    latency = new_histogram()
    for value in latencies:
        latency.record_value(value)
    lag = new_histogram()
    lag.record_value(50 + index)
    fields: dict[str, object] = {
        "index": index,
        "pid": 100 + index,
        "cpu": index,
        "scheduled": len(latencies),
        "sent": len(latencies),
        "sent_in_window_wall": len(latencies),
        "responses": len(latencies),
        "good_responses": len(latencies),
        "errors": ErrorCounts(read=index, status=1),
        "latency_hdr": encoded(latency),
        "send_lag_hdr": encoded(lag),
        "connections_opened": 2,
        "waited_for_connection": 1,
        "pool_full": 0,
        "bytes_read": 1000,
        "cpu_s": 0.5,
        "cpu_percent": 50.0,
        "samples": (ResponseSample(process=index, status=200, content_type="x", body=b"{}"),),
    }
    fields.update(overrides)
    return ProcessPart(**fields)  # type: ignore[arg-type]


def test_merge_parts_adds_counts_and_merges_histograms() -> None:
    settings = OpenLoopSettings(rate_per_s=2000, duration_s=1.0)
    parts = [_part(1, [300] * 990 + [5000] * 10), _part(0, [100] * 1000)]
    result = merge_parts(settings, parts)
    assert result.scheduled == result.requests_sent == result.good_responses == 2000
    assert result.errors == ErrorCounts(read=1, status=2)
    assert result.achieved_rate_per_s == 2000
    assert result.connections_opened == 4
    assert result.latency_us is not None
    assert result.latency_us.p50_us == 100
    assert result.latency_us.p99_us == 300
    assert result.latency_us.max_us == pytest.approx(5000, rel=0.001)
    assert HdrHistogram.decode(result.latency_histogram_hdr).get_total_count() == 2000
    assert [p.index for p in result.processes] == [0, 1]
    assert [s.process for s in result.samples] == [0, 1]
    assert not result.generator_behind
    assert result.generator_behind_reason is None


def test_merge_parts_flags_a_generator_that_fell_behind() -> None:
    settings = OpenLoopSettings(rate_per_s=2000, duration_s=1.0)
    parts = [_part(0, [100] * 1000, sent_in_window_wall=900), _part(1, [100] * 1000)]
    result = merge_parts(settings, parts)
    assert result.achieved_rate_per_s == 1900
    assert result.generator_behind
    assert result.generator_behind_reason is not None
    assert "achieved 1,900 req/s of 2,000" in result.generator_behind_reason


# -- the generator-behind rule -----------------------------------------------------------------


def _behind(**overrides: object) -> str | None:
    args: dict[str, object] = {
        "scheduled": 10_000,
        "achieved_rate_per_s": 10_000.0,
        "duration_s": 1.0,
        "send_lag_p99_us": 200.0,
        "timeouts": 0,
        "pool_full": 0,
    }
    args.update(overrides)
    return behind_reason(**args)  # type: ignore[arg-type]


def test_a_generator_that_kept_up_is_not_flagged() -> None:
    assert _behind() is None
    assert _behind(achieved_rate_per_s=9_901.0) is None
    assert _behind(send_lag_p99_us=1000.0) is None
    assert _behind(send_lag_p99_us=None, scheduled=0, achieved_rate_per_s=0.0) is None


def test_send_lag_above_one_ms_flags_the_generator() -> None:
    reason = _behind(send_lag_p99_us=1500.0)
    assert reason is not None
    assert "send lag p99 1.50 ms" in reason


def test_low_achieved_rate_flags_the_generator_only_while_the_server_kept_up() -> None:
    reason = _behind(achieved_rate_per_s=9_800.0)
    assert reason is not None
    assert "while the server answered in time" in reason
    # the server timed out or exhausted the pool: the server, not the generator, limited it
    assert _behind(achieved_rate_per_s=9_800.0, timeouts=3) is None
    assert _behind(achieved_rate_per_s=9_800.0, pool_full=12) is None


def test_a_saturated_client_flags_the_generator_even_when_the_server_was_slow() -> None:
    # the client's own queue makes answers late: the server is not to blame for the shortfall
    reason = _behind(achieved_rate_per_s=7_000.0, timeouts=40, client_cpu_percent=99.0)
    assert reason is not None
    assert "client process at 99 % of its core" in reason
    assert _behind(achieved_rate_per_s=7_000.0, timeouts=40, client_cpu_percent=60.0) is None


def test_a_saturated_client_whose_requests_waited_for_connections_is_flagged() -> None:
    reason = _behind(waited_for_connection=500, client_cpu_percent=99.0)
    assert reason is not None
    assert "5% of the requests waited in the client" in reason
    # a client with headroom, a full pool (the server held them) or a few waits: not flagged
    assert _behind(waited_for_connection=500, client_cpu_percent=70.0) is None
    assert _behind(waited_for_connection=500, client_cpu_percent=99.0, pool_full=1) is None
    assert _behind(waited_for_connection=50, client_cpu_percent=99.0) is None


def test_both_reasons_are_given() -> None:
    reason = _behind(achieved_rate_per_s=5_000.0, send_lag_p99_us=30_000.0)
    assert reason is not None
    assert "send lag" in reason
    assert "achieved" in reason


# -- error classification ------------------------------------------------------------------------


def test_loss_with_unsent_bytes_is_a_write_error_else_a_read_error() -> None:
    assert loss_error_kind(unsent_bytes=10) == "write"
    assert loss_error_kind(unsent_bytes=0) == "read"


def test_status_errors_are_400_and_above_like_wrk() -> None:
    assert not status_is_error(200)
    assert not status_is_error(302)
    assert status_is_error(400)
    assert status_is_error(503)


def test_error_counts_add_and_total() -> None:
    total = ErrorCounts(connect=1, timeout=2) + ErrorCounts(read=3, write=4, status=5)
    assert total == ErrorCounts(connect=1, read=3, write=4, timeout=2, status=5)
    assert total.total == 15


# -- settings, targets, the process protocol -------------------------------------------------------


def test_settings_refuse_nonsense_with_every_problem_named() -> None:
    with pytest.raises(UsageError, match=r"rate -1.*duration 0.*arrivals 'bursty'"):
        OpenLoopSettings(rate_per_s=-1, duration_s=0, arrivals="bursty")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="timeout"):
        OpenLoopSettings(rate_per_s=1, duration_s=1, timeout_s=61)
    with pytest.raises(UsageError, match="max connections"):
        OpenLoopSettings(rate_per_s=1, duration_s=1, max_connections=0)


def test_target_builds_wrk_like_request_bytes() -> None:
    target = Target.parse("http://127.0.0.1:8080/api/v2/123?x=1")
    assert (target.host, target.port) == ("127.0.0.1", 8080)
    assert target.request_bytes() == b"GET /api/v2/123?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
    assert Target.parse("http://[::1]/").host == "::1"
    assert Target.parse("http://localhost").request_bytes().startswith(b"GET / HTTP/1.1")


@pytest.mark.parametrize("url", ["https://127.0.0.1/", "127.0.0.1:80", "http://127.0.0.1:x/"])
def test_target_refuses_what_it_cannot_load(url: str) -> None:
    with pytest.raises(UsageError):
        Target.parse(url)


def test_frames_round_trip() -> None:
    part = _part(0, [1, 2, 3])
    stream = io.BytesIO()
    write_frame(stream, part)
    data = stream.getvalue()
    assert decode_frame(data[:-1]) is None
    decoded = decode_frame(data + b"more")
    assert decoded is not None
    assert decoded == (part, b"more")
    assert read_frame(io.BytesIO(data)) == part
    with pytest.raises(EOFError):
        read_frame(io.BytesIO(data[:5]))


# -- response samples go through the verifier's checks ---------------------------------------------


def test_a_kept_response_is_checked_like_the_verifiers() -> None:
    app = BUILTIN_APPS["seed-flask"]
    good = b'{"msisdn": "1234567890", "status": "ok"}'
    ok = check_response(app, SEED_MSISDN, status=200, content_type="application/json", body=good)
    assert ok is None
    wrong = check_response(
        app, SEED_MSISDN, status=200, content_type="application/json", body=b'{"x": 1}'
    )
    assert wrong is not None
    assert "expected" in str(wrong)
    status = check_response(app, SEED_MSISDN, status=500, content_type="text/html", body=b"")
    assert status is not None
    assert status.expected == "status 200"


def test_the_first_connections_cover_a_fast_server_within_bounds() -> None:
    assert first_connections(10, 1000) == FIRST_CONNECTIONS_MIN
    assert first_connections(20_000, 1000) == 10  # 0.5 ms of arrivals
    assert first_connections(1_000_000, 1000) == FIRST_CONNECTIONS_MAX
    assert first_connections(20_000, 3) == 3  # never above the pool's bound
