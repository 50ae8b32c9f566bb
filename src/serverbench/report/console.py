"""The table `serverbench run` prints at the end: one row per stack x app x profile."""

from __future__ import annotations

from serverbench.report.textable import render_table
from serverbench.results.aggregate import Cell, cells, throughput_order
from serverbench.results.store import Document


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


def rate_cell(cell: Cell) -> str:
    if cell.requests_per_sec is None:
        return cell.status.upper()
    s = cell.requests_per_sec
    spread = f" [{format_rate(s.minimum)}-{format_rate(s.maximum)}]" if s.count > 1 else ""
    return f"{format_rate(s.median)}{spread}"


def summary_rows(document: Document) -> list[list[str]]:
    rows = []
    for cell in throughput_order(cells(document)):
        p = cell.latency_percentiles_us
        if cell.status == "skipped":
            note = f"skipped: {cell.skipped_reason}"
        elif cell.failed_runs:
            note = f"{len(cell.failed_runs)} failed: {cell.failure_reasons[0].splitlines()[0]}"
        else:
            note = ""
        label = cell.stack + (" (ceiling)" if cell.role == "reference" else "")
        rows.append(
            [
                label,
                cell.app,
                cell.profile,
                rate_cell(cell),
                format_us(p.get("50")),
                format_us(p.get("99")),
                f"{cell.error_rate * 100:.2f}%" if cell.ok_runs else "-",
                note[:80],
            ]
        )
    return rows


def summary_table(document: Document) -> str:
    headers = ["stack", "app", "profile", "req/s median [min-max]", "p50", "p99", "errors", "note"]
    return render_table(headers, summary_rows(document), right=(3, 4, 5, 6))


def fault_lines(document: Document) -> list[str]:
    """One line per failed run and per run during which server processes exited."""
    lines = []
    for run in document["runs"]:
        where = f"{run['stack']} · {run['app']} · {run['profile']} · round {run['round']}"
        failure = run.get("failure") or {}
        if run["status"] == "failed":
            first = (str(failure.get("message", "")).splitlines() or [""])[0]
            lines.append(f"{where}: FAILED ({failure.get('kind', '?')}): {first}")
        exits = run.get("process_exits") or []
        if exits:
            which = ", ".join(f"{e['process']} (pid {e['pid']})" for e in exits)
            lines.append(
                f"{where}: {len(exits)} server process(es) exited during the measurement: "
                f"{which}; {run.get('process_restarts', 0)} replaced"
            )
    return lines
