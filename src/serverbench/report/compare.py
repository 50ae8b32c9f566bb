"""`serverbench compare A B`: what changed between two results files.

Cells are matched by stack x app x profile. For each match the table shows req/s (good
responses), p50, p99 and error rate in A and B with the change, and whether the throughput
change is beyond the run-to-run spread: A's and B's [min, max] ranges over their repeats do not
overlap. A cell that measured in A but failed in B counts as a 100 % throughput loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from serverbench.report.numbers import format_us, rate_text
from serverbench.report.textable import render_table
from serverbench.results.aggregate import Cell, cells
from serverbench.results.model import ResultsDocument
from serverbench.results.stats import separated

PROFILE_FIELDS = ("threads", "connections", "duration_s", "warmup_s", "timeout_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta:
    a: Cell
    b: Cell

    @property
    def key(self) -> tuple[str, str, str]:
        return self.a.key

    @property
    def measured(self) -> bool:
        return self.a.requests_per_sec is not None and self.b.requests_per_sec is not None

    @property
    def rps_change_pct(self) -> float | None:
        """B against A in percent; -100 when A measured and B did not."""
        a, b = self.a.requests_per_sec, self.b.requests_per_sec
        if a is None or a.median == 0:
            return None
        return ((b.median if b else 0.0) / a.median - 1) * 100

    @property
    def beyond_spread(self) -> bool | None:
        """None when one repeat on each side cannot tell a change from noise."""
        a, b = self.a.requests_per_sec, self.b.requests_per_sec
        if a is None or b is None:
            return a is not None  # measured before, nothing now: certainly beyond
        return separated(a, b)

    def latency_change_pct(self, key: str) -> float | None:
        before = self.a.latency_percentiles_us.get(key)
        after = self.b.latency_percentiles_us.get(key)
        if not before or after is None:
            return None
        return (after / before - 1) * 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    deltas: tuple[Delta, ...]
    only_in_a: tuple[Cell, ...]
    only_in_b: tuple[Cell, ...]
    profile_differences: tuple[str, ...]

    def slower_than(self, limit_pct: float) -> list[Delta]:
        """Matches that lost more than limit_pct % of their throughput."""
        return [
            d for d in self.deltas if d.rps_change_pct is not None and d.rps_change_pct < -limit_pct
        ]


def _profile_differences(a: ResultsDocument, b: ResultsDocument) -> list[str]:
    before = {p.name: p for p in a.plan.profiles}
    after = {p.name: p for p in b.plan.profiles}
    found = []
    for name in sorted(before.keys() & after.keys()):
        pairs = [
            (field, getattr(before[name], field), getattr(after[name], field))
            for field in PROFILE_FIELDS
        ]
        changed = [f"{field} {old} -> {new}" for field, old, new in pairs if old != new]
        if changed:
            found.append(f"profile {name} differs: {', '.join(changed)}")
    return found


def compare(a: ResultsDocument, b: ResultsDocument) -> Comparison:
    before = {c.key: c for c in cells(a)}
    after = {c.key: c for c in cells(b)}
    return Comparison(
        deltas=tuple(Delta(a=before[k], b=after[k]) for k in before if k in after),
        only_in_a=tuple(c for k, c in before.items() if k not in after),
        only_in_b=tuple(c for k, c in after.items() if k not in before),
        profile_differences=tuple(_profile_differences(a, b)),
    )


def _change(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def _error_rate(cell: Cell) -> str:
    return f"{cell.error_rate * 100:.2f}%" if cell.ok_runs else "-"


def _names(items: Sequence[Cell]) -> str:
    return ", ".join(f"{c.stack}/{c.app}/{c.profile}" for c in items)


def render_comparison(comparison: Comparison, a_name: str, b_name: str) -> str:
    rows = []
    for d in comparison.deltas:
        p50a, p50b = d.a.latency_percentiles_us.get("50"), d.b.latency_percentiles_us.get("50")
        p99a, p99b = d.a.latency_percentiles_us.get("99"), d.b.latency_percentiles_us.get("99")
        rows.append(
            [
                f"{d.a.stack}/{d.a.app}/{d.a.profile}",
                rate_text(d.a, always=True),
                rate_text(d.b, always=True),
                _change(d.rps_change_pct),
                {True: "yes", False: "no", None: "? (1 repeat)"}[d.beyond_spread],
                f"{format_us(p50a)} -> {format_us(p50b)}",
                _change(d.latency_change_pct("50")),
                f"{format_us(p99a)} -> {format_us(p99b)}",
                _change(d.latency_change_pct("99")),
                f"{_error_rate(d.a)} -> {_error_rate(d.b)}",
            ]
        )
    headers = [
        "stack/app/profile",
        "A req/s [min-max]",
        "B req/s [min-max]",
        "change",
        "beyond spread",
        "p50 A -> B",
        "change",
        "p99 A -> B",
        "change",
        "errors A -> B",
    ]
    lines = [f"A: {a_name}", f"B: {b_name}", ""]
    if rows:
        lines.append(render_table(headers, rows, right=(1, 2, 3, 6, 8)))
    else:
        lines.append("no stack/app/profile was measured in both files")
    if comparison.only_in_a:
        lines.append(f"\nonly in A: {_names(comparison.only_in_a)}")
    if comparison.only_in_b:
        lines.append(f"\nonly in B: {_names(comparison.only_in_b)}")
    for text in comparison.profile_differences:
        lines.append(f"\nwarning: {text}; the numbers are not like for like")
    return "\n".join(lines)
