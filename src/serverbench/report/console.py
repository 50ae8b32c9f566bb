"""What `serverbench run` prints at the end: the summary table (one row per stack x app x
profile) and one line per failed run or per run whose server processes exited."""

from __future__ import annotations

from serverbench.report.summary import HEADERS, RIGHT, summary_rows
from serverbench.report.textable import render_table
from serverbench.results.aggregate import Cell, cells
from serverbench.results.model import ResultsDocument


def _note(cell: Cell) -> str:
    if cell.status == "skipped":
        note = f"skipped: {cell.skipped_reason}"
    elif cell.failed_runs:
        note = f"{len(cell.failed_runs)} failed: {cell.failure_reasons[0].splitlines()[0]}"
    else:
        note = ""
    return note[:80]


def summary_table(document: ResultsDocument) -> str:
    rows = summary_rows(cells(document), error_rate=lambda rate: f"{rate * 100:.2f}%", last=_note)
    return render_table([*HEADERS, "note"], rows, right=RIGHT)


def fault_lines(document: ResultsDocument) -> list[str]:
    """One line per failed run and per run during which server processes exited."""
    lines = []
    for run in document.runs:
        where = f"{run.stack} · {run.app} · {run.profile} · round {run.round}"
        if run.status == "failed":
            kind, message = (run.failure.kind, run.failure.message) if run.failure else ("?", "")
            first = (message.splitlines() or [""])[0]
            lines.append(f"{where}: FAILED ({kind}): {first}")
        if run.process_exits:
            which = ", ".join(f"{e.process} (pid {e.pid})" for e in run.process_exits)
            lines.append(
                f"{where}: {len(run.process_exits)} server process(es) exited during the "
                f"measurement: {which}; {run.process_restarts} replaced"
            )
    return lines
