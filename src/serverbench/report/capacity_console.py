"""The table `serverbench capacity` (and a run that searched capacity) prints at the end."""

from __future__ import annotations

from serverbench.plan.capacity import LIMIT_NAMES, capacity_figures, format_rps
from serverbench.report.capacity import (
    capacity_text,
    latency_at_capacity,
    ranked,
    search_name,
)
from serverbench.report.numbers import format_us
from serverbench.report.textable import render_table
from serverbench.results.model import ResultsDocument


def capacity_summary(document: ResultsDocument) -> str:
    records = document.capacity.searches if document.capacity else []
    if not records:
        return "no capacity was searched"
    settings = records[0].settings
    rows = []
    for record in ranked(records):
        outcome = record.outcome
        rows.append(
            [
                search_name(record, records),
                record.app,
                capacity_text(record),
                format_rps(record.peak_rps) if record.peak_rps else "-",
                format_us(latency_at_capacity(record)),
                LIMIT_NAMES[outcome.limit] if outcome else "-",
                str(len(record.steps)),
            ]
        )
    title = (
        f"capacity at {settings.slo.text}, errors <= {settings.max_error_rate * 100:g} % "
        "(open loop; closed-loop peak from wrk):"
    )
    table = render_table(
        [
            "stack",
            "app",
            "capacity req/s",
            "closed-loop peak",
            f"p{settings.slo.key} at capacity",
            "limited by",
            "steps",
        ],
        rows,
        right=(2, 3, 4, 6),
    )
    spreads = [
        f"{f.stack} · {f.app}: {f.held_text}, median "
        f"{format_rps(f.capacity_rps or 0.0)} req/s, range {f.spread_pct:.0f} % of it"
        for f in capacity_figures(records)
        if f.spread_pct is not None
    ]
    if spreads:
        table += "\nrun-to-run spread of the searches:\n  " + "\n  ".join(spreads)
    return f"{title}\n{table}"
