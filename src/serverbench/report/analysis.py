"""The per-stack prose of the report: strengths, weaknesses, reasons for the behaviour and the
resources each stack used.

Every sentence is produced by a rule from numbers in the results file and quotes the numbers it
relies on, so a reader can check it against the tables. Nothing here measures or guesses:
a rule that lacks its inputs (one profile only, no ceiling, no resource samples) stays silent.
The facts come from `report.facts`, the sanity warnings from `report.checks`, the ranking from
`report.ranking`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from serverbench.report.checks import ERROR_RATE_LIMIT, SPREAD_LIMIT_PCT
from serverbench.report.facts import (
    REFERENCE_ROLE,
    Facts,
    Resources,
    app_cost_skipped,
    app_cost_us,
    app_rate,
    app_workload,
    ceiling_for,
    profile_index,
    profile_order,
)
from serverbench.report.numbers import (
    error_breakdown,
    format_rate,
    format_us,
    mib,
    pct,
    rate_range,
)
from serverbench.report.waiting import model_sentence
from serverbench.results.model import ResultsDocument

CPU_BOUND = 0.85
CPU_IDLE = 0.60
SCALING_TOLERANCE_PCT = 10.0
TIGHT_TAIL = 3.0
LONG_TAIL = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class StackAnalysis:
    stack: str
    strengths: tuple[str, ...]
    weaknesses: tuple[str, ...]
    reasons: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(slots=True)
class _Prose:
    """The sentences about one stack, gathered while its cells are read."""

    strengths: list[str] = field(default_factory=list)
    weaknesses: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)


def _peers(facts: Sequence[Facts], app: str, profile: str) -> list[Facts]:
    return [
        f
        for f in facts
        if f.ok
        and f.cell.role != REFERENCE_ROLE
        and f.cell.app == app
        and f.cell.profile == profile
    ]


def _where(f: Facts) -> str:
    return f"{f.cell.app}, {f.cell.profile} ({f.connections:,} connections)"


def _throughput_rank(mine: Facts, peers: Sequence[Facts], prose: _Prose) -> None:
    by_rps = sorted(peers, key=lambda f: -f.rps)
    if by_rps[0] is mine:
        runner_up = by_rps[1]
        prose.strengths.append(
            f"Highest throughput for {_where(mine)}: {format_rate(mine.rps)} req/s, "
            f"{mine.rps / runner_up.rps:.2f}x {runner_up.cell.stack} ({format_rate(runner_up.rps)})."
            if runner_up.rps > 0
            else f"Highest throughput for {_where(mine)}: {format_rate(mine.rps)} req/s."
        )
    elif by_rps[-1] is mine:
        best = by_rps[0]
        prose.weaknesses.append(
            f"Lowest throughput for {_where(mine)}: {format_rate(mine.rps)} req/s against "
            f"{format_rate(best.rps)} for {best.cell.stack} ({pct(mine.rps / best.rps * 100)} of it)."
        )


def _latency_rank(mine: Facts, peers: Sequence[Facts], prose: _Prose) -> None:
    with_p99 = [f for f in peers if f.percentile("99") is not None]
    if len(with_p99) < 2 or mine.percentile("99") is None:
        return
    by_p99 = sorted(with_p99, key=lambda f: f.percentile("99") or 0.0)
    if by_p99[0] is mine:
        prose.strengths.append(
            f"Lowest p99 latency for {_where(mine)}: {format_us(mine.percentile('99'))} "
            f"(next: {by_p99[1].cell.stack} at {format_us(by_p99[1].percentile('99'))})."
        )
    elif by_p99[-1] is mine:
        prose.weaknesses.append(
            f"Highest p99 latency for {_where(mine)}: {format_us(mine.percentile('99'))} "
            f"(best: {by_p99[0].cell.stack} at {format_us(by_p99[0].percentile('99'))})."
        )


def _scaling(light: Facts, heavy: Facts, prose: _Prose) -> None:
    change = (heavy.rps / light.rps - 1) * 100 if light.rps else 0.0
    p99_light, p99_heavy = light.percentile("99"), heavy.percentile("99")
    latency = (
        f"; p99 goes from {format_us(p99_light)} to {format_us(p99_heavy)}"
        if p99_light and p99_heavy
        else ""
    )
    text = (
        f"{light.cell.app}: from {light.cell.profile} ({light.connections:,} connections, "
        f"{format_rate(light.rps)} req/s) to {heavy.cell.profile} ({heavy.connections:,} "
        f"connections, {format_rate(heavy.rps)} req/s) throughput changes by {change:+.1f} %"
        f"{latency}."
    )
    if change < -SCALING_TOLERANCE_PCT:
        prose.weaknesses.append(f"Loses throughput under heavier load. {text}")
    else:
        prose.strengths.append(f"Holds its throughput under heavier load. {text}")


def _errors(f: Facts, prose: _Prose) -> None:
    cell, where = f.cell, f"{f.cell.app}, {f.cell.profile}"
    if cell.error_count == 0:
        prose.strengths.append(
            f"No errors for {where}: {cell.good_responses:,} good responses, no socket errors, "
            "no non-2xx answers."
        )
    elif cell.error_rate > ERROR_RATE_LIMIT:
        prose.weaknesses.append(
            f"{pct(cell.error_rate * 100)} of requests failed for {where} ({error_breakdown(cell)} "
            f"against {cell.good_responses:,} good responses)."
        )
    else:
        prose.weaknesses.append(
            f"A few errors for {where}: {cell.error_count:,} ({pct(cell.error_rate * 100)}; "
            f"{error_breakdown(cell)})."
        )


def _tail(f: Facts, prose: _Prose) -> None:
    tail = f.tail_ratio
    if tail is None:
        return
    where = f"{f.cell.app}, {f.cell.profile}"
    numbers = (
        f"p99 {format_us(f.percentile('99'))} is {tail:.1f}x p50 {format_us(f.percentile('50'))}"
    )
    if tail <= TIGHT_TAIL:
        prose.strengths.append(f"Tight latency distribution for {where}: {numbers}.")
    elif tail >= LONG_TAIL:
        prose.weaknesses.append(f"Long latency tail for {where}: {numbers}.")


def _steadiness(f: Facts, prose: _Prose) -> None:
    summary = f.cell.requests_per_sec
    if summary and summary.count > 1 and summary.spread_pct > SPREAD_LIMIT_PCT:
        prose.weaknesses.append(
            f"Unsteady between repeats for {f.cell.app}, {f.cell.profile}: req/s ranged "
            f"{rate_range(summary)} ({pct(summary.spread_pct)} of the median)."
        )


def _limits(document: ResultsDocument, facts: Sequence[Facts], f: Facts, prose: _Prose) -> None:
    """How close the stack came to the reference ceiling and to the app's own limit."""
    shares = []
    ceiling = ceiling_for(facts, f.cell.profile)
    workload = app_workload(document, f.cell.app)
    same_work = workload is None or workload.same_work_as_ceiling
    if ceiling is not None and ceiling.rps > 0 and same_work:
        shares.append(
            f"{pct(f.rps / ceiling.rps * 100)} of the {ceiling.cell.stack} ceiling "
            f"({format_rate(ceiling.rps)} req/s)"
        )
    rate = app_rate(document, f.cell.app)
    if rate:
        cpus = f.resources.server_cpus if f.resources else 1
        shares.append(
            f"{pct(f.rps / (rate * cpus) * 100)} of the app's in-process limit "
            f"({format_rate(rate)} calls/s per CPU x {cpus} server CPU(s))"
        )
    if shares:
        prose.reasons.append(
            f"For {f.cell.app}, {f.cell.profile} it served {format_rate(f.rps)} req/s: "
            + " and ".join(shares)
            + "."
        )
    if not same_work:
        skipped = app_cost_skipped(document, f.cell.app)
        prose.reasons.append(
            f"For {f.cell.app}, {f.cell.profile} no ceiling or in-process limit is compared: "
            "the nginx-static ceiling answers the seed's small JSON, other work than this, and "
            + (skipped if skipped else "the in-process cost is the app's alone")
            + "."
        )
    sentence = _model_sentence(document, f)
    if sentence is not None:
        prose.reasons.append(sentence)


def _model_sentence(document: ResultsDocument, f: Facts) -> str | None:
    """An I/O-bound workload's result explained by how many requests the stack can hold."""
    workload, run = app_workload(document, f.cell.app), f.cell.median_run
    app = document.apps.get(f.cell.app)
    if workload is None or workload.cpu_bound or run is None or app is None:
        return None
    return model_sentence(
        stack=f.cell.stack,
        interface=app.interface,
        settings=run.settings,
        workload=workload.name,
        load_path=app.load_path,
        rps=f.rps,
        connections=f.connections,
        machine_cpus=document.environment.cpu_count or 1,
    )


def _cpu(document: ResultsDocument, f: Facts, res: Resources, prose: _Prose) -> None:
    where = f"{f.cell.app}, {f.cell.profile}"
    util = res.server_utilisation
    per_cpu = f.requests_per_cpu_s
    if util >= CPU_BOUND and per_cpu:
        cost_us = 1e6 / per_cpu
        app_us = app_cost_us(document, f.cell.app)
        split = (
            f"; the app itself needs {format_us(app_us)} of it ({pct(app_us / cost_us * 100)}), "
            "the rest is the server, HTTP parsing and the sockets"
            if app_us
            else ""
        )
        prose.reasons.append(
            f"CPU-bound for {where}: the server used {pct(util * 100)} of its "
            f"{res.server_cpus} CPU(s), {format_us(cost_us)} of CPU per good response{split}."
        )
    elif util < CPU_IDLE:
        prose.reasons.append(
            f"Not CPU-bound for {where}: the server used only {pct(util * 100)} of its "
            f"{res.server_cpus} CPU(s) with {f.connections:,} connections open, so requests "
            "wait for something other than CPU (busy workers, the accept queue, reconnects)."
        )


def _usage(f: Facts, res: Resources, prose: _Prose) -> None:
    per_cpu = f.requests_per_cpu_s
    rss = ", ".join(f"{name} {mib(value)}" for name, value in res.rss_peak_bytes.items())
    client = (
        f"; {res.client_name} used {pct(res.client_utilisation * 100)} of its "
        f"{res.client_cpus} CPU(s)"
        if res.client_utilisation is not None
        else ""
    )
    prose.resources.append(
        f"{f.cell.app}, {f.cell.profile}: {res.server_cpu_s:.2f} server CPU-seconds in "
        f"{res.window_s:.2f} s ({pct(res.server_utilisation * 100)} of {res.server_cpus} CPU(s)), "
        + (f"{format_rate(per_cpu)} good responses per CPU-second, " if per_cpu else "")
        + f"RSS peak {rss}{client}."
    )


def _measured_cell(
    document: ResultsDocument, facts: Sequence[Facts], f: Facts, prose: _Prose
) -> None:
    _errors(f, prose)
    _tail(f, prose)
    _steadiness(f, prose)
    _limits(document, facts, f, prose)
    if f.resources is not None:
        _cpu(document, f, f.resources, prose)
        _usage(f, f.resources, prose)


def analyse_stack(document: ResultsDocument, facts: Sequence[Facts], stack: str) -> StackAnalysis:
    prose = _Prose()
    mine = [f for f in facts if f.cell.stack == stack and f.cell.role != REFERENCE_ROLE]
    order = profile_order(document)
    for app in dict.fromkeys(f.cell.app for f in mine):
        ok = sorted(
            (f for f in mine if f.cell.app == app and f.ok),
            key=lambda f: profile_index(order, f.cell.profile),
        )
        for f in ok:
            peers = _peers(facts, app, f.cell.profile)
            if len(peers) >= 2:
                _throughput_rank(f, peers, prose)
                _latency_rank(f, peers, prose)
        if len(ok) >= 2 and ok[0].connections != ok[-1].connections:
            _scaling(ok[0], ok[-1], prose)
        for f in ok:
            _measured_cell(document, facts, f, prose)
        for f in mine:
            if f.cell.app == app and not f.ok:
                reason = f.cell.skipped_reason or (f.cell.failure_reasons or ["no result"])[0]
                prose.weaknesses.append(
                    f"{f.cell.status.capitalize()} for {app}, {f.cell.profile}: "
                    f"{reason.splitlines()[0]}"
                )
    record = document.stacks.get(stack)
    if record is not None and record.model:
        prose.reasons.insert(0, f"Model: {record.model}.")
    notes = sorted({n for f in mine for r in f.cell.ok_runs[:1] for n in r.notes})
    prose.reasons.extend(f"Note from the run: {n}." for n in notes)
    return StackAnalysis(
        stack=stack,
        strengths=tuple(prose.strengths),
        weaknesses=tuple(prose.weaknesses),
        reasons=tuple(prose.reasons),
        resources=tuple(prose.resources),
    )
