"""The capacity search: the highest offered rate a stack holds within a latency SLO and an
error budget, found over an injected measure function.

The search is pure. Each step asks for one open-loop measurement at one offered rate (the
driver runs it on a fresh, verified, warmed stack and returns an `Observation`); the search
judges it and picks the next rate:

1. coarse: from a low rate, multiply by `growth` while the step passes;
2. down: if the very first rate fails, divide by `growth` until one passes (or `min_rps`);
3. bisect: between the highest passing and the lowest failing rate, until they are within
   `precision` (5 %) of each other;
4. confirm: the highest passing rate is measured `confirmations` more times and judged on all
   its measurements together: their latency histograms merged, their errors summed, so the
   SLO's percentile is that of every request offered at the rate, not of one short window
   that a single VM pause can spoil. A stack failure, a generator that failed, or
   measurements without histograms (files from before pooling) are not pooled: then every
   measurement must pass on its own.
5. a rate that fails its confirmation is the bracket's new top; the search goes back to the
   highest rate below it that held a step, bisects again if that lies more than `precision`
   below, and confirms afresh; with no such rate it backs off by `precision`. The search goes
   on after `max_backoffs` failed confirmations; the next one ends it: no rate held.

The next rate depends only on the judgements of the steps so far, so `next_action(settings,
steps)` replays recorded steps and continues: results can be written after every step, and an
interrupted search resumes exactly where it stopped.

The answer names the limiting factor seen at the lowest failing rate: the load generator (it
fell behind, so the figure is a lower bound), a stack failure, the server's CPU (saturated
while the SLO or the budget broke), errors over the budget, or latency over the SLO with CPU to
spare; or the search's ceiling, when no rate up to `max_rps` failed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from serverbench.errors import ResultsError
from serverbench.load.histogram import merge_histograms, percentiles_from_hdr
from serverbench.plan.slo import Slo, format_latency_us, format_limit_us

Phase = Literal["coarse", "down", "bisect", "confirm"]
Reason = Literal["failure", "generator", "errors", "latency", "shortfall"]
Limit = Literal[
    "generator", "failure", "server_cpu", "contention", "errors", "latency", "search_ceiling"
]

# The server's CPU counts as the limit when it was this busy where the SLO broke: all of its
# CPUs together, or one process on its own core (a single-process server on two CPUs).
SERVER_CPU_SATURATED = 0.85
PROCESS_CPU_SATURATED = 0.90
# Processes outside the benchmark (kernel threads apart: on loopback they do the benchmark's
# own network work) took this share of the server's CPUs while the server itself used less
# than SERVER_CPU_SATURATED of them: the figure is not the server's alone.
OTHERS_SHARE = 0.25
# The generator is to blame when it used this much of its CPUs where the step broke (or sent
# so late that without its lag the step would have held), or sent fewer requests than offered
# while the server kept up (the shortfall is then its own).
GENERATOR_CPU_SATURATED = 0.90
GENERATOR_SEND_SHARE = 0.95
# Good responses below this share of the requests sent: the server fell behind the offered rate
# (requests still queued when the step ended).
ANSWERED_SHARE = 0.90
GENERATOR_RETRIES = 2  # a step the generator spoiled is measured again this many times
RATE_MATCH = 1e-6  # relative tolerance when replaying recorded rates

LIMIT_NAMES: dict[Limit, str] = {
    "generator": "the load generator",
    "failure": "a stack failure",
    "server_cpu": "the server's CPU",
    "contention": "other processes on the server's CPUs",
    "errors": "errors",
    "latency": "latency",
    "search_ceiling": "the search's ceiling",
}


def format_rps(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchSettings:
    slo: Slo
    max_error_rate: float = 0.001  # 0.1 % of attempts
    start_rps: float = 100.0
    growth: float = 2.0
    precision: float = 0.05  # bisect until the bracket is this narrow, relative to its bottom
    confirmations: int = 2  # extra repeats of the final rate, each on a fresh stack
    max_backoffs: int = 3  # failed confirmations the search goes on after (see MAX_BACKOFFS)
    min_rps: float = 1.0
    max_rps: float = 100_000.0  # the search's ceiling (--max-rate): it always ends

    def __post_init__(self) -> None:
        # programming errors: the command line validates what users give
        assert 0 < self.min_rps <= self.start_rps <= self.max_rps
        assert self.growth > 1
        assert 0 < self.precision < 1
        assert min(self.confirmations, self.max_backoffs) >= 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What one open-loop step measured, engine-neutral."""

    offered_rps: float
    sent_rps: float | None  # requests the generator actually started per second
    achieved_rps: float  # good responses per second
    latency_percentiles_us: dict[str, float]  # "50", "99", "99.9" ... (must hold the SLO's)
    error_rate: float  # failed attempts / attempts
    server_cpu_utilisation: float | None = None  # 0-1 of the CPUs the server may use
    server_busiest_process_cpu: float | None = None  # 0-1 of one CPU
    server_cpus_busy: float | None = None  # 0-1: the server CPUs' busy time, anything's
    # 0-1 of the server CPUs' time: processes outside the benchmark, kernel threads apart
    server_cpus_foreign: float | None = None
    generator_cpu_utilisation: float | None = None  # 0-1 of the generator's CPUs
    generator_lag_p99_us: float | None = None  # how late the generator sent, its p99
    generator_behind: str | None = None  # the engine's own note that it ran late, and why
    generator_failure: str | None = None  # the generator itself failed or overran
    failure: str | None = None  # the stack failed (died, unresponsive, wrong answer)
    requests: int | None = None  # requests due in the measured window
    latency_histogram_hdr: str | None = None  # their latencies, base64 HdrHistogram

    @property
    def poolable(self) -> bool:
        """Whether its requests can join other measurements' at the same rate."""
        return (
            self.failure is None
            and self.generator_failure is None
            and bool(self.requests)
            and self.latency_histogram_hdr is not None
        )

    @property
    def server_cpu_saturated(self) -> bool:
        total, busiest = self.server_cpu_utilisation, self.server_busiest_process_cpu
        return (total is not None and total >= SERVER_CPU_SATURATED) or (
            busiest is not None and busiest >= PROCESS_CPU_SATURATED
        )

    @property
    def contended(self) -> bool:
        foreign = self.server_cpus_foreign
        return foreign is not None and foreign >= OTHERS_SHARE and not self.server_cpu_saturated

    def server_cpu_text(self) -> str:
        parts = []
        if self.server_cpu_utilisation is not None:
            parts.append(f"the server used {self.server_cpu_utilisation * 100:.0f} % of its CPUs")
        if self.server_busiest_process_cpu is not None:
            parts.append(
                f"its busiest process {self.server_busiest_process_cpu * 100:.0f} % of one"
            )
        if self.contended and self.server_cpus_foreign is not None:
            parts.append(
                f"while other processes ran there: they took {self.server_cpus_foreign * 100:.0f}"
                " % of those CPUs"
            )
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    passed: bool
    reasons: tuple[Reason, ...]  # why it failed, most telling first; empty when it passed
    text: str  # one sentence with the numbers

    @property
    def summary(self) -> str:
        """`held`, or `broke: latency, errors`: the verdict without its numbers."""
        return "held" if self.passed else "broke: " + ", ".join(self.reasons)


def _generator_text(seen: Observation) -> str:
    detail = []
    if seen.generator_failure:
        detail.append(seen.generator_failure)
    if seen.sent_rps is not None:
        detail.append(f"sent {format_rps(seen.sent_rps)} of {format_rps(seen.offered_rps)} req/s")
    if seen.generator_lag_p99_us is not None:
        detail.append(f"send lag p99 {format_latency_us(seen.generator_lag_p99_us)}")
    if seen.generator_cpu_utilisation is not None:
        detail.append(f"{seen.generator_cpu_utilisation * 100:.0f} % of its CPUs")
    return ", ".join(detail)


def judge(settings: SearchSettings, seen: Observation) -> Judgement:
    """Whether one step held the SLO and the budget, and if not, why.

    Latency runs from each request's intended send time, so a generator that ran a little late
    only makes a step look worse, never better: its lateness is noted, and blamed only when the
    step broke and the generator was busy or late enough to matter against the SLO, or when it
    could not send the offered rate at all while the server kept up.
    """
    slo = settings.slo
    notes: list[tuple[Reason, str]] = []
    latency = seen.latency_percentiles_us.get(slo.key)
    if seen.failure is not None:
        notes.append(("failure", f"the stack failed: {seen.failure}"))
    if seen.error_rate > settings.max_error_rate and seen.generator_failure is None:
        notes.append(
            (
                "errors",
                f"errors {seen.error_rate * 100:.2f} % > budget "
                f"{settings.max_error_rate * 100:g} %",
            )
        )
    if latency is None:
        if seen.failure is None and seen.generator_failure is None:
            notes.append(("latency", f"no p{slo.key} was measured (no good response)"))
    elif latency > slo.limit_us:
        notes.append(
            (
                "latency",
                f"p{slo.key} {format_latency_us(latency)} > {format_limit_us(slo.limit_us)}",
            )
        )
    sent = seen.sent_rps if seen.sent_rps is not None else seen.offered_rps
    # failed attempts count against the error budget, not twice: only requests left without
    # any answer make a shortfall
    answerable = sent * (1 - seen.error_rate)
    if answerable > 0 and seen.achieved_rps < ANSWERED_SHARE * answerable and seen.failure is None:
        notes.append(
            (
                "shortfall",
                f"answered {format_rps(seen.achieved_rps)} of {format_rps(sent)} req/s sent",
            )
        )
    busy = (
        seen.generator_cpu_utilisation is not None
        and seen.generator_cpu_utilisation >= GENERATOR_CPU_SATURATED
    )
    # late enough to matter: without its send lag the step's latency would have held
    late = (
        seen.generator_lag_p99_us is not None
        and latency is not None
        and latency > slo.limit_us >= latency - seen.generator_lag_p99_us
    )
    under_sent = (
        seen.sent_rps is not None and seen.sent_rps < GENERATOR_SEND_SHARE * seen.offered_rps
    )
    if seen.generator_failure or (notes and (busy or late)) or (under_sent and not notes):
        notes.insert(0, ("generator", f"the load generator fell behind ({_generator_text(seen)})"))
    rate = f"at {format_rps(seen.offered_rps)} req/s offered"
    if not notes:
        shown = f"p{slo.key} {format_latency_us(latency or 0)}"
        ran_late = (
            f"; the load generator ran late ({seen.generator_behind}), which the latency includes"
            if seen.generator_behind
            else ""
        )
        return Judgement(
            passed=True,
            reasons=(),
            text=f"held {rate}: {shown} <= {format_limit_us(slo.limit_us)}, "
            f"errors {seen.error_rate * 100:.2f} %{ran_late}",
        )
    return Judgement(
        passed=False,
        reasons=tuple(reason for reason, _ in notes),
        text=f"broke {rate}: " + "; ".join(text for _, text in notes),
    )


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def pooled(seen: Sequence[Observation]) -> Observation | None:
    """Several measurements at one rate as one: every request of them together (histograms
    merged exactly, errors summed), rates and CPU shares averaged, the generator's worst lag.
    None when one of them cannot be pooled (see `Observation.poolable`)."""
    if not seen or not all(s.poolable for s in seen):
        return None
    counts = [s.requests or 0 for s in seen]
    blob = merge_histograms([s.latency_histogram_hdr or "" for s in seen])
    keys = dict.fromkeys(k for s in seen for k in s.latency_percentiles_us)
    lags = [s.generator_lag_p99_us for s in seen if s.generator_lag_p99_us is not None]
    return Observation(
        offered_rps=seen[0].offered_rps,
        sent_rps=_mean([s.sent_rps for s in seen]),
        achieved_rps=statistics.fmean(s.achieved_rps for s in seen),
        latency_percentiles_us=percentiles_from_hdr(blob, [float(k) for k in keys]) if blob else {},
        error_rate=sum(s.error_rate * n for s, n in zip(seen, counts, strict=True)) / sum(counts),
        server_cpu_utilisation=_mean([s.server_cpu_utilisation for s in seen]),
        server_busiest_process_cpu=_mean([s.server_busiest_process_cpu for s in seen]),
        server_cpus_busy=_mean([s.server_cpus_busy for s in seen]),
        server_cpus_foreign=_mean([s.server_cpus_foreign for s in seen]),
        generator_cpu_utilisation=_mean([s.generator_cpu_utilisation for s in seen]),
        generator_lag_p99_us=max(lags) if lags else None,
        generator_behind=next((s.generator_behind for s in seen if s.generator_behind), None),
        requests=sum(counts),
        latency_histogram_hdr=blob,
    )


def judge_rate(settings: SearchSettings, seen: Sequence[Observation]) -> Judgement:
    """Whether a rate held over all its measurements: judged on their requests together when
    they pool, else each must pass (the first failure is the verdict)."""
    together = pooled(seen) if len(seen) > 1 else None
    if together is None:
        verdicts = [judge(settings, s) for s in seen]
        return next((v for v in verdicts if not v.passed), verdicts[-1])
    verdict = judge(settings, together)
    return Judgement(
        passed=verdict.passed,
        reasons=verdict.reasons,
        text=f"{verdict.text} (over its {len(seen)} measurements, "
        f"{together.requests or 0:,} requests together)",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """The next step to measure."""

    rate_rps: float
    phase: Phase


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One measured step of the search, as recorded."""

    index: int  # 1-based
    phase: Phase
    rate_rps: float
    observation: Observation
    judgement: Judgement


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The answer: the capacity, how sure it is, and what limited it."""

    capacity_rps: float | None  # None: not even min_rps held
    lower_bound: bool  # the true capacity may be higher (the generator or the ceiling stopped it)
    lowest_failing_rps: float | None  # the bracket's top: the true edge lies below it
    passes_at_capacity: int  # measurements at capacity_rps: each passed, or `pooled`, together
    pooled: bool = False  # judged on all their requests together (see `judge_rate`)
    # the SLO's percentile at capacity_rps: over its pooled requests, else the worst measurement
    latency_at_capacity_us: float | None = None
    limit: Limit
    limit_text: str  # what was seen, with numbers
    steps: int

    @property
    def resolution(self) -> float | None:
        """(lowest failing - capacity) / capacity: how far above the answer the edge may lie."""
        if self.capacity_rps is None or self.lowest_failing_rps is None:
            return None
        return self.lowest_failing_rps / self.capacity_rps - 1


def _rounded(rate: float) -> float:
    # one decimal: rates stay readable in the results and replay exactly from JSON
    return round(rate, 1)


def _measured(
    settings: SearchSettings, probe: Probe
) -> Generator[Probe, Observation, tuple[Observation, Judgement]]:
    """One step and its judgement. A step the load generator spoiled says nothing about the
    server (a stall of the generator alone can push a tail past any SLO), so it is measured
    again, up to GENERATOR_RETRIES more times; only a generator that fails every time is the
    limit."""
    for _ in range(GENERATOR_RETRIES):
        seen = yield probe
        verdict = judge(settings, seen)
        if "generator" not in verdict.reasons:
            return seen, verdict
    seen = yield probe
    return seen, judge(settings, seen)


# what the search coroutine returns: the capacity, the lowest failing rate, the measurements
# at the capacity
Found = tuple[float | None, float | None, list[Observation]]


def _search(
    settings: SearchSettings, rates: list[Judgement]
) -> Generator[Probe, Observation, Found]:
    """The search as a coroutine: yields probes, receives what each measured, and appends to
    `rates` the verdict on each confirmed rate, over all its measurements, as it is reached."""
    ceiling = _rounded(settings.max_rps)
    rate = _rounded(settings.start_rps)
    low: float | None = None
    high: float | None = None
    at_low: list[Observation] = []  # the measurements at `low`
    passed: dict[float, Observation] = {}  # each rate a single step held, outside confirmations
    while True:
        seen, verdict = yield from _measured(settings, Probe(rate_rps=rate, phase="coarse"))
        if not verdict.passed:
            high = rate
            break
        low, at_low = rate, [seen]
        passed[rate] = seen
        if rate >= ceiling:
            return low, None, at_low
        rate = min(_rounded(rate * settings.growth), ceiling)
    while low is None:
        rate = _rounded(rate / settings.growth)
        if rate < settings.min_rps:
            return None, high, []
        seen, verdict = yield from _measured(settings, Probe(rate_rps=rate, phase="down"))
        if verdict.passed:
            low, at_low = rate, [seen]
            passed[rate] = seen
        else:
            high = rate
    failed_confirmations = 0
    while True:
        while high / low - 1 > settings.precision:
            middle = _rounded((low + high) / 2)
            if middle in (low, high):
                break
            seen, verdict = yield from _measured(settings, Probe(rate_rps=middle, phase="bisect"))
            if verdict.passed:
                low, at_low = middle, [seen]
                passed[middle] = seen
            else:
                high = middle
        for _ in range(settings.confirmations + 1 - len(at_low)):
            seen, verdict = yield from _measured(settings, Probe(rate_rps=low, phase="confirm"))
            at_low.append(seen)
            if not verdict.passed and not seen.poolable:
                break  # a failed stack or generator is not outweighed by other measurements
        rates.append(judge_rate(settings, at_low))
        if rates[-1].passed:
            return low, high, at_low
        if failed_confirmations >= settings.max_backoffs:
            return None, low, []
        failed_confirmations += 1
        # the rate failed: the edge lies below it. The search goes on from the highest rate
        # below that held a step (bisecting again if it lies more than `precision` below), so
        # a lucky step far above the edge, in a fast spell of the machine, costs steps, not
        # the answer; with none below, it backs off by `precision`.
        high = low
        below = [r for r in passed if r < high]
        if below:
            low = max(below)
            at_low = [passed[low]]
        else:
            low = _rounded(high * (1 - settings.precision))
            at_low = []
            if low < settings.min_rps:
                return None, high, []


def next_action(settings: SearchSettings, steps: Sequence[Step]) -> Probe | Outcome:
    """The next probe after the recorded steps, or the outcome when the search is over."""
    return _replay(settings, steps)[0]


def rate_verdicts(settings: SearchSettings, steps: Sequence[Step]) -> dict[int, Judgement]:
    """By the index of the step that completed it: each confirmed rate's verdict over all its
    measurements (what decided the rate, where a single step's verdict may differ)."""
    return _replay(settings, steps)[1]


def _replay(
    settings: SearchSettings, steps: Sequence[Step]
) -> tuple[Probe | Outcome, dict[int, Judgement]]:
    rates: list[Judgement] = []
    verdicts: dict[int, Judgement] = {}
    search = _search(settings, rates)
    try:
        probe = next(search)
        for step in steps:
            if abs(step.rate_rps - probe.rate_rps) > RATE_MATCH * max(1.0, probe.rate_rps):
                raise ResultsError(
                    f"recorded step {step.index} measured {step.rate_rps:g} req/s where this "
                    f"search asks for {probe.rate_rps:g}; the results file was written with other "
                    "search settings: start a new capacity run instead of resuming this one"
                )
            known = len(rates)
            try:
                probe = search.send(step.observation)
            finally:
                if len(rates) > known:
                    verdicts[step.index] = rates[-1]
        return probe, verdicts
    except StopIteration as stop:
        capacity, failing, at_capacity = stop.value
        return _outcome(settings, steps, capacity, failing, at_capacity), verdicts


def _at_capacity_latency(
    settings: SearchSettings, seen: Sequence[Observation], together: Observation | None
) -> float | None:
    values = [
        s.latency_percentiles_us[settings.slo.key]
        for s in ([together] if together else seen)
        if settings.slo.key in s.latency_percentiles_us
    ]
    return max(values) if values else None


def _outcome(
    settings: SearchSettings,
    steps: Sequence[Step],
    capacity: float | None,
    failing: float | None,
    at_capacity: Sequence[Observation],
) -> Outcome:
    merged = pooled(at_capacity) if len(at_capacity) > 1 else None
    together = merged is not None
    latency = _at_capacity_latency(settings, at_capacity, merged)
    judged = [(step, judge(settings, step.observation)) for step in steps]
    failed = [(s, j) for s, j in judged if not j.passed]
    if failing is None or not failed:
        return Outcome(
            capacity_rps=capacity,
            lower_bound=True,
            lowest_failing_rps=None,
            limit="search_ceiling",
            limit_text=f"no rate failed up to the search's ceiling of "
            f"{format_rps(settings.max_rps)} req/s; the capacity is at least that",
            passes_at_capacity=len(at_capacity),
            pooled=together,
            latency_at_capacity_us=latency,
            steps=len(steps),
        )
    # what broke at the edge: the search's lowest failing rate (a rate that failed once and
    # then held, as after a generator stall, is not the edge), its latest measurement
    at_edge = [s.rate_rps for s, _ in failed if s.rate_rps == failing]
    edge_rate = at_edge[0] if at_edge else min(s.rate_rps for s, _ in failed)
    edge, verdict = [(s, j) for s, j in failed if s.rate_rps == edge_rate][-1]
    limit = _limit(edge.observation, verdict)
    text = verdict.text
    if edge.observation.server_cpu_text():
        text += f"; {edge.observation.server_cpu_text()}"
    if capacity is None and edge_rate > settings.min_rps:
        held = sorted({s.rate_rps for s, j in judged if j.passed})
        text = f"the SLO did not hold reliably at any rate: {text}" + (
            f" (rates that passed only sometimes: {', '.join(format_rps(r) for r in held)})"
            if held
            else ""
        )
    return Outcome(
        capacity_rps=capacity,
        lower_bound=limit == "generator",
        lowest_failing_rps=failing,
        limit=limit,
        limit_text=text,
        passes_at_capacity=len(at_capacity),
        pooled=together,
        latency_at_capacity_us=latency,
        steps=len(steps),
    )


def _limit(seen: Observation, verdict: Judgement) -> Limit:
    reasons = set(verdict.reasons)
    if "generator" in reasons:
        return "generator"
    if "failure" in reasons:
        return "failure"
    if seen.server_cpu_saturated:
        return "server_cpu"
    if seen.contended:
        return "contention"
    if "errors" in reasons:
        return "errors"
    return "latency"


@dataclass(slots=True)
class Search:
    """A search in progress: settings, the steps so far, and how each new one is recorded."""

    settings: SearchSettings
    steps: list[Step] = field(default_factory=list)
    # each confirmed rate's verdict over all its measurements, by the step that completed it
    rates: dict[int, Judgement] = field(default_factory=dict)

    def run(
        self,
        measure: Callable[[Probe], Observation],
        on_step: Callable[[Step], None] = lambda step: None,
    ) -> Outcome:
        """Measure until the search ends; `on_step` records each step as soon as it is judged
        (and `rates` holds the verdict on the rate it completed, if any)."""
        action, self.rates = _replay(self.settings, self.steps)
        while not isinstance(action, Outcome):
            seen = measure(action)
            step = Step(
                index=len(self.steps) + 1,
                phase=action.phase,
                rate_rps=action.rate_rps,
                observation=seen,
                judgement=judge(self.settings, seen),
            )
            self.steps.append(step)
            action, self.rates = _replay(self.settings, self.steps)
            on_step(step)
        return action


# Failed confirmations a search goes on after (the next one ends it). With 3, gunicorn got no
# capacity in 1 of 9 searches (benchmarks/capacity_repeatability.py, 2026-11-28): 18 steps crept
# down a fuzzy knee (1,110 -> 1,071 -> 1,031 -> 991 req/s, each failing its confirmation) while
# 952 had held a step; earlier, 4 of 45. Each more costs a confirmation or two, only at such a knee.
MAX_BACKOFFS = 5

# A search starts at a quarter of the stack's closed-loop peak: three doublings reach the peak,
# past which an open loop cannot hold any SLO, so the coarse steps bracket the answer quickly.
START_SHARE = 0.25
FALLBACK_START_RPS = 100.0  # when no peak was measured
MAX_RPS = 100_000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityPlan:
    """What a capacity run asks of every search: the targets and the shape of each step."""

    slo: Slo
    max_error_rate: float
    step_s: float  # measured seconds per step
    warmup_s: float  # the step's rate, discarded, on the same fresh stack
    timeout_s: float  # a request unanswered this long after it was due is a timeout
    confirmations: int = 2
    precision: float = 0.05
    start_rps: float | None = None  # absolute, or else ...
    start_share: float | None = None  # ... this share of the closed-loop peak (START_SHARE)
    max_rps: float = MAX_RPS
    # "slo", "max_errors" -> where each target came from: its flag, the project file, a default
    sources: dict[str, str] = field(default_factory=dict)
    repeats: int = 1  # whole searches per stack x app, in rounds over the stacks
    # new plans pass MAX_BACKOFFS; files written before it was recorded searched with 3
    max_backoffs: int = 3

    def search_settings(self, peak_rps: float | None) -> SearchSettings:
        share = self.start_share or START_SHARE
        start = self.start_rps or (peak_rps * share if peak_rps else FALLBACK_START_RPS)
        start = max(1.0, min(start, self.max_rps))
        return SearchSettings(
            slo=self.slo,
            max_error_rate=self.max_error_rate,
            start_rps=round(start, 1),
            precision=self.precision,
            confirmations=self.confirmations,
            max_backoffs=self.max_backoffs,
            max_rps=self.max_rps,
        )

    @property
    def step_planned_s(self) -> float:
        return 2.0 + self.warmup_s + self.step_s

    @property
    def targets_text(self) -> str:
        """`p99 <= 50 ms (from --slo), errors <= 0.1 % (serverbench's default)`."""

        def source(key: str) -> str:
            return f" ({self.sources[key]})" if key in self.sources else ""

        return (
            f"{self.slo.text}{source('slo')}, "
            f"errors <= {self.max_error_rate * 100:g} %{source('max_errors')}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityRecord:
    """One stack x app's search as the results file keeps it; `outcome` is None until it ends."""

    stack: str
    app: str
    peak_rps: float | None  # the closed-loop (wrk) peak measured first, the search's scale
    settings: SearchSettings
    steps: tuple[Step, ...]
    outcome: Outcome | None
    repeat: int = 1  # which of the plan's searches of this stack x app

    @property
    def key(self) -> tuple[str, str]:
        return (self.stack, self.app)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityFigure:
    """One stack x app's capacity over its searches: one, or several repeats of the search,
    whose spread is the run-to-run variation one search cannot show."""

    stack: str
    app: str
    records: tuple[CapacityRecord, ...]  # by repeat

    @property
    def capacities(self) -> list[float]:
        return [
            r.outcome.capacity_rps
            for r in self.records
            if r.outcome is not None and r.outcome.capacity_rps is not None
        ]

    @property
    def finished(self) -> bool:
        return all(r.outcome is not None for r in self.records)

    @property
    def lower_bound(self) -> bool:
        return any(r.outcome is not None and r.outcome.lower_bound for r in self.records)

    @property
    def capacity_rps(self) -> float | None:
        """The median over the searches that held a rate."""
        values = self.capacities
        return statistics.median(values) if values else None

    @property
    def spread_pct(self) -> float | None:
        """The searches' range over their median, in percent; None below two answers."""
        values, middle = self.capacities, self.capacity_rps
        if len(values) < 2 or not middle:
            return None
        return (max(values) - min(values)) / middle * 100

    @property
    def held_text(self) -> str:
        """`3 searches`, or `2 of 3 searches held a rate` (the median is of those)."""
        held, total = len(self.capacities), len(self.records)
        return f"{total} searches" if held == total else f"{held} of {total} searches held a rate"

    @property
    def limits(self) -> list[Limit]:
        """What limited the searches, each once, in the order first seen."""
        return list(dict.fromkeys(r.outcome.limit for r in self.records if r.outcome))


def any_pooled(records: Sequence[CapacityRecord]) -> bool:
    """Whether some search judged its capacity on its measurements' requests together (files
    from before pooling have none)."""
    return any(r.outcome is not None and r.outcome.pooled for r in records)


def capacity_figures(records: Sequence[CapacityRecord]) -> list[CapacityFigure]:
    """The searches grouped by stack x app, in the order each first appears."""
    groups: dict[tuple[str, str], list[CapacityRecord]] = {}
    for record in records:
        groups.setdefault(record.key, []).append(record)
    return [
        CapacityFigure(stack=stack, app=app, records=tuple(sorted(group, key=lambda r: r.repeat)))
        for (stack, app), group in groups.items()
    ]
