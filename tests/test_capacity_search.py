"""The capacity search against a modelled server: an M/M/1 queue (exponential service at
`mu` req/s) whose latency percentiles at offered rate lambda are ln(1/(1-q)) / (mu - lambda),
growing without bound over the step once lambda passes mu; optional noise on mu per step, a
load generator with its own ceiling, error and failure thresholds."""

import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from serverbench.errors import ResultsError
from serverbench.load.histogram import encoded, new_histogram, percentiles_from_hdr
from serverbench.plan.capacity import (
    Observation,
    Outcome,
    Probe,
    Search,
    SearchSettings,
    Step,
    judge,
    judge_rate,
    next_action,
    pooled,
)
from serverbench.plan.slo import parse_slo

SLO_50MS = parse_slo("p99=50ms")


def mm1_edge(mu: float, slo_s: float = 0.05, q: float = 0.99) -> float:
    """The highest rate whose p99 stays within the SLO, analytically."""
    return mu - math.log(1 / (1 - q)) / slo_s


@dataclass
class ModelServer:
    mu: float = 2000.0  # service rate, req/s
    noise: float = 0.0  # relative standard deviation of mu per step
    generator_max_rps: float = 1e9
    step_s: float = 3.0
    server_cpus: int = 1  # the CPUs the server may use; it only ever uses one
    report_busiest_process: bool = False
    errors_above_rps: float | None = None  # sheds load with 503s above this rate
    dies_above_rps: float | None = None
    seed: int = 1
    rng: random.Random = field(init=False)
    probes: list[Probe] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def __call__(self, probe: Probe) -> Observation:
        self.probes.append(probe)
        mu = self.mu * (1 + self.rng.gauss(0, self.noise)) if self.noise else self.mu
        sent = min(probe.rate_rps, self.generator_max_rps)
        generator_cpu = min(1.0, sent / self.generator_max_rps)
        if self.dies_above_rps is not None and sent > self.dies_above_rps:
            return Observation(
                offered_rps=probe.rate_rps,
                sent_rps=sent,
                achieved_rps=sent / 3,
                latency_percentiles_us={},
                error_rate=0.6,
                failure="died during the measurement: exit code -9",
            )
        if sent < mu:
            percentiles = {
                key: math.log(1 / (1 - float(key) / 100)) / (mu - sent) * 1e6
                for key in ("50", "90", "99", "99.9")
            }
            achieved = sent
        else:
            # the queue grows for the whole step: quantile q of a linear ramp of waiting, on top
            # of a queue already as long as the stable one at 99.9 % of mu
            ramp_s = (sent - mu) / mu * self.step_s
            percentiles = {
                key: (
                    float(key) / 100 * ramp_s + math.log(1 / (1 - float(key) / 100)) / (mu / 1000)
                )
                * 1e6
                for key in ("50", "99")
            }
            achieved = mu
        error_rate = 0.0
        if self.errors_above_rps is not None and sent > self.errors_above_rps:
            error_rate = (sent - self.errors_above_rps) / sent
        busy = min(1.0, sent / mu)
        return Observation(
            offered_rps=probe.rate_rps,
            sent_rps=sent,
            achieved_rps=achieved * (1 - error_rate),
            latency_percentiles_us=percentiles,
            error_rate=error_rate,
            server_cpu_utilisation=busy / self.server_cpus,
            server_busiest_process_cpu=busy if self.report_busiest_process else None,
            generator_cpu_utilisation=generator_cpu,
        )


def settings(**changes) -> SearchSettings:
    base = {"slo": SLO_50MS, "start_rps": 250.0, "max_error_rate": 0.001}
    return SearchSettings(**{**base, **changes})


def search(model: ModelServer, **changes) -> tuple[Outcome, list[Step]]:
    recorded: list[Step] = []
    outcome = Search(settings(**changes)).run(model, on_step=recorded.append)
    return outcome, recorded


def test_a_cpu_bound_server_capacity_is_within_five_percent_below_the_edge():
    model = ModelServer(mu=2000.0)
    outcome, steps = search(model)
    edge = mm1_edge(2000.0)  # 1908 req/s
    assert outcome.capacity_rps is not None
    assert edge / 1.05 <= outcome.capacity_rps <= edge
    assert outcome.lowest_failing_rps is not None
    assert outcome.lowest_failing_rps > edge
    assert outcome.resolution is not None
    assert outcome.resolution <= 0.05
    assert outcome.limit == "server_cpu"
    assert "p99" in outcome.limit_text
    assert "% of its CPUs" in outcome.limit_text
    assert not outcome.lower_bound
    # the final rate passed once in the search and twice more in confirmation
    assert outcome.passes_at_capacity == 3
    assert [s.phase for s in steps][-2:] == ["confirm", "confirm"]
    assert all(s.rate_rps == outcome.capacity_rps for s in steps[-2:])
    assert outcome.steps == len(steps) <= 14


def test_phases_go_coarse_then_bisect_then_confirm_and_every_step_is_recorded():
    model = ModelServer(mu=2000.0)
    _, steps = search(model)
    phases = [s.phase for s in steps]
    assert phases == sorted(phases, key=["coarse", "bisect", "confirm"].index)
    coarse = [s.rate_rps for s in steps if s.phase == "coarse"]
    assert coarse == [250.0, 500.0, 1000.0, 2000.0]
    assert [s.index for s in steps] == list(range(1, len(steps) + 1))
    assert [p.rate_rps for p in model.probes] == [s.rate_rps for s in steps]
    assert all(s.judgement == judge(settings(), s.observation) for s in steps)


def test_noisy_searches_agree_within_the_stated_resolution():
    """Reproducibility: searches with different noise draw land within 5 % of each other's
    bracket, as the outcome states."""
    capacities = []
    for seed in range(12):
        outcome, _ = search(ModelServer(mu=2000.0, noise=0.01, seed=seed))
        assert outcome.capacity_rps is not None
        capacities.append(outcome.capacity_rps)
    assert max(capacities) / min(capacities) - 1 <= 0.10
    edge = mm1_edge(2000.0)
    assert all(edge * 0.85 <= c <= edge * 1.05 for c in capacities)


def test_a_start_rate_above_capacity_steps_down_first():
    outcome, steps = search(ModelServer(mu=2000.0), start_rps=8000.0)
    assert [s.phase for s in steps][:3] == ["coarse", "down", "down"]
    assert outcome.capacity_rps is not None
    assert mm1_edge(2000.0) / 1.05 <= outcome.capacity_rps <= mm1_edge(2000.0)


def test_the_generator_limit_is_named_and_the_figure_is_a_lower_bound():
    outcome, _ = search(ModelServer(mu=20_000.0, generator_max_rps=5000.0))
    assert outcome.limit == "generator"
    assert outcome.lower_bound
    assert outcome.capacity_rps is not None
    assert 5000.0 / 1.05 <= outcome.capacity_rps <= 5000.0 / 0.95  # sent 95 % of it
    assert "load generator fell behind" in outcome.limit_text


def test_latency_with_cpu_to_spare_is_named_latency():
    # one process on two CPUs: half the server CPUs used at most, and nothing says more
    outcome, _ = search(ModelServer(mu=2000.0, server_cpus=2))
    assert outcome.limit == "latency"


def test_one_saturated_process_on_two_cpus_is_the_server_cpu():
    outcome, _ = search(ModelServer(mu=2000.0, server_cpus=2, report_busiest_process=True))
    assert outcome.limit == "server_cpu"
    assert "busiest process" in outcome.limit_text


def test_errors_over_the_budget_limit_a_server_that_sheds_load():
    outcome, _ = search(ModelServer(mu=10_000.0, server_cpus=2, errors_above_rps=1200.0))
    assert outcome.limit == "errors"
    assert outcome.capacity_rps is not None
    assert 1200 / 1.05 <= outcome.capacity_rps <= 1200 * 1.001 / (1 - 0.001)
    assert "budget 0.1 %" in outcome.limit_text


def test_a_generous_error_budget_lets_errors_through():
    outcome, _ = search(
        ModelServer(mu=10_000.0, server_cpus=2, errors_above_rps=1200.0), max_error_rate=0.2
    )
    assert outcome.capacity_rps is not None
    assert outcome.capacity_rps > 1400


def test_a_stack_that_dies_is_the_limit():
    outcome, _ = search(ModelServer(mu=5000.0, dies_above_rps=1500.0))
    assert outcome.limit == "failure"
    assert "died" in outcome.limit_text
    assert outcome.capacity_rps is not None
    assert outcome.capacity_rps <= 1500


def test_an_slo_no_rate_can_hold_gives_no_capacity():
    outcome, steps = search(ModelServer(mu=2000.0), slo=parse_slo("p99=100us"), min_rps=10.0)
    assert outcome.capacity_rps is None
    assert outcome.limit == "latency"
    assert all(not s.judgement.passed for s in steps)
    assert min(s.rate_rps for s in steps) >= 10.0


def test_the_ceiling_ends_a_search_that_never_fails():
    outcome, steps = search(ModelServer(mu=1e6), max_rps=3000.0)
    assert outcome.limit == "search_ceiling"
    assert outcome.lower_bound
    assert outcome.capacity_rps == 3000.0
    assert [s.rate_rps for s in steps] == [250.0, 500.0, 1000.0, 2000.0, 3000.0]


class FlakyAt:
    """Passes everything below `edge`, except the given tries at one rate."""

    def __init__(self, edge: float, flaky_rate: float, fail_tries: set[int]) -> None:
        self.model = ModelServer(mu=1e6)
        self.edge, self.flaky_rate, self.fail_tries = edge, flaky_rate, fail_tries
        self.tries = 0

    def __call__(self, probe: Probe) -> Observation:
        seen = self.model(probe)
        failing = probe.rate_rps > self.edge
        if probe.rate_rps == self.flaky_rate:
            self.tries += 1
            failing = self.tries in self.fail_tries
        if failing:
            return Observation(
                offered_rps=probe.rate_rps,
                sent_rps=probe.rate_rps,
                achieved_rps=probe.rate_rps,
                latency_percentiles_us={"99": 80_000.0},
                error_rate=0.0,
            )
        return seen


def test_a_failed_confirmation_goes_back_to_the_highest_rate_below_that_held():
    # 250 500 1000 2000x 1500 1750x 1625x 1562.5 then confirm 1562.5: its second try fails;
    # 1500 held its bisection step and lies within 5 % below: it is confirmed next
    flaky = FlakyAt(edge=1600.0, flaky_rate=1562.5, fail_tries={3})
    outcome, steps = search(flaky)  # type: ignore[arg-type]
    confirms = [(s.rate_rps, s.judgement.passed) for s in steps if s.phase == "confirm"]
    assert confirms == [(1562.5, True), (1562.5, False), (1500.0, True), (1500.0, True)]
    assert outcome.capacity_rps == 1500.0
    assert outcome.lowest_failing_rps == 1562.5
    assert outcome.passes_at_capacity == 3  # its bisection step and two confirmations


def test_a_failed_confirmation_with_no_held_rate_below_backs_off():
    # every rate from 250 fails but 125 (down), whose confirmation fails: nothing held below
    class OnlyOnce:
        def __init__(self) -> None:
            self.tries = 0

        def __call__(self, probe: Probe) -> Observation:
            self.tries += probe.rate_rps == 125.0
            held = probe.rate_rps <= 120 or (probe.rate_rps == 125.0 and self.tries == 1)
            return Observation(
                offered_rps=probe.rate_rps,
                sent_rps=probe.rate_rps,
                achieved_rps=probe.rate_rps,
                latency_percentiles_us={"99": 10_000.0 if held else 80_000.0},
                error_rate=0.0,
            )

    outcome, steps = search(OnlyOnce())  # type: ignore[arg-type]
    backed = round(125.0 * 0.95, 1)
    assert [s.rate_rps for s in steps if s.phase == "confirm"] == [125.0] + [backed] * 3
    assert outcome.capacity_rps == backed


def test_a_lucky_step_far_above_the_edge_costs_steps_not_the_answer():
    # the edge is 1000 req/s, but 1500's one bisection step held (a fast spell of the machine):
    # its confirmation fails and the search bisects again from 1000, the highest rate below
    # that held; 5 % back-offs from 1500 would have ended with no rate held
    flaky = FlakyAt(edge=1000.0, flaky_rate=1500.0, fail_tries={2, 3})
    outcome, steps = search(flaky)  # type: ignore[arg-type]
    assert outcome.capacity_rps is not None
    assert 1000.0 / 1.05 <= outcome.capacity_rps <= 1000.0
    assert outcome.lowest_failing_rps is not None
    assert outcome.lowest_failing_rps <= 1000.0 * 1.05
    assert ("bisect", 1250.0) in [(s.phase, s.rate_rps) for s in steps]


def test_a_rate_that_never_confirms_gives_no_capacity_after_the_backoffs():
    class AlwaysFlaky:
        def __init__(self) -> None:
            self.seen: dict[float, int] = {}

        def __call__(self, probe: Probe) -> Observation:
            tries = self.seen[probe.rate_rps] = self.seen.get(probe.rate_rps, 0) + 1
            p99 = 10_000.0 if tries == 1 and probe.rate_rps < 1600 else 80_000.0
            return Observation(
                offered_rps=probe.rate_rps,
                sent_rps=probe.rate_rps,
                achieved_rps=probe.rate_rps,
                latency_percentiles_us={"99": p99},
                error_rate=0.0,
            )

    outcome, steps = search(AlwaysFlaky(), max_backoffs=2)  # type: ignore[arg-type]
    assert outcome.capacity_rps is None
    assert "did not hold reliably" in outcome.limit_text
    # every rate passes its first step and fails its confirmation: three failed confirmations
    confirms = [s for s in steps if s.phase == "confirm"]
    assert [c.judgement.passed for c in confirms] == [False, False, False]


def test_an_interrupted_search_resumes_from_its_recorded_steps():
    whole, whole_steps = search(ModelServer(mu=2000.0))

    class Interrupt(Exception):
        pass

    model = ModelServer(mu=2000.0)
    recorded: list[Step] = []

    def stop_after_five(probe: Probe) -> Observation:
        if len(recorded) == 5:
            raise Interrupt
        return model(probe)

    with pytest.raises(Interrupt):
        Search(settings()).run(stop_after_five, on_step=recorded.append)
    assert len(recorded) == 5
    resumed = Search(settings(), steps=list(recorded))
    outcome = resumed.run(ModelServer(mu=2000.0))
    assert outcome == whole
    assert [s.rate_rps for s in resumed.steps] == [s.rate_rps for s in whole_steps]


def test_steps_from_other_settings_are_refused_on_resume():
    _, steps = search(ModelServer(mu=2000.0))
    with pytest.raises(ResultsError, match="other search settings"):
        next_action(settings(start_rps=300.0), steps)


def test_a_finished_search_replays_to_its_outcome():
    outcome, steps = search(ModelServer(mu=2000.0))
    assert next_action(settings(), steps) == outcome
    assert next_action(settings(), []) == Probe(rate_rps=250.0, phase="coarse")


def test_judgement_texts_carry_the_numbers():
    passed = judge(
        settings(),
        Observation(
            offered_rps=1000.0,
            sent_rps=1000.0,
            achieved_rps=1000.0,
            latency_percentiles_us={"99": 12_345.0},
            error_rate=0.0,
        ),
    )
    assert passed.passed
    assert passed.text == "held at 1,000 req/s offered: p99 12.35 ms <= 50 ms, errors 0.00 %"
    broke = judge(
        settings(),
        Observation(
            offered_rps=3000.0,
            sent_rps=3000.0,
            achieved_rps=2000.0,
            latency_percentiles_us={"99": 900_000.0},
            error_rate=0.02,
        ),
    )
    assert not broke.passed
    assert broke.reasons == ("errors", "latency", "shortfall")
    assert "errors 2.00 % > budget 0.1 %" in broke.text
    assert "p99 900.00 ms > 50 ms" in broke.text
    assert "answered 2,000 of 3,000 req/s sent" in broke.text


def test_a_step_without_the_slo_percentile_fails_as_latency():
    verdict = judge(
        settings(),
        Observation(
            offered_rps=100.0,
            sent_rps=100.0,
            achieved_rps=0.0,
            latency_percentiles_us={},
            error_rate=1.0,
        ),
    )
    assert not verdict.passed
    assert "latency" in verdict.reasons


def test_a_record_survives_the_json_round_trip():
    import msgspec

    from serverbench.plan.capacity import CapacityRecord

    outcome, steps = search(ModelServer(mu=2000.0))
    record = CapacityRecord(
        stack="gunicorn",
        app="seed-flask",
        peak_rps=2100.0,
        settings=settings(),
        steps=tuple(steps),
        outcome=outcome,
    )
    again = msgspec.json.decode(msgspec.json.encode(record), type=CapacityRecord)
    assert again == record
    assert next_action(again.settings, again.steps) == outcome
    unfinished = CapacityRecord(
        stack="gunicorn",
        app="seed-flask",
        peak_rps=None,
        settings=settings(),
        steps=(),
        outcome=None,
    )
    assert msgspec.json.decode(msgspec.json.encode(unfinished), type=CapacityRecord) == unfinished


def test_a_slightly_late_generator_is_noted_not_blamed():
    # latency runs from the intended send time: lateness only makes a step look worse
    verdict = judge(
        settings(),
        Observation(
            offered_rps=4.0,
            sent_rps=4.0,
            achieved_rps=4.0,
            latency_percentiles_us={"99": 3_000.0},
            error_rate=0.0,
            generator_lag_p99_us=1_080.0,
            generator_behind="send lag p99 1.08 ms is above 1 ms: requests left late",
        ),
    )
    assert verdict.passed
    assert "the load generator ran late (send lag p99 1.08 ms" in verdict.text


def test_a_late_generator_where_the_step_broke_is_blamed():
    verdict = judge(
        settings(),
        Observation(
            offered_rps=40_000.0,
            sent_rps=39_000.0,
            achieved_rps=39_000.0,
            latency_percentiles_us={"99": 80_000.0},
            error_rate=0.0,
            generator_lag_p99_us=30_000.0,
        ),
    )
    assert verdict.reasons == ("generator", "latency")
    assert "send lag p99 30.00 ms" in verdict.text


def test_a_generator_that_overran_is_the_generator_not_errors():
    verdict = judge(
        settings(),
        Observation(
            offered_rps=40_000.0,
            sent_rps=None,
            achieved_rps=0.0,
            latency_percentiles_us={},
            error_rate=1.0,
            generator_failure="open-loop client processes did not finish in time",
        ),
    )
    assert verdict.reasons == ("generator",)


def test_a_busy_cpu_the_server_did_not_use_is_contention():
    class Neighbour(ModelServer):
        def __call__(self, probe: Probe) -> Observation:
            seen = super().__call__(probe)
            # the server got a third of its CPU: others used the rest
            return Observation(
                **{
                    **{f: getattr(seen, f) for f in Observation.__dataclass_fields__},
                    "server_cpu_utilisation": (seen.server_cpu_utilisation or 0) / 3,
                    "server_cpus_foreign": 0.6,
                }
            )

    outcome, _ = search(Neighbour(mu=600.0))
    assert outcome.limit == "contention"
    assert "other processes ran there: they took 60 % of those CPUs" in outcome.limit_text


def test_a_late_generator_is_blamed_only_when_its_lag_explains_the_excess():
    seen: dict[str, Any] = {
        "offered_rps": 300.0,
        "sent_rps": 300.0,
        "achieved_rps": 300.0,
        "error_rate": 0.0,
        "generator_lag_p99_us": 5_000.0,
    }
    far_over = judge(settings(), Observation(**seen, latency_percentiles_us={"99": 776_000.0}))
    assert far_over.reasons == ("latency",)
    just_over = judge(settings(), Observation(**seen, latency_percentiles_us={"99": 53_000.0}))
    assert just_over.reasons == ("generator", "latency")


def test_a_step_the_generator_spoiled_once_is_measured_again():
    class StallsOnce(ModelServer):
        def __call__(self, probe: Probe) -> Observation:
            seen = super().__call__(probe)
            if len(self.probes) == 1:  # the generator stalled 1.4 s in the first step
                return dataclasses.replace(
                    seen,
                    latency_percentiles_us={"99": 1_400_000.0},
                    generator_lag_p99_us=1_392_000.0,
                )
            return seen

    import dataclasses

    outcome, steps = search(StallsOnce(mu=2000.0))
    clean, _ = search(ModelServer(mu=2000.0))
    assert [s.rate_rps for s in steps][:2] == [250.0, 250.0]
    assert steps[0].judgement.reasons == ("generator", "latency")
    assert steps[1].judgement.passed
    assert outcome.capacity_rps == clean.capacity_rps
    assert outcome.limit == "server_cpu"


def measured(rate: float, latencies_us: dict[float, int], **changes: Any) -> Observation:
    """An observation of `rate` whose requests took the given latencies (us -> count), with
    their histogram, so it pools."""
    hist = new_histogram()
    for value, count in latencies_us.items():
        hist.record_value(value, count)
    blob = encoded(hist)
    fields: dict[str, Any] = {
        "offered_rps": rate,
        "sent_rps": rate,
        "achieved_rps": rate,
        "latency_percentiles_us": percentiles_from_hdr(blob, (50, 99)),
        "error_rate": 0.0,
        "requests": sum(latencies_us.values()),
        "latency_histogram_hdr": blob,
    }
    return Observation(**{**fields, **changes})


def test_pooled_measurements_are_every_request_together():
    quick = measured(1000.0, {5_000: 1000})
    stalled = measured(1000.0, {5_000: 980, 500_000: 20}, error_rate=0.002)  # p99 500 ms
    together = pooled([quick, stalled, quick])
    assert together is not None
    assert together.requests == 3000
    # 20 slow of 3,000 is 0.67 %: the p99 of all the requests is the quick one
    assert together.latency_percentiles_us["99"] == pytest.approx(5_000, rel=0.001)
    assert together.error_rate == pytest.approx(0.002 / 3)  # 2 of 3,000: within the budget
    assert judge(settings(), stalled).passed is False
    assert judge_rate(settings(), [quick, stalled, quick]).passed
    assert "over its 3 measurements, 3,000 requests together" in (
        judge_rate(settings(), [quick, stalled, quick]).text
    )
    # a failed stack or a measurement without a histogram does not pool
    assert pooled([quick, measured(1000.0, {5_000: 10}, failure="died")]) is None
    assert pooled([quick, dataclasses.replace(quick, latency_histogram_hdr=None)]) is None


class StallsOnce:
    """A server that holds every rate below `edge` with p99 5 ms, except that one measurement
    (the `stall_on`-th at `stall_rate`) catches a pause delaying `stalled_share` of its
    requests by 400 ms; everything above `edge` is slow throughout."""

    def __init__(self, stall_rate: float, stall_on: int, stalled_share: float) -> None:
        self.edge = 1600.0
        self.stall_rate, self.stall_on, self.stalled_share = stall_rate, stall_on, stalled_share
        self.tries = 0

    def __call__(self, probe: Probe) -> Observation:
        rate, requests = probe.rate_rps, 1000
        if rate > self.edge:
            return measured(rate, {400_000: requests})
        if rate == self.stall_rate:
            self.tries += 1
            if self.tries == self.stall_on:
                slow = round(requests * self.stalled_share)
                return measured(rate, {5_000: requests - slow, 400_000: slow})
        return measured(rate, {5_000: requests})


def test_one_paused_window_does_not_fail_a_rate_all_of_whose_requests_held():
    # 250 500 1000 2000x 1500 1750x 1625x 1562.5, then two confirmations of 1562.5: the first
    # caught a pause delaying 2 % of its requests (its own p99 400 ms)
    server = StallsOnce(stall_rate=1562.5, stall_on=2, stalled_share=0.02)
    outcome, steps = search(server)  # type: ignore[arg-type]
    confirms = [(s.rate_rps, s.judgement.passed) for s in steps if s.phase == "confirm"]
    assert confirms == [(1562.5, False), (1562.5, True)]
    assert outcome.capacity_rps == 1562.5
    assert outcome.pooled
    assert outcome.passes_at_capacity == 3
    # 20 slow requests of 3,000: the p99 of the rate is the quick one
    assert outcome.latency_at_capacity_us == pytest.approx(5_000, rel=0.001)


def test_a_rate_whose_requests_together_break_the_slo_backs_off():
    # the pause delayed 5 % of one window: 50 of 3,000 requests, 1.7 %, past the p99
    server = StallsOnce(stall_rate=1562.5, stall_on=2, stalled_share=0.05)
    outcome, steps = search(server)  # type: ignore[arg-type]
    confirms = [s.rate_rps for s in steps if s.phase == "confirm"]
    assert confirms == [1562.5, 1562.5, 1500.0, 1500.0]
    assert outcome.capacity_rps == 1500.0
    assert outcome.lowest_failing_rps == 1562.5
    assert outcome.pooled
    assert outcome.passes_at_capacity == 3


def test_a_stack_failure_in_a_confirmation_fails_the_rate_at_once():
    class DiesOnce:
        def __init__(self) -> None:
            self.server = StallsOnce(stall_rate=0.0, stall_on=0, stalled_share=0.0)
            self.tries = 0

        def __call__(self, probe: Probe) -> Observation:
            if probe.rate_rps == 1562.5:
                self.tries += 1
                if self.tries == 2:
                    return measured(1562.5, {5_000: 1000}, failure="died during the step")
            return self.server(probe)

    outcome, steps = search(DiesOnce(), confirmations=3)  # type: ignore[arg-type]
    confirms = [s.rate_rps for s in steps if s.phase == "confirm"]
    # the failure ends 1562.5's confirmation after one step, not three
    assert confirms == [1562.5] + [1500.0] * 3
    assert outcome.capacity_rps == 1500.0


def test_a_pooled_search_replays_to_its_outcome():
    server = StallsOnce(stall_rate=1562.5, stall_on=2, stalled_share=0.02)
    outcome, steps = search(server)  # type: ignore[arg-type]
    assert next_action(settings(), steps) == outcome
