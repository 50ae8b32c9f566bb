"""`compare` for capacity searches: per stack x app, the capacity in A and in B (the median
when a side searched it several times, `capacity --repeats`), the change, and whether it is
beyond what the searches themselves move: the larger of the search's resolution (±2 bisection
precisions) and, where a side searched more than once, the spread of its searches, combined
with the drift of a run's level between separate runs (`--run-drift`, as for wrk's figures):
the searches of one run share the machine's state of the moment, which a second run does not.
A change within that is no evidence; one beyond the resolution alone may still be the stack's
run-to-run variation.

Two searches held to different SLOs or error budgets are not like for like; that is said.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from serverbench.plan.capacity import (
    LIMIT_NAMES,
    CapacityFigure,
    CapacityRecord,
    capacity_figures,
    format_rps,
)
from serverbench.report.capacity import agreement_pct
from serverbench.report.textable import render_table
from serverbench.results.inference import SEPARATE_RUNS_DRIFT_PCT, drift_allowance


def figure_text(figure: CapacityFigure) -> str:
    """`3,912`, `≥ 6,000`, `3,912 (3,838-3,987, 3 searches)`, `unfinished`, `none held`;
    the median and range are of the searches that held a rate."""
    if not figure.finished:
        return "unfinished"
    values, middle = figure.capacities, figure.capacity_rps
    if middle is None:
        return "none held"
    text = ("≥ " if figure.lower_bound else "") + format_rps(middle)
    if len(figure.records) > 1:
        text += f" ({format_rps(min(values))}-{format_rps(max(values))}, {figure.held_text})"
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityDelta:
    a: CapacityFigure
    b: CapacityFigure
    drift_pct: float = SEPARATE_RUNS_DRIFT_PCT  # a run's level between separate runs

    @property
    def key(self) -> tuple[str, str]:
        return (self.a.stack, self.a.app)

    @property
    def change_pct(self) -> float | None:
        """B against A in percent; -100 when A held a rate and B none."""
        a, b = self.a.capacity_rps, self.b.capacity_rps
        if a is None or not self.a.finished or (b is None and not self.b.finished):
            return None
        return ((b or 0.0) / a - 1) * 100

    @property
    def noise_pct(self) -> float:
        """How far the searches move by themselves: the resolution or a side's spread, the
        larger, combined in quadrature with the drift allowed between separate runs."""
        resolutions = [agreement_pct(r) for f in (self.a, self.b) for r in f.records]
        spreads = [f.spread_pct for f in (self.a, self.b) if f.spread_pct is not None]
        drift = (math.exp(drift_allowance(self.drift_pct)) - 1) * 100 if self.drift_pct else 0.0
        return math.hypot(max(resolutions + spreads), drift)

    @property
    def beyond_spread(self) -> bool | None:
        """None when either side is unfinished or a lower bound (its true value is unknown)."""
        change = self.change_pct
        if change is None or any(not f.finished or f.lower_bound for f in (self.a, self.b)):
            return None
        return abs(change) > self.noise_pct


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityComparison:
    deltas: tuple[CapacityDelta, ...]
    only_in_a: tuple[CapacityFigure, ...]
    only_in_b: tuple[CapacityFigure, ...]
    differences: tuple[str, ...]  # SLO or budget not the same

    def lower_than(self, limit_pct: float) -> list[CapacityDelta]:
        """Stacks that lost more than limit_pct % of their capacity."""
        return [d for d in self.deltas if d.change_pct is not None and d.change_pct < -limit_pct]


def compare_capacity(
    a: Sequence[CapacityRecord],
    b: Sequence[CapacityRecord],
    drift_pct: float = SEPARATE_RUNS_DRIFT_PCT,
) -> CapacityComparison:
    before = {(f.stack, f.app): f for f in capacity_figures(a)}
    after = {(f.stack, f.app): f for f in capacity_figures(b)}
    differences = []
    if a and b:
        sa, sb = a[0].settings, b[0].settings
        if sa.slo != sb.slo:
            differences.append(f"the SLO differs: {sa.slo.text} -> {sb.slo.text}")
        if sa.max_error_rate != sb.max_error_rate:
            differences.append(
                f"the error budget differs: {sa.max_error_rate * 100:g} % -> "
                f"{sb.max_error_rate * 100:g} %"
            )
    return CapacityComparison(
        deltas=tuple(
            CapacityDelta(a=before[k], b=after[k], drift_pct=drift_pct)
            for k in before
            if k in after
        ),
        only_in_a=tuple(f for k, f in before.items() if k not in after),
        only_in_b=tuple(f for k, f in after.items() if k not in before),
        differences=tuple(differences),
    )


def _limit(figure: CapacityFigure) -> str:
    return " / ".join(LIMIT_NAMES[limit] for limit in figure.limits) or "-"


def render_capacity_comparison(comparison: CapacityComparison) -> str:
    rows = []
    for d in comparison.deltas:
        change = d.change_pct
        beyond = {True: "yes", False: "no", None: "?"}[d.beyond_spread]
        rows.append(
            [
                f"{d.a.stack}/{d.a.app}",
                figure_text(d.a),
                figure_text(d.b),
                "-" if change is None else f"{change:+.1f}%",
                f"{beyond} (±{d.noise_pct:.0f} %)",
                f"{_limit(d.a)} -> {_limit(d.b)}",
            ]
        )
    lines = ["capacity at SLO (open loop):"]
    if rows:
        lines.append(
            render_table(
                [
                    "stack/app",
                    "A capacity req/s",
                    "B capacity req/s",
                    "change",
                    "beyond spread and drift",
                    "limited by A -> B",
                ],
                rows,
                right=(1, 2, 3),
            )
        )
        drift = comparison.deltas[0].drift_pct  # the rows are the deltas: there is one
        lines.append(
            "±: the larger of the search's resolution and each side's spread of searches, "
            f"combined with {drift:g} % drift of a run's level between separate runs "
            "(--run-drift)"
        )
    else:
        lines.append("no stack/app has a capacity in both files")
    for label, items in (("A", comparison.only_in_a), ("B", comparison.only_in_b)):
        if items:
            lines.append(
                f"capacity only in {label}: " + ", ".join(f"{f.stack}/{f.app}" for f in items)
            )
    for text in comparison.differences:
        lines.append(f"warning: {text}; the capacities are not like for like")
    return "\n".join(lines)
