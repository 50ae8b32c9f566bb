"""`serverbench compare A B`: what changed between two results files.

Cells are matched by stack x app x profile. For each match the table shows req/s (good
responses) with its confidence interval in A and B, the change of req/s with its interval and
the verdict (faster, slower, or no significant difference), the change of good responses per
server CPU-second (what a request costs), then p50, p99 and error rate.

Two files are two separate runs: their repeats cannot be paired by round, so the change is the
Hodges-Lehmann shift with the Mann-Whitney interval (results/inference.py), widened by the
drift a run's level has between separate runs on one machine (`--run-drift`), which repeats
inside a run never see. That is the cost of not pairing; measuring both sides in one run
(README, "How sure") avoids it. A cell that measured in A but failed in B counts as a 100 %
throughput loss.

`--fail-if-slower PCT` fails a cell only when B is significantly slower and the whole interval
lies beyond a loss of PCT %: even its most favourable end lost more than PCT %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from serverbench.report.numbers import format_us, rate_text
from serverbench.report.textable import render_table
from serverbench.report.uncertainty import change_label
from serverbench.results.aggregate import Cell, cells
from serverbench.results.inference import (
    SEPARATE_RUNS_DRIFT_PCT,
    Change,
    fails_if_slower,
    unpaired_change,
)
from serverbench.results.model import ResultsDocument

PROFILE_FIELDS = ("threads", "connections", "duration_s", "warmup_s", "timeout_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta:
    a: Cell
    b: Cell
    drift_pct: float = SEPARATE_RUNS_DRIFT_PCT  # between separate runs, allowed for

    @property
    def key(self) -> tuple[str, str, str]:
        return self.a.key

    @property
    def measured(self) -> bool:
        return self.a.requests_per_sec is not None and self.b.requests_per_sec is not None

    @property
    def change(self) -> Change | None:
        """B/A of req/s with its interval; None unless both sides measured."""
        a, b = list(self.a.rps_by_round.values()), list(self.b.rps_by_round.values())
        if not a or not b or min(a + b) <= 0:
            return None
        return unpaired_change(a, b, drift_pct=self.drift_pct)

    @property
    def efficiency_change(self) -> Change | None:
        """B/A of good responses per server CPU-second: whether each request got cheaper or
        dearer, which holds up on a machine whose other processes take CPU from the server."""
        a = list(self.a.per_cpu_s_by_round.values())
        b = list(self.b.per_cpu_s_by_round.values())
        if not a or not b:
            return None
        return unpaired_change(a, b, drift_pct=self.drift_pct)

    @property
    def rps_change_pct(self) -> float | None:
        """B against A in percent; -100 when A measured and B did not."""
        change = self.change
        if change is not None:
            return change.change_pct
        a = self.a.requests_per_sec
        if a is None or a.median == 0:
            return None
        return -100.0 if self.b.requests_per_sec is None else None

    @property
    def significant(self) -> bool | None:
        """Whether the interval excludes no change; None when nothing was measured in A."""
        change = self.change
        if change is not None:
            return change.significant
        return True if self.a.requests_per_sec is not None else None  # measured, then nothing

    def fails(self, limit_pct: float) -> bool:
        """The --fail-if-slower rule (module docstring)."""
        change = self.change
        if change is None:
            return self.a.requests_per_sec is not None and self.b.requests_per_sec is None
        return fails_if_slower(change, limit_pct)

    @property
    def verdict(self) -> str:
        change = self.change
        if change is None:
            return "lost" if self.significant else "-"
        if not change.significant:
            return "no significant difference"
        return "faster" if change.ratio > 1 else "slower"

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
        """Matches significantly slower by more than limit_pct % (the --fail-if-slower rule)."""
        return [d for d in self.deltas if d.fails(limit_pct)]


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


def _leftover_difference(a: ResultsDocument, b: ResultsDocument) -> list[str]:
    """A file whose runs did not reset the load's closing connections after each window
    (load/leftovers.py: an older serverbench, or a machine without `ss -K`) measured high
    connection counts and recovery another way."""
    if not a.runs or not b.runs or a.resets_leftovers == b.resets_leftovers:
        return []
    old, new = ("A", "B") if b.resets_leftovers else ("B", "A")
    return [
        f"{new} reset the load's closing connections after each window, {old} did not (an "
        "older serverbench, or no `ss -K` there): figures past a full listen queue, and "
        "recovery times, may differ for that alone"
    ]


def compare(
    a: ResultsDocument, b: ResultsDocument, drift_pct: float = SEPARATE_RUNS_DRIFT_PCT
) -> Comparison:
    before = {c.key: c for c in cells(a)}
    after = {c.key: c for c in cells(b)}
    return Comparison(
        deltas=tuple(
            Delta(a=before[k], b=after[k], drift_pct=drift_pct) for k in before if k in after
        ),
        only_in_a=tuple(c for k, c in before.items() if k not in after),
        only_in_b=tuple(c for k, c in after.items() if k not in before),
        profile_differences=(*_profile_differences(a, b), *_leftover_difference(a, b)),
    )


def _change(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def change_with_interval(delta: Delta) -> str:
    """The req/s change as "-30.0% (66 % CI -43.4 to -11.1)"."""
    change = delta.change
    if change is None:
        return _change(delta.rps_change_pct)
    return _interval(change)


def _interval(change: Change | None) -> str:
    if change is None:
        return "-"
    return (
        f"{change.change_pct:+.1f}% ({change_label(change)} "
        f"{change.low_pct:+.1f} to {change.high_pct:+.1f})"
    )


def not_paired_note(comparison: Comparison) -> str | None:
    """What comparing two separate runs costs, said once under the table."""
    drift = next((d.drift_pct for d in comparison.deltas if d.change), None)
    if drift is None:
        return None
    return (
        f"A and B are separate runs, so their repeats cannot be paired by round: each interval "
        f"allows {drift:g} % drift of a run's level between runs (--run-drift), on top of the "
        "spread of the repeats. Both sides measured in one run, paired by round, can tell "
        "smaller changes (README, 'How sure')."
    )


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
                change_with_interval(d),
                d.verdict,
                _interval(d.efficiency_change),
                f"{format_us(p50a)} -> {format_us(p50b)}",
                _change(d.latency_change_pct("50")),
                f"{format_us(p99a)} -> {format_us(p99b)}",
                _change(d.latency_change_pct("99")),
                f"{_error_rate(d.a)} -> {_error_rate(d.b)}",
            ]
        )
    headers = [
        "stack/app/profile",
        "A req/s median ±CI",
        "B req/s median ±CI",
        "change (CI)",
        "verdict",
        "req per server CPU-s (CI)",
        "p50 A -> B",
        "change",
        "p99 A -> B",
        "change",
        "errors A -> B",
    ]
    lines = [f"A: {a_name}", f"B: {b_name}", ""]
    if rows:
        lines.append(render_table(headers, rows, right=(1, 2, 3, 5, 7, 9)))
    else:
        lines.append("no stack/app/profile was measured in both files")
    if comparison.only_in_a:
        lines.append(f"\nonly in A: {_names(comparison.only_in_a)}")
    if comparison.only_in_b:
        lines.append(f"\nonly in B: {_names(comparison.only_in_b)}")
    for text in comparison.profile_differences:
        lines.append(f"\nwarning: {text}; the numbers are not like for like")
    note = not_paired_note(comparison)
    if note:
        lines.append(f"\n{note}")
    return "\n".join(lines)
