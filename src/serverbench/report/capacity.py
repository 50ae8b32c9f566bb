"""The report's "Capacity at SLO" section, from the capacity searches recorded in a results
file (its latency-vs-offered-rate chart is drawn by report/charts.py).

The section ranks stacks by the highest offered rate they held within the SLO and the error
budget, states the SLO, the budget and how far a repeat of the search may land, names what
limited each stack, and lists every step. All latency here is open-loop: measured from each
request's intended send time at a fixed offered rate.
"""

from __future__ import annotations

from collections.abc import Sequence

from serverbench.plan.capacity import (
    LIMIT_NAMES,
    CapacityFigure,
    CapacityRecord,
    Step,
    any_pooled,
    capacity_figures,
    format_rps,
    rate_verdicts,
)
from serverbench.report.blocks import (
    Block,
    Bullets,
    Chart,
    Heading,
    Paragraph,
    Table,
)
from serverbench.report.numbers import format_us

# The search's resolution: two searches of one stack differ by more than this many bisection
# precisions only if the stack itself moved (each answer lies up to one precision below the
# edge it found, and the edge moves with the noise of the steps near it).
AGREEMENT_PRECISIONS = 2.0


def agreement_pct(record: CapacityRecord) -> float:
    """How far, in percent, a repeat of this search may land from its answer by the search
    alone (a stack that varies between runs adds its own spread)."""
    return AGREEMENT_PRECISIONS * record.settings.precision * 100


def ranked(records: Sequence[CapacityRecord]) -> list[CapacityRecord]:
    """Highest capacity first; searches without an answer last, in their own order."""
    return sorted(
        records,
        key=lambda r: -(r.outcome.capacity_rps or 0.0) if r.outcome else 1.0,
    )


def search_name(record: CapacityRecord, records: Sequence[CapacityRecord]) -> str:
    """The stack, and which of its searches when the run (`records`) searched more than once."""
    if any(r.repeat > 1 for r in records):
        return f"{record.stack} (search {record.repeat})"
    return record.stack


def capacity_text(record: CapacityRecord) -> str:
    outcome = record.outcome
    if outcome is None:
        return "unfinished"
    if outcome.capacity_rps is None:
        return "none held"
    return ("≥ " if outcome.lower_bound else "") + format_rps(outcome.capacity_rps)


def _at_capacity(record: CapacityRecord) -> list[Step]:
    outcome = record.outcome
    if outcome is None or outcome.capacity_rps is None:
        return []
    return [s for s in record.steps if s.rate_rps == outcome.capacity_rps]


def latency_at_capacity(record: CapacityRecord) -> float | None:
    """The SLO's percentile at the capacity: over all its measurements' requests together
    (what the search judged), or, in files from before pooling, the worst measurement's."""
    if record.outcome is not None and record.outcome.latency_at_capacity_us is not None:
        return record.outcome.latency_at_capacity_us
    key = record.settings.slo.key
    values = [
        s.observation.latency_percentiles_us[key]
        for s in _at_capacity(record)
        if key in s.observation.latency_percentiles_us
    ]
    return max(values) if values else None


def _latency(value_us: float | None) -> str:
    return format_us(value_us)


def _share(value: float | None, of: float | None) -> str:
    return f"{value / of * 100:.0f} %" if value and of else "-"


def ranking_table(records: Sequence[CapacityRecord]) -> Table:
    rows = []
    for place, record in enumerate(ranked(records), start=1):
        outcome = record.outcome
        rows.append(
            (
                str(place),
                search_name(record, records),
                record.app,
                capacity_text(record),
                _share(outcome.capacity_rps if outcome else None, record.peak_rps),
                _latency(latency_at_capacity(record)),
                format_rps(outcome.lowest_failing_rps)
                if outcome and outcome.lowest_failing_rps
                else "-",
                LIMIT_NAMES[outcome.limit] if outcome else "-",
                str(len(record.steps)),
            )
        )
    key = records[0].settings.slo.key if records else "99"
    return Table(
        headers=(
            "#",
            "stack",
            "app",
            "capacity req/s",
            "of closed-loop peak",
            f"p{key} at capacity",
            "lowest failing req/s",
            "limited by",
            "steps",
        ),
        rows=tuple(rows),
        right=(0, 3, 4, 5, 6, 8),
    )


def steps_table(record: CapacityRecord) -> Table:
    rows = []
    rates = rate_verdicts(record.settings, record.steps)
    for step in record.steps:
        seen = step.observation
        p = seen.latency_percentiles_us
        cpu = seen.server_cpu_utilisation
        generator = seen.generator_cpu_utilisation
        rows.append(
            (
                str(step.index),
                step.phase,
                format_rps(step.rate_rps),
                format_rps(seen.achieved_rps),
                _latency(p.get("50")),
                _latency(p.get("99")),
                _latency(p.get("99.9")),
                f"{seen.error_rate * 100:.2f} %",
                ("-" if cpu is None else f"{cpu * 100:.0f} %")
                + (
                    f" (other processes {seen.server_cpus_foreign * 100:.0f} %)"
                    if seen.contended and seen.server_cpus_foreign is not None
                    else ""
                ),
                "-" if generator is None else f"{generator * 100:.0f} %",
                step.judgement.summary
                + (
                    f"; the rate over its measurements together: {rates[step.index].summary}"
                    if step.index in rates
                    else ""
                ),
            )
        )
    return Table(
        headers=(
            "step",
            "phase",
            "offered req/s",
            "good req/s",
            "p50",
            "p99",
            "p99.9",
            "errors",
            "server CPU",
            "generator CPU",
            "verdict",
        ),
        rows=tuple(rows),
        right=(0, 2, 3, 4, 5, 6, 7, 8, 9),
    )


def _record_sentence(record: CapacityRecord, records: Sequence[CapacityRecord]) -> str:
    outcome = record.outcome
    name = f"**{search_name(record, records)}** · {record.app}"
    if outcome is None:
        return f"{name}: the search was interrupted after {len(record.steps)} step(s); resume it."
    if outcome.capacity_rps is None:
        return f"{name}: no rate held. {outcome.limit_text}."
    held = f"{name} held **{capacity_text(record)} req/s** " + (
        f"over all the requests of its {outcome.passes_at_capacity} measurements at that rate "
        "together"
        if outcome.pooled
        else f"in all {outcome.passes_at_capacity} measurement(s) at that rate"
    )
    if outcome.lowest_failing_rps is not None:
        held += f"; {format_rps(outcome.lowest_failing_rps)} req/s did not"
    if record.peak_rps:
        held += (
            f" ({_share(outcome.capacity_rps, record.peak_rps)} of its closed-loop peak of "
            f"{format_rps(record.peak_rps)} req/s)"
        )
    verdict = f"Limited by {LIMIT_NAMES[outcome.limit]}: {outcome.limit_text}."
    if outcome.lower_bound:
        verdict += (
            " The figure is a lower bound: the stack itself was not the limit; more CPUs "
            "for the load generator (`--client-cpus`) measure further."
        )
    return f"{held}. {verdict}"


def _held(figure: CapacityFigure) -> str:
    held, total = len(figure.capacities), len(figure.records)
    return str(total) if held == total else f"{total} ({held} held a rate)"


def _spread(records: Sequence[CapacityRecord]) -> list[Block]:
    """With several searches per stack: their capacities and spread, the run-to-run figure."""
    figures = [f for f in capacity_figures(records) if f.spread_pct is not None]
    if not figures:
        return []
    rows = tuple(
        (
            f.stack,
            f.app,
            _held(f),
            ", ".join(format_rps(c) for c in f.capacities),
            ("≥ " if f.lower_bound else "") + format_rps(f.capacity_rps or 0.0),
            f"{f.spread_pct:.0f} %",
        )
        for f in figures
    )
    widest = max(figures, key=lambda f: f.spread_pct or 0.0)
    return [
        Paragraph(
            text="**Run-to-run spread.** Each stack was searched more than once, in rounds "
            f"over the stacks; their capacities spread by up to {widest.spread_pct:.0f} % of "
            f"their median ({widest.stack}). A difference between two runs smaller than the "
            "spread measured here is no evidence of a change; the searches of one run share the "
            "machine's state of the moment, so `compare` of two runs also allows the drift "
            "between separate runs (`--run-drift`)."
        ),
        Table(
            headers=("stack", "app", "searches", "capacities req/s", "median", "range"),
            rows=rows,
            right=(2, 4, 5),
        ),
    ]


def _contention(records: Sequence[CapacityRecord]) -> list[Block]:
    """A warning when other processes took the server's CPUs: such figures do not repeat."""
    hit = [
        (r, sum(1 for s in r.steps if s.observation.contended))
        for r in records
        if any(s.observation.contended for s in r.steps)
    ]
    if not hit:
        return []
    counts = "; ".join(f"{r.stack}: {n} of {len(r.steps)} steps" for r, n in hit)
    return [
        Paragraph(
            text="**Not reproducible as measured**: in some steps the server's CPUs were busy "
            f"with processes other than the server ({counts}), so those stacks had less CPU "
            "than the plan gave them and a repeat on a quiet machine will differ by more than "
            "the spread above."
        )
    ]


def _held_rule(records: Sequence[CapacityRecord]) -> str:
    """How a figure was judged to hold: on its measurements' requests together, or (files from
    before pooling) in every measurement."""
    confirmations = records[0].settings.confirmations
    measurements = (
        f"the search's step plus {confirmations} confirmation(s), each on a fresh, verified, "
        "warmed stack"
    )
    if any_pooled(records):
        return (
            f"Each figure held over all the requests of its measurements at that rate together "
            f"({measurements}): their latency histograms merged and their errors summed, so the "
            "SLO's percentile is that of every request offered at the rate, not of one short "
            "window that a pause of the machine can spoil, and the table's latency at capacity "
            "is that pooled figure"
        )
    return f"Each figure held in every measurement at that rate ({measurements})"


def capacity_section(records: Sequence[CapacityRecord]) -> list[Block]:
    if not records:
        return []
    settings = records[0].settings
    slo = settings.slo
    budget = f"{settings.max_error_rate * 100:g} %"
    blocks: list[Block] = [
        Heading(level=2, text="Capacity at SLO"),
        Paragraph(
            text=f"The highest offered rate each stack held with **{slo.text}** and at most "
            f"**{budget}** of requests failing, ranked. Measured open-loop: requests are sent "
            "at a fixed rate whatever the server does, and each latency counts from the moment "
            "its request was due, so a server that falls behind shows it in the tail."
        ),
        ranking_table(records),
        Paragraph(
            text=f"{_held_rule(records)}; the true edge lies between it and the lowest failing "
            f"rate, at most {settings.precision * 100:g} % above. The search resolves capacity to "
            f"±{agreement_pct(records[0]):g} %; that is not the stack's run-to-run spread, "
            "which one search cannot measure: a stack whose throughput varies between runs "
            "moves its capacity as much. `--repeats N` searches each stack N times and states "
            "the spread; or run the search again and `compare` the two."
        ),
        *_contention(records),
        *_spread(records),
        Bullets(items=tuple(_record_sentence(r, records) for r in ranked(records))),
        Chart(
            kind="latency-vs-load",
            title=f"Latency (p{slo.key}, log scale) against offered rate, open loop",
            searches=tuple(ranked(records)),
        ),
    ]
    for record in ranked(records):
        name = search_name(record, records)
        blocks.append(Heading(level=3, text=f"Capacity steps: {name} · {record.app}"))
        blocks.append(steps_table(record))
    return blocks


def loop_methodology(records: Sequence[CapacityRecord]) -> list[str]:
    """How the two loops measure, for the methodology section."""
    items = [
        "Two loops. **Closed loop** (wrk, the throughput and latency figures of the Results "
        "section): each connection sends its next request only when the previous answer "
        "arrived, so a slow server slows the load down; it measures peak throughput, and its "
        "latency is the latency at that saturation (Little's law holds: requests in flight = "
        "connections). **Open loop** (the capacity search): requests are due at a fixed "
        "offered rate whatever the server does, latency runs from when each request was due, "
        "so queueing shows; Little's law is not a check there."
    ]
    if records:
        s = records[0].settings
        items.append(
            f"Capacity search: coarse steps x{s.growth:g} up from {format_rps(s.start_rps)} "
            f"req/s (or down, if that already fails), then bisection until the highest holding "
            f"and the lowest failing rate are within {s.precision * 100:g} %, then "
            f"{s.confirmations} confirmation(s) of the final rate, judged on all their "
            "requests together; a rate that breaks the SLO or the budget there (or whose stack "
            "failed) is the bracket's new top, and the search goes back to the highest rate "
            "below it that held a step and bisects again. Every step starts a fresh stack, "
            "verifies it, warms it up at the step's rate and measures; every step is recorded. "
            "The limiting factor is read from the lowest failing rate: the load generator "
            f"(its CPU or its send rate fell behind), a stack failure, the server's CPU "
            f"(at least 85 % of its CPUs, or one process at 90 % of a core), errors over the "
            "budget, or latency over the SLO with CPU to spare."
        )
    return items
