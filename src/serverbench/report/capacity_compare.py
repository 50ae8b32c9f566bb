"""`compare` for capacity searches: per stack x app, the capacity in A and in B, the change,
and whether it is beyond the search's resolution (±2 bisection precisions): a change within
it is no evidence; one beyond it may still be the stack's own run-to-run variation.

Two searches held to different SLOs or error budgets are not like for like; that is said.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from serverbench.plan.capacity import LIMIT_NAMES, CapacityRecord
from serverbench.report.capacity import agreement_pct, capacity_text
from serverbench.report.textable import render_table


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityDelta:
    a: CapacityRecord
    b: CapacityRecord

    @property
    def key(self) -> tuple[str, str]:
        return self.a.key

    @staticmethod
    def _capacity(record: CapacityRecord) -> float | None:
        return record.outcome.capacity_rps if record.outcome else None

    @property
    def change_pct(self) -> float | None:
        """B against A in percent; -100 when A held a rate and B none."""
        a, b = self._capacity(self.a), self._capacity(self.b)
        if a is None or (b is None and self.b.outcome is None):
            return None
        return ((b or 0.0) / a - 1) * 100

    @property
    def beyond_spread(self) -> bool | None:
        """None when either side is unfinished or a lower bound (its true value is unknown)."""
        change = self.change_pct
        if change is None or any(
            r.outcome is None or r.outcome.lower_bound for r in (self.a, self.b)
        ):
            return None
        return abs(change) > max(agreement_pct(self.a), agreement_pct(self.b))


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityComparison:
    deltas: tuple[CapacityDelta, ...]
    only_in_a: tuple[CapacityRecord, ...]
    only_in_b: tuple[CapacityRecord, ...]
    differences: tuple[str, ...]  # SLO or budget not the same

    def lower_than(self, limit_pct: float) -> list[CapacityDelta]:
        """Stacks that lost more than limit_pct % of their capacity."""
        return [d for d in self.deltas if d.change_pct is not None and d.change_pct < -limit_pct]


def compare_capacity(
    a: Sequence[CapacityRecord], b: Sequence[CapacityRecord]
) -> CapacityComparison:
    before = {r.key: r for r in a}
    after = {r.key: r for r in b}
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
        deltas=tuple(CapacityDelta(a=before[k], b=after[k]) for k in before if k in after),
        only_in_a=tuple(r for k, r in before.items() if k not in after),
        only_in_b=tuple(r for k, r in after.items() if k not in before),
        differences=tuple(differences),
    )


def _limit(record: CapacityRecord) -> str:
    return LIMIT_NAMES[record.outcome.limit] if record.outcome else "-"


def render_capacity_comparison(comparison: CapacityComparison) -> str:
    rows = []
    for d in comparison.deltas:
        change = d.change_pct
        rows.append(
            [
                f"{d.a.stack}/{d.a.app}",
                capacity_text(d.a),
                capacity_text(d.b),
                "-" if change is None else f"{change:+.1f}%",
                {True: "yes", False: "no", None: "?"}[d.beyond_spread],
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
                    "beyond resolution",
                    "limited by A -> B",
                ],
                rows,
                right=(1, 2, 3),
            )
        )
    else:
        lines.append("no stack/app has a capacity in both files")
    for label, items in (("A", comparison.only_in_a), ("B", comparison.only_in_b)):
        if items:
            lines.append(
                f"capacity only in {label}: " + ", ".join(f"{r.stack}/{r.app}" for r in items)
            )
    for text in comparison.differences:
        lines.append(f"warning: {text}; the capacities are not like for like")
    return "\n".join(lines)
