"""`serverbench export`: CSV / JSON lines carry the summary's figures, missing ones stay empty."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from pathlib import Path

import pytest

from serverbench.commands import export as export_command
from serverbench.report.export import CELL_COLUMNS, RUN_COLUMNS, export
from serverbench.results.aggregate import cells
from serverbench.results.model import ResultsDocument
from serverbench.results.store import load as load_results

DATA = Path(__file__).parent / "data" / "results"
UNITLESS = {"results_created_at", "stack", "app", "profile", "role", "status", "note"}
UNITLESS |= {"round", "failure_kind", "connections", "threads", "repeats_ok", "repeats_failed"}
UNITLESS |= {"good_responses", "errors_connect", "errors_read", "errors_write", "errors_timeout"}
UNITLESS |= {"errors_status"}


def load(name: str) -> ResultsDocument:
    return load_results(DATA / name)


def test_every_quantity_column_names_its_unit() -> None:
    for column in {*CELL_COLUMNS, *RUN_COLUMNS} - UNITLESS:
        assert re.search(r"(_ms|_s|_pct|_bytes|_per_sec(_median|_min|_max)?)$", column), column


def test_cell_rows_carry_the_cells_figures() -> None:
    document = load("two-profiles-failed.json")
    by_key = {c.key: c for c in cells(document)}
    lines = export(document, "jsonl").splitlines()
    assert len(lines) == len(by_key)
    for line in lines:
        row = json.loads(line)
        assert list(row) == list(CELL_COLUMNS)
        cell = by_key[(row["stack"], row["app"], row["profile"])]
        if cell.requests_per_sec is None:
            assert row["requests_per_sec_median"] is None  # never 0 for a failed cell
            assert row["latency_p99_ms"] is None
            assert row["note"]
            continue
        assert row["requests_per_sec_median"] == cell.requests_per_sec.median
        assert row["requests_per_sec_min"] == cell.requests_per_sec.minimum
        assert row["latency_p99_ms"] == cell.latency_percentiles_us["99"] / 1000
        assert row["latency_p99.9_ms"] == cell.latency_percentiles_us["99.9"] / 1000
        assert row["error_rate_pct"] == pytest.approx(cell.error_rate * 100)
        assert row["repeats_ok"] == len(cell.ok_runs)
    assert any(json.loads(line)["status"] == "failed" for line in lines)


def test_csv_has_one_header_and_empty_fields_for_missing_figures() -> None:
    document = load("two-profiles-failed.json")
    table = list(csv.DictReader(io.StringIO(export(document, "csv"))))
    assert len(table) == len(cells(document))
    failed = [row for row in table if row["status"] == "failed"]
    assert failed
    assert all(row["requests_per_sec_median"] == "" for row in failed)
    ok = [row for row in table if row["status"] == "ok"]
    assert all(float(row["requests_per_sec_median"]) > 0 for row in ok)


def test_run_rows_one_per_run() -> None:
    document = load("smoke-3stacks.json")
    table = list(csv.DictReader(io.StringIO(export(document, "csv", "run"))))
    assert len(table) == len(document.runs)
    first, run = table[0], document.runs[0]
    assert run.measurement is not None
    assert float(first["requests_per_sec"]) == run.measurement.requests_per_sec
    assert float(first["latency_p50_ms"]) == run.measurement.latency_percentiles_us["50"] / 1000
    assert float(first["server_cpu_s"]) > 0


def test_command_concatenates_files_under_one_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "all.csv"
    args = argparse.Namespace(
        results=[str(DATA / "smoke-3stacks.json"), str(DATA / "two-profiles-failed.json")],
        format="csv",
        per="cell",
        out=str(out),
    )
    assert export_command.run(args) == 0
    text = out.read_text()
    assert text.count("results_created_at,") == 1
    expected = len(cells(load("smoke-3stacks.json"))) + len(cells(load("two-profiles-failed.json")))
    assert len(list(csv.DictReader(io.StringIO(text)))) == expected
