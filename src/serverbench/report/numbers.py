"""How the reports write numbers: rates, latencies, shares, sizes, and a median with its
confidence interval.

Every report (terminal table, Markdown, HTML, `compare`) formats through these helpers, so the
same figure reads the same everywhere.
"""

from __future__ import annotations

from serverbench.report.uncertainty import plus_minus
from serverbench.results.aggregate import Cell
from serverbench.results.stats import Summary


def format_rate(value: float) -> str:
    return f"{value:,.0f}"


def format_us(value_us: float | None) -> str:
    if value_us is None:
        return "-"
    if value_us >= 1e6:
        return f"{value_us / 1e6:.2f} s"
    if value_us >= 1e3:
        return f"{value_us / 1e3:.2f} ms"
    return f"{value_us:.0f} us"


def pct(value: float) -> str:
    return f"{value:.1f} %"


def mib(value_bytes: float) -> str:
    return f"{value_bytes / 2**20:.1f} MiB"


def rate_range(summary: Summary) -> str:
    """min-max of the repeats' req/s."""
    return f"{format_rate(summary.minimum)}-{format_rate(summary.maximum)}"


def median_range(summary: Summary, *, always: bool = False) -> str:
    """`median [min-max]`; the range is left out for a single repeat unless `always`."""
    if summary.count > 1 or always:
        return f"{format_rate(summary.median)} [{rate_range(summary)}]"
    return format_rate(summary.median)


def rate_text(cell: Cell, *, always: bool = False) -> str:
    """A cell's req/s as "11,780 ±2.1 % (95 % CI, 6 repeats)" (the interval left out for a
    single repeat unless `always`), or its status when nothing was measured."""
    estimate = cell.rps_estimate
    if estimate is None:
        return cell.status.upper()
    if estimate.count > 1 or always:
        return f"{format_rate(estimate.median)} {plus_minus(estimate)}"
    return format_rate(estimate.median)


def rate_with_unit(cell: Cell) -> str:
    """ "8,643 req/s ±23.7 % (50 % CI, 2 repeats)": for a sentence, the unit by the number."""
    estimate = cell.rps_estimate
    if estimate is None:
        return cell.status.upper()
    spread = f" {plus_minus(estimate)}" if estimate.count > 1 else ""
    return f"{format_rate(estimate.median)} req/s{spread}"


def error_breakdown(cell: Cell) -> str:
    """A cell's errors by kind, e.g. "timeout 1,200, non-2xx/3xx 3", or "none"."""
    errors = cell.errors
    parts = [
        f"{kind} {count:,}"
        for kind, count in (
            ("connect", errors.connect),
            ("read", errors.read),
            ("write", errors.write),
            ("timeout", errors.timeout),
            ("non-2xx/3xx", errors.status),
        )
        if count
    ]
    return ", ".join(parts) if parts else "none"
