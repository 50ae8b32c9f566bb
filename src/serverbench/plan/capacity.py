"""The capacity search: the highest offered rate a stack holds within a latency SLO and an
error budget, found over an injected measure function.

The search is pure. Each step asks for one open-loop measurement at one offered rate (the
driver runs it on a fresh, verified, warmed stack and returns an `Observation`); the search
judges it and picks the next rate:

1. coarse: from a low rate, multiply by `growth` while the step passes;
2. down: if the very first rate fails, divide by `growth` until one passes (or `min_rps`);
3. bisect: between the highest passing and the lowest failing rate, until they are within
   `precision` (5 %) of each other;
4. confirm: the highest passing rate is measured `confirmations` more times; every repeat must
   pass. If one fails, the rate backs off by `precision` and is confirmed afresh (all
   `confirmations + 1` times), at most `max_backoffs` times.

The next rate depends only on the judgements of the steps so far, so `next_action(settings,
steps)` replays recorded steps and continues: results can be written after every step, and an
interrupted search resumes exactly where it stopped.

The answer names the limiting factor seen at the lowest failing rate: the load generator (it
fell behind, so the figure is a lower bound), a stack failure, the server's CPU (saturated
while the SLO or the budget broke), errors over the budget, or latency over the SLO with CPU to
spare; or the search's ceiling, when no rate up to `max_rps` failed.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from serverbench.errors import ResultsError
from serverbench.plan.slo import Slo, format_limit_us

Phase = Literal["coarse", "down", "bisect", "confirm"]
Reason = Literal["failure", "generator", "errors", "latency", "shortfall"]
Limit = Literal["generator", "failure", "server_cpu", "errors", "latency", "search_ceiling"]

# The server's CPU counts as the limit when it was this busy where the SLO broke: all of its
# CPUs together, or one process on its own core (a single-process server on two CPUs).
SERVER_CPU_SATURATED = 0.85
PROCESS_CPU_SATURATED = 0.90
# The generator is behind when it used this much of its CPUs, or sent fewer requests than
# offered while the server kept up (the shortfall is then the generator's own).
GENERATOR_CPU_SATURATED = 0.90
GENERATOR_SEND_SHARE = 0.95
# Good responses below this share of the requests sent: the server fell behind the offered rate
# (requests still queued when the step ended).
ANSWERED_SHARE = 0.90
RATE_MATCH = 1e-6  # relative tolerance when replaying recorded rates

LIMIT_NAMES: dict[Limit, str] = {
    "generator": "the load generator",
    "failure": "a stack failure",
    "server_cpu": "the server's CPU",
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
    max_backoffs: int = 3
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
    latency_percentiles_us: Mapping[str, float]  # "50", "99", "99.9" ... (must hold the SLO's)
    error_rate: float  # failed attempts / attempts
    server_cpu_utilisation: float | None = None  # 0-1 of the CPUs the server may use
    server_busiest_process_cpu: float | None = None  # 0-1 of one CPU
    generator_cpu_utilisation: float | None = None  # 0-1 of the generator's CPUs
    generator_behind: str | None = None  # the engine's own verdict that it fell behind, why
    failure: str | None = None  # the stack failed (died, unresponsive, wrong answer)

    @property
    def server_cpu_saturated(self) -> bool:
        total, busiest = self.server_cpu_utilisation, self.server_busiest_process_cpu
        return (total is not None and total >= SERVER_CPU_SATURATED) or (
            busiest is not None and busiest >= PROCESS_CPU_SATURATED
        )

    def server_cpu_text(self) -> str:
        parts = []
        if self.server_cpu_utilisation is not None:
            parts.append(f"the server used {self.server_cpu_utilisation * 100:.0f} % of its CPUs")
        if self.server_busiest_process_cpu is not None:
            parts.append(
                f"its busiest process {self.server_busiest_process_cpu * 100:.0f} % of one"
            )
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    passed: bool
    reasons: tuple[Reason, ...]  # why it failed, most telling first; empty when it passed
    text: str  # one sentence with the numbers


def judge(settings: SearchSettings, seen: Observation) -> Judgement:
    """Whether one step held the SLO and the budget, and if not, why."""
    slo = settings.slo
    notes: list[tuple[Reason, str]] = []
    latency = seen.latency_percentiles_us.get(slo.key)
    if seen.failure is not None:
        notes.append(("failure", f"the stack failed: {seen.failure}"))
    generator_busy = (
        seen.generator_cpu_utilisation is not None
        and seen.generator_cpu_utilisation >= GENERATOR_CPU_SATURATED
    )
    under_sent = (
        seen.sent_rps is not None and seen.sent_rps < GENERATOR_SEND_SHARE * seen.offered_rps
    )
    latency_over = latency is None or latency > slo.limit_us
    if generator_busy or seen.generator_behind or (under_sent and not latency_over):
        detail = [seen.generator_behind] if seen.generator_behind else []
        if seen.sent_rps is not None:
            detail.append(
                f"sent {format_rps(seen.sent_rps)} of {format_rps(seen.offered_rps)} req/s"
            )
        if seen.generator_cpu_utilisation is not None:
            detail.append(f"used {seen.generator_cpu_utilisation * 100:.0f} % of its CPUs")
        notes.append(("generator", "the load generator fell behind (" + ", ".join(detail) + ")"))
    if seen.error_rate > settings.max_error_rate:
        notes.append(
            (
                "errors",
                f"errors {seen.error_rate * 100:.2f} % > budget "
                f"{settings.max_error_rate * 100:g} %",
            )
        )
    if latency is None:
        if seen.failure is None:
            notes.append(("latency", f"no p{slo.key} was measured (no good response)"))
    elif latency > slo.limit_us:
        notes.append(
            (
                "latency",
                f"p{slo.key} {format_limit_us(round(latency))} > {format_limit_us(slo.limit_us)}",
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
    rate = f"at {format_rps(seen.offered_rps)} req/s offered"
    if not notes:
        shown = f"p{slo.key} {format_limit_us(round(latency or 0))}"
        return Judgement(
            passed=True,
            reasons=(),
            text=f"held {rate}: {shown} <= {format_limit_us(slo.limit_us)}, "
            f"errors {seen.error_rate * 100:.2f} %",
        )
    return Judgement(
        passed=False,
        reasons=tuple(reason for reason, _ in notes),
        text=f"broke {rate}: " + "; ".join(text for _, text in notes),
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
    passes_at_capacity: int  # every measurement at capacity_rps passed; this many were made
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


def _search(
    settings: SearchSettings,
) -> Generator[Probe, Judgement, tuple[float | None, float | None, int]]:
    """The search as a coroutine: yields probes, receives judgements, returns
    (capacity, lowest failing rate, passes at capacity)."""
    ceiling = _rounded(settings.max_rps)
    rate = _rounded(settings.start_rps)
    low: float | None = None
    high: float | None = None
    while True:
        verdict = yield Probe(rate_rps=rate, phase="coarse")
        if not verdict.passed:
            high = rate
            break
        low = rate
        if rate >= ceiling:
            return low, None, 1
        rate = min(_rounded(rate * settings.growth), ceiling)
    while low is None:
        rate = _rounded(rate / settings.growth)
        if rate < settings.min_rps:
            return None, high, 0
        verdict = yield Probe(rate_rps=rate, phase="down")
        if verdict.passed:
            low = rate
        else:
            high = rate
    while high / low - 1 > settings.precision:
        middle = _rounded((low + high) / 2)
        if middle in (low, high):
            break
        verdict = yield Probe(rate_rps=middle, phase="bisect")
        if verdict.passed:
            low = middle
        else:
            high = middle
    passes, needed = 1, settings.confirmations
    backoffs = 0
    while True:
        held = True
        for _ in range(needed):
            verdict = yield Probe(rate_rps=low, phase="confirm")
            if not verdict.passed:
                held = False
                break
            passes += 1
        if held:
            return low, high, passes
        if backoffs >= settings.max_backoffs:
            return None, low, 0
        backoffs += 1
        high = low
        low = _rounded(low * (1 - settings.precision))
        if low < settings.min_rps:
            return None, high, 0
        passes, needed = 0, settings.confirmations + 1


def next_action(settings: SearchSettings, steps: Sequence[Step]) -> Probe | Outcome:
    """The next probe after the recorded steps, or the outcome when the search is over."""
    search = _search(settings)
    try:
        probe = next(search)
        for step in steps:
            if abs(step.rate_rps - probe.rate_rps) > RATE_MATCH * max(1.0, probe.rate_rps):
                raise ResultsError(
                    f"recorded step {step.index} measured {step.rate_rps:g} req/s where this "
                    f"search asks for {probe.rate_rps:g}; the results file was written with other "
                    "search settings: start a new capacity run instead of resuming this one"
                )
            probe = search.send(judge(settings, step.observation))
        return probe
    except StopIteration as stop:
        capacity, failing, passes = stop.value
        return _outcome(settings, steps, capacity, failing, passes)


def _outcome(
    settings: SearchSettings,
    steps: Sequence[Step],
    capacity: float | None,
    failing: float | None,
    passes: int,
) -> Outcome:
    judged = [(step, judge(settings, step.observation)) for step in steps]
    failed = [(s, j) for s, j in judged if not j.passed]
    if failing is None or not failed:
        return Outcome(
            capacity_rps=capacity,
            lower_bound=True,
            lowest_failing_rps=None,
            passes_at_capacity=passes,
            limit="search_ceiling",
            limit_text=f"no rate failed up to the search's ceiling of "
            f"{format_rps(settings.max_rps)} req/s; the capacity is at least that",
            steps=len(steps),
        )
    # what broke at the edge: the lowest failing rate, its latest measurement
    edge_rate = min(s.rate_rps for s, _ in failed)
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
        passes_at_capacity=passes,
        limit=limit,
        limit_text=text,
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
    if "errors" in reasons:
        return "errors"
    return "latency"


@dataclass(slots=True)
class Search:
    """A search in progress: settings, the steps so far, and how each new one is recorded."""

    settings: SearchSettings
    steps: list[Step] = field(default_factory=list)

    def run(
        self,
        measure: Callable[[Probe], Observation],
        on_step: Callable[[Step], None] = lambda step: None,
    ) -> Outcome:
        """Measure until the search ends; `on_step` records each step as soon as it is judged."""
        while True:
            action = next_action(self.settings, self.steps)
            if isinstance(action, Outcome):
                return action
            seen = measure(action)
            step = Step(
                index=len(self.steps) + 1,
                phase=action.phase,
                rate_rps=action.rate_rps,
                observation=seen,
                judgement=judge(self.settings, seen),
            )
            self.steps.append(step)
            on_step(step)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityRecord:
    """One stack x app's search as the results file keeps it; `outcome` is None until it ends."""

    stack: str
    app: str
    peak_rps: float | None  # the closed-loop (wrk) peak measured first, the search's scale
    settings: SearchSettings
    steps: tuple[Step, ...]
    outcome: Outcome | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.stack, self.app)


# --- the JSON form --------------------------------------------------------------------------


def settings_to_dict(settings: SearchSettings) -> dict[str, Any]:
    fields = asdict(settings)
    fields["slo"] = {"percentile": settings.slo.percentile, "limit_us": settings.slo.limit_us}
    return fields


def settings_from_dict(data: Mapping[str, Any]) -> SearchSettings:
    slo = Slo(percentile=float(data["slo"]["percentile"]), limit_us=float(data["slo"]["limit_us"]))
    return SearchSettings(**{**data, "slo": slo})


def step_from_dict(data: Mapping[str, Any]) -> Step:
    seen = dict(data["observation"])
    seen["latency_percentiles_us"] = {
        str(k): float(v) for k, v in seen["latency_percentiles_us"].items()
    }
    verdict = data["judgement"]
    return Step(
        index=int(data["index"]),
        phase=data["phase"],
        rate_rps=float(data["rate_rps"]),
        observation=Observation(**seen),
        judgement=Judgement(
            passed=bool(verdict["passed"]), reasons=tuple(verdict["reasons"]), text=verdict["text"]
        ),
    )


def record_to_dict(record: CapacityRecord) -> dict[str, Any]:
    return {
        "stack": record.stack,
        "app": record.app,
        "peak_rps": record.peak_rps,
        "settings": settings_to_dict(record.settings),
        "steps": [asdict(step) for step in record.steps],
        "outcome": asdict(record.outcome) if record.outcome else None,
    }


def record_from_dict(data: Mapping[str, Any]) -> CapacityRecord:
    outcome = data.get("outcome")
    return CapacityRecord(
        stack=str(data["stack"]),
        app=str(data["app"]),
        peak_rps=None if data.get("peak_rps") is None else float(data["peak_rps"]),
        settings=settings_from_dict(data["settings"]),
        steps=tuple(step_from_dict(s) for s in data["steps"]),
        outcome=Outcome(**outcome) if outcome else None,
    )
