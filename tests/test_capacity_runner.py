"""The capacity runner's pure parts: an open-loop result and the server's CPU read as the
search's observation; the plan's start rate; the JSON form of the plan."""

import dataclasses

import msgspec
import pytest
from hdrh.histogram import HdrHistogram

from serverbench.load.open_loop import ClientProcess, ErrorCounts, OpenLoopResult
from serverbench.load.open_loop.histogram import Percentiles
from serverbench.observe.sampler import ComponentUsage, Usage
from serverbench.plan.capacity import FALLBACK_START_RPS, MAX_BACKOFFS, CapacityPlan
from serverbench.plan.slo import parse_slo
from serverbench.run.capacity import observation_from, short_capacity_plan


def histogram_blob(values_us: list[int]) -> str:
    hist = HdrHistogram(1, 60_000_000, 3)
    for value in values_us:
        hist.record_value(value)
    blob = hist.encode()
    return blob.decode() if isinstance(blob, bytes) else str(blob)


def result(**changes) -> OpenLoopResult:
    values = list(range(1_000, 101_000, 100))  # 1 ms .. 101 ms, uniform
    fields = {
        "offered_rate_per_s": 1000.0,
        "arrivals": "constant",
        "duration_s": 1.0,
        "warmup_s": 0.5,
        "timeout_s": 2.0,
        "max_connections": 1000,
        "seed": 1,
        "scheduled": 1000,
        "requests_sent": 1000,
        "bytes_read": 0,
        "responses": 995,
        "good_responses": 990,
        "errors": ErrorCounts(status=5, timeout=5),
        "latency_histogram_hdr": histogram_blob(values),
        "latency_us": Percentiles(
            p50_us=50_000.0, p90_us=90_000.0, p99_us=99_000.0, p99_9_us=100_900.0, max_us=101e3
        ),
        "good_rate_per_s": 990.0,
        "achieved_rate_per_s": 1000.0,
        "send_lag_histogram_hdr": "",
        "send_lag_us": Percentiles(
            p50_us=50.0, p90_us=90.0, p99_us=400.0, p99_9_us=900.0, max_us=1000.0
        ),
        "connections_opened": 10,
        "waited_for_connection": 0,
        "pool_full": 0,
        "generator_behind": False,
        "generator_behind_reason": None,
        "processes": (
            ClientProcess(
                index=0,
                pid=1,
                cpu=1,
                requests_sent=1000,
                cpu_s=0.3,
                cpu_percent=30.0,
                send_lag_us=None,
            ),
        ),
        "samples": (),
    }
    return OpenLoopResult(**{**fields, **changes})


def usage(cpu_seconds: float, processes: int = 1) -> Usage:
    return Usage(
        window_s=2.0,
        interval_s=0.25,
        samples=8,
        components=(
            ComponentUsage(
                name="bjoern",
                processes_max=processes,
                cpu_seconds=cpu_seconds,
                cpu_percent_mean=cpu_seconds / 2.0 * 100,
                cpu_percent_max=100.0,
                rss_peak_bytes=1,
                rss_mean_bytes=1,
                threads_max=1,
                connections_max=10,
            ),
        ),
    )


def test_an_open_loop_result_becomes_the_observation_the_search_judges():
    seen = observation_from(result(), usage(1.8), server_cpus=1, slo=parse_slo("p99=50ms"))
    assert seen.offered_rps == 1000.0
    assert seen.sent_rps == 1000.0
    assert seen.achieved_rps == 990.0
    assert seen.error_rate == pytest.approx(0.01)  # every request due that was not good
    assert seen.latency_percentiles_us["99"] == 99_000.0
    assert seen.server_cpu_utilisation == pytest.approx(0.9)
    assert seen.server_busiest_process_cpu == pytest.approx(0.9)
    assert seen.generator_cpu_utilisation == pytest.approx(0.3)
    assert seen.generator_lag_p99_us == 400.0
    assert seen.server_cpu_saturated
    # its requests and their histogram, so that measurements at one rate pool
    assert seen.requests == 1000
    assert seen.latency_histogram_hdr == result().latency_histogram_hdr
    assert seen.poolable


def test_a_percentile_the_engine_does_not_report_comes_from_its_histogram():
    seen = observation_from(result(), None, server_cpus=1, slo=parse_slo("p75=80ms"))
    assert seen.latency_percentiles_us["75"] == pytest.approx(76_000.0, rel=0.01)
    assert seen.server_cpu_utilisation is None


def test_several_processes_give_no_busiest_process_figure():
    seen = observation_from(result(), usage(1.0, processes=3), 2, parse_slo("p99=50ms"))
    assert seen.server_cpu_utilisation == pytest.approx(0.25)
    assert seen.server_busiest_process_cpu is None


def test_no_good_response_no_percentile_and_everything_failed():
    seen = observation_from(
        result(good_responses=0, good_rate_per_s=0.0, latency_us=None),
        None,
        1,
        parse_slo("p99=50ms"),
    )
    assert seen.latency_percentiles_us == {}
    assert not seen.poolable  # it fails on its own, never outweighed by others
    assert seen.error_rate == 1.0


def test_the_start_rate_is_a_share_of_the_peak_or_given():
    plan = CapacityPlan(
        slo=parse_slo("p99=50ms"), max_error_rate=0.001, step_s=1, warmup_s=0.5, timeout_s=2
    )
    assert plan.search_settings(2000.0).start_rps == 500.0
    assert plan.search_settings(None).start_rps == FALLBACK_START_RPS
    half = CapacityPlan(
        slo=parse_slo("p99=50ms"), max_error_rate=0.001, step_s=1, warmup_s=0.5, timeout_s=2,
        start_share=0.5,
    )  # fmt: skip
    assert half.search_settings(2000.0).start_rps == 1000.0
    fixed = CapacityPlan(
        slo=parse_slo("p99=50ms"), max_error_rate=0.001, step_s=1, warmup_s=0.5, timeout_s=2,
        start_rps=300.0,
    )  # fmt: skip
    assert fixed.search_settings(2000.0).start_rps == 300.0
    assert msgspec.json.decode(msgspec.json.encode(fixed), type=CapacityPlan) == fixed


def test_new_searches_survive_more_failed_confirmations_than_old_files_record():
    new = short_capacity_plan(parse_slo("p99=100ms"), 0.001)
    assert new.max_backoffs == MAX_BACKOFFS == 5
    assert new.search_settings(1000.0).max_backoffs == MAX_BACKOFFS
    # a plan written before the field was recorded replays as it was searched: with 3
    raw = msgspec.json.decode(msgspec.json.encode(new))
    del raw["max_backoffs"]
    old = msgspec.json.decode(msgspec.json.encode(raw), type=CapacityPlan)
    assert old.search_settings(1000.0).max_backoffs == 3


def test_a_sampler_that_saw_under_half_the_step_gives_no_server_cpu():
    short = dataclasses.replace(usage(0.0), window_s=0.4)  # the step measured 1 s
    seen = observation_from(result(), short, server_cpus=1, slo=parse_slo("p99=50ms"))
    assert seen.server_cpu_utilisation is None
    assert seen.server_busiest_process_cpu is None
    assert not seen.contended
