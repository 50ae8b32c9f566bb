"""Chart specs: every value comes from its own cell, gaps stay gaps, the JSON cannot break out."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from serverbench.report.charts import (
    Axis,
    ChartSpec,
    Series,
    errors_chart,
    figure_html,
    latency_charts,
    page_scripts,
    throughput_chart,
)
from serverbench.results.aggregate import cells
from serverbench.results.model import ResultsDocument, RunRecord
from serverbench.results.store import load as load_results

DATA = Path(__file__).parent / "data" / "results"


def load(name: str) -> ResultsDocument:
    return load_results(DATA / name)


def test_throughput_values_ranges_and_gaps() -> None:
    items = cells(load("two-profiles-failed.json"))
    spec = throughput_chart("t", items)
    profiles = [c.removeprefix("profile ") for c in spec.categories]
    by_key = {c.key: c for c in items}
    assert {s.key for s in spec.series} == {f"{c.stack}|{c.app}" for c in items}
    for series in spec.series:
        stack, app = series.key.split("|")
        for profile, value, spread, status in zip(
            profiles, series.values, series.ranges, series.statuses, strict=True
        ):
            cell = by_key.get((stack, app, profile))
            if cell is None or cell.requests_per_sec is None:
                assert value is None  # never a zero bar
                assert status in ("FAILED", "SKIPPED", "")
                continue
            assert value == cell.requests_per_sec.median
            if cell.requests_per_sec.count > 1:
                assert spread == (cell.requests_per_sec.minimum, cell.requests_per_sec.maximum)
        assert series.hidden == stack.startswith("nginx-static")
    assert any(v is None for s in spec.series for v in s.values)


def test_latency_points_are_the_cells_percentiles_in_ms() -> None:
    items = cells(load("two-profiles-failed.json"))
    specs = latency_charts("l", items)
    assert len(specs) == 2  # one per profile
    by_key = {"|".join(c.key): c for c in items}
    for spec in specs:
        assert spec.y.log
        for series in spec.series:
            cell = by_key[series.key]
            for (_, y), name in zip(series.points, series.point_labels, strict=True):
                assert y == cell.latency_percentiles_us[name.removeprefix("p")] / 1000


def test_error_shares_add_up_to_the_error_rate() -> None:
    document = load("two-profiles-failed.json")

    def with_read_errors(run: RunRecord) -> RunRecord:
        m = run.measurement
        if not run.id.endswith("/uvicorn/seed-flask/tiny-high") or m is None:
            return run
        return replace(run, measurement=replace(m, errors=replace(m.errors, read=500)))

    document.runs = [with_read_errors(run) for run in document.runs]
    items = [c for c in cells(document) if c.ok_runs]
    spec = errors_chart("e", items)
    for index, cell in enumerate(items):
        total = sum(s.values[index] or 0.0 for s in spec.series)
        assert abs(total - cell.error_rate * 100) < 1e-9
    assert any(c.error_rate > 0 for c in items)


def test_spec_json_cannot_close_its_script_element() -> None:
    spec = ChartSpec(
        kind="throughput",
        type="bar",
        title="</script><script>alert(1)</script>",
        x=Axis(title="x"),
        y=Axis(title="y"),
        categories=("<!--",),
        series=(Series(label="a&b</script>", colour="#000", values=(1.0,)),),
    )
    page = figure_html(spec, "chart-0")
    inner = re.search(r'class="chart-spec"[^>]*>(.*?)</script>', page, re.S)
    assert inner is not None
    assert "<" not in inner.group(1)
    assert ">" not in inner.group(1)
    assert json.loads(inner.group(1))["series"][0]["label"] == "a&b</script>"
    assert "<script>alert(1)" not in page


def test_page_scripts_are_inline_and_fetch_nothing() -> None:
    scripts = page_scripts()
    assert "Chart.js v4" in scripts
    assert "sourceMappingURL" not in scripts
    assert not re.search(r"""\b(src|href)=["']?(https?:)?//""", scripts)
    assert len(scripts) < 260_000  # the library is ~210 kB; the page stays light
