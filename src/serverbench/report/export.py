"""Results as a table for pandas or a spreadsheet: CSV or JSON lines, one row per cell or per run.

A cell row (stack x app x profile) holds the figures the summary table shows: the median and
min-max of honest throughput over the repeats, the percentiles of the merged latency
histograms, the error rate and each error kind. A run row holds one repeat's own figures and
the server's resource use. Every column that carries a quantity names its unit; a figure that
does not exist (a failed cell has no throughput) is empty, never zero.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from serverbench.errors import UsageError
from serverbench.observe.sampler import Usage
from serverbench.plan.profiles import Profile
from serverbench.results.aggregate import REPORTED_PERCENTILES, Cell, cells
from serverbench.results.model import ErrorCounts, ResultsDocument, RunRecord

Row = dict[str, str | int | float | None]
FORMATS = ("csv", "jsonl")
LEVELS = ("cell", "run")
ERROR_KINDS = tuple(ErrorCounts().by_kind())  # connect, read, write, timeout, status (>= 400)


def _percentile_name(p: float) -> str:
    return f"{p:g}"


PERCENTILES = tuple(_percentile_name(p) for p in REPORTED_PERCENTILES)
_LATENCY_COLUMNS = tuple(f"latency_p{p}_ms" for p in PERCENTILES)
_PROFILE_COLUMNS = ("connections", "threads", "duration_s")
CELL_COLUMNS: tuple[str, ...] = (
    "results_created_at",
    "stack",
    "app",
    "profile",
    "role",
    "status",
    *_PROFILE_COLUMNS,
    "repeats_ok",
    "repeats_failed",
    "requests_per_sec_median",
    "requests_per_sec_min",
    "requests_per_sec_max",
    "raw_requests_per_sec_median",
    *_LATENCY_COLUMNS,
    "error_rate_pct",
    "good_responses",
    *(f"errors_{kind}" for kind in ERROR_KINDS),
    "note",
)
RUN_COLUMNS: tuple[str, ...] = (
    "results_created_at",
    "round",
    "stack",
    "app",
    "profile",
    "role",
    "status",
    "failure_kind",
    *_PROFILE_COLUMNS,
    "measured_s",
    "requests_per_sec",
    "raw_requests_per_sec",
    *_LATENCY_COLUMNS,
    "latency_mean_ms",
    "latency_max_ms",
    "good_responses",
    *(f"errors_{kind}" for kind in ERROR_KINDS),
    "server_cpu_s",
    "server_rss_peak_bytes",
    "client_cpu_s",
    "recovery_s",
)


def _ms(value_us: float | None) -> float | None:
    return None if value_us is None else value_us / 1000


def _profiles(document: ResultsDocument) -> dict[str, Profile]:
    return {p.name: p for p in document.plan.profiles}


def _profile_fields(profile: Profile | None) -> Row:
    return {name: getattr(profile, name, None) for name in _PROFILE_COLUMNS}


def cell_row(cell: Cell, document: ResultsDocument) -> Row:
    rps, raw = cell.requests_per_sec, cell.raw_requests_per_sec
    if cell.status == "skipped":
        note = f"skipped: {cell.skipped_reason}"
    elif cell.failure_reasons:
        note = "; ".join(dict.fromkeys(r.splitlines()[0] for r in cell.failure_reasons))
    else:
        note = ""
    measured = bool(cell.ok_runs)
    errors = cell.errors.by_kind()
    return {
        "results_created_at": document.created_at,
        "stack": cell.stack,
        "app": cell.app,
        "profile": cell.profile,
        "role": cell.role,
        "status": cell.status,
        **_profile_fields(_profiles(document).get(cell.profile)),
        "repeats_ok": len(cell.ok_runs),
        "repeats_failed": len(cell.failed_runs),
        "requests_per_sec_median": rps.median if rps else None,
        "requests_per_sec_min": rps.minimum if rps else None,
        "requests_per_sec_max": rps.maximum if rps else None,
        "raw_requests_per_sec_median": raw.median if raw else None,
        **{
            column: _ms(cell.latency_percentiles_us.get(p))
            for column, p in zip(_LATENCY_COLUMNS, PERCENTILES, strict=True)
        },
        "error_rate_pct": cell.error_rate * 100 if measured else None,
        "good_responses": cell.good_responses if measured else None,
        **{f"errors_{kind}": errors[kind] if measured else None for kind in ERROR_KINDS},
        "note": note,
    }


def _usage_sum(usage: Usage | None, key: str) -> float | None:
    values = [getattr(c, key) for c in usage.components] if usage else []
    return sum(values) if values else None


def run_row(run: RunRecord, document: ResultsDocument) -> Row:
    m = run.measurement if run.status == "ok" else None
    errors = m.errors.by_kind() if m else {}
    return {
        "results_created_at": document.created_at,
        "round": run.round,
        "stack": run.stack,
        "app": run.app,
        "profile": run.profile,
        "role": run.role,
        "status": run.status,
        "failure_kind": run.failure.kind if run.failure else None,
        **_profile_fields(_profiles(document).get(run.profile)),
        "measured_s": m.duration_s if m else None,
        "requests_per_sec": m.requests_per_sec if m else None,
        "raw_requests_per_sec": m.raw_requests_per_sec if m else None,
        **{
            column: _ms(m.latency_percentiles_us.get(p)) if m else None
            for column, p in zip(_LATENCY_COLUMNS, PERCENTILES, strict=True)
        },
        "latency_mean_ms": _ms(m.latency_mean_us) if m else None,
        "latency_max_ms": _ms(m.latency_max_us) if m else None,
        "good_responses": m.good_responses if m else None,
        **{f"errors_{kind}": errors.get(kind) if m else None for kind in ERROR_KINDS},
        "server_cpu_s": _usage_sum(run.usage.server if run.usage else None, "cpu_seconds"),
        "server_rss_peak_bytes": _usage_sum(
            run.usage.server if run.usage else None, "rss_peak_bytes"
        ),
        "client_cpu_s": _usage_sum(run.usage.client if run.usage else None, "cpu_seconds"),
        "recovery_s": run.recovery_s,
    }


def rows(document: ResultsDocument, level: str = "cell") -> tuple[tuple[str, ...], list[Row]]:
    if level == "cell":
        return CELL_COLUMNS, [cell_row(cell, document) for cell in cells(document)]
    if level == "run":
        return RUN_COLUMNS, [run_row(run, document) for run in document.runs]
    raise UsageError(f"unknown export level {level!r}; use one of {', '.join(LEVELS)}")


def render(columns: Sequence[str], table: Sequence[Row], fmt: str) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps({c: row.get(c) for c in columns}) + "\n" for row in table)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        # csv writes None as an empty field: a missing figure stays missing, never 0
        writer.writerows({c: row.get(c) for c in columns} for row in table)
        return out.getvalue()
    raise UsageError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def export(document: ResultsDocument, fmt: str, level: str = "cell") -> str:
    columns, table = rows(document, level)
    return render(columns, table, fmt)
