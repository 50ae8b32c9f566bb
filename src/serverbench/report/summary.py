"""The summary table: one row per stack x app x profile, best honest throughput first.

Built once here; the terminal table of `serverbench run` and the reports show the same rows and
differ only in how they write the error rate and the last column (a short note, or the status).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from serverbench.report.numbers import format_us, rate_text
from serverbench.results.aggregate import Cell, throughput_order

HEADERS = ("stack", "app", "profile", "req/s median ±CI", "p50", "p99", "errors")
RIGHT = (3, 4, 5, 6)  # the numeric columns


def status_text(cell: Cell) -> str:
    """What became of a cell: ok, or why it failed or was skipped (first line of each reason)."""
    if cell.status == "skipped":
        return f"skipped: {cell.skipped_reason}"
    reasons = [r.splitlines()[0] for r in cell.failure_reasons]
    if cell.status == "failed":
        return "FAILED: " + "; ".join(dict.fromkeys(reasons))
    if cell.status == "partial":
        repeats = len(cell.failed_runs) + len(cell.ok_runs)
        return f"{len(cell.failed_runs)} of {repeats} repeats failed: {reasons[0]}"
    return "ok"


def summary_rows(
    items: Sequence[Cell], *, error_rate: Callable[[float], str], last: Callable[[Cell], str]
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for cell in throughput_order(items):
        p = cell.latency_percentiles_us
        rows.append(
            (
                cell.stack + (" (ceiling)" if cell.role == "reference" else ""),
                cell.app,
                cell.profile,
                rate_text(cell),
                format_us(p.get("50")),
                format_us(p.get("99")),
                error_rate(cell.error_rate) if cell.ok_runs else "-",
                last(cell),
            )
        )
    return rows
