"""Chart specs: every value comes from its own cell, gaps stay gaps, the JSON cannot break out."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from serverbench.report.capacity import ranked
from serverbench.report.charts import (
    BROKE_POINT,
    CAPACITY_POINT,
    HELD_POINT,
    Axis,
    ChartSpec,
    Series,
    capacity_chart,
    errors_chart,
    figure_html,
    latency_charts,
    page_scripts,
    throughput_chart,
)
from serverbench.results.aggregate import cells
from serverbench.results.model import ResultsDocument, RunRecord
from serverbench.results.store import load as load_results
from tests.test_capacity_report import record, records
from tests.test_capacity_search import ModelServer, StallsOnce

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
        for profile, value, spread, label, status in zip(
            profiles,
            series.values,
            series.ranges,
            series.range_labels,
            series.statuses,
            strict=True,
        ):
            cell = by_key.get((stack, app, profile))
            if cell is None or cell.requests_per_sec is None:
                assert value is None  # never a zero bar
                assert status in ("FAILED", "SKIPPED", "")
                continue
            assert value == cell.requests_per_sec.median
            if cell.requests_per_sec.count > 1:
                # two repeats cannot give a 95 % interval: the whisker is min-max, and says so
                assert spread == (cell.requests_per_sec.minimum, cell.requests_per_sec.maximum)
                assert label == "min-max, 50 % CI, 2 repeats"
        assert series.hidden == stack.startswith("nginx-static")
    assert any(v is None for s in spec.series for v in s.values)
    assert spec.note.startswith(
        "bar = median, whisker = min-max over the repeats (50 % CI with 2: fewer than 6 "
        "repeats cannot give a 95 % interval)"
    )


def with_rounds(document: ResultsDocument, rounds: int, stacks: set[str]) -> ResultsDocument:
    """The document with `stacks` measured in `rounds` rounds, 1 % faster each round."""
    kept = [r for r in document.runs if r.stack not in stacks]
    for n in range(1, rounds + 1):
        for run in [r for r in document.runs if r.round == 1 and r.stack in stacks]:
            m = run.measurement
            kept.append(
                replace(
                    run,
                    round=n,
                    id=f"{n}/{run.id.split('/', 1)[1]}",
                    measurement=replace(m, requests_per_sec=m.requests_per_sec * (1 + n / 100))
                    if m
                    else None,
                )
            )
    document.runs = kept
    return document


def test_with_enough_repeats_the_whisker_is_the_95_percent_interval_not_min_max() -> None:
    document = with_rounds(load("two-profiles-failed.json"), 10, {"bjoern", "uvicorn"})
    items = cells(document)
    spec = throughput_chart("t", items)
    (bjoern,) = [s for s in spec.series if s.key == "bjoern|seed-flask"]
    cell = next(c for c in items if c.key == ("bjoern", "seed-flask", "tiny-high"))
    assert cell.requests_per_sec is not None
    rates = sorted(cell.rps_by_round.values())
    spread, label = bjoern.ranges[1], bjoern.range_labels[1]
    # 10 repeats: the order statistics x(2) and x(9) hold the median with 97.9 %
    assert spread == (rates[1], rates[8])
    assert spread != (cell.requests_per_sec.minimum, cell.requests_per_sec.maximum)
    assert label == "95 % CI, 10 repeats"
    # the other stacks kept their 2 repeats: min-max, and the note says where each applies
    assert spec.note.startswith(
        "bar = median, whisker = 95 % confidence interval of the median (order statistics) "
        "where 6 repeats or more, else min-max over the repeats (50 % CI with 2"
    )
    only_ten = throughput_chart("t", [c for c in items if c.stack in {"bjoern", "uvicorn"}])
    assert only_ten.note.startswith(
        "bar = median, whisker = 95 % confidence interval of the median (order statistics);"
    )


def test_one_repeat_draws_no_whisker() -> None:
    document = load("two-profiles-failed.json")
    document.runs = [r for r in document.runs if r.round == 1]
    spec = throughput_chart("t", cells(document))
    assert all(r is None for s in spec.series for r in s.ranges)
    assert spec.note.startswith("bar = median; one repeat per bar, so no interval")


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


def test_capacity_chart_draws_every_step_per_stack_on_a_log_axis_with_the_slo() -> None:
    searches = ranked(records())
    spec = capacity_chart("c", searches)
    assert spec is not None
    assert (spec.kind, spec.type) == ("latency-vs-load", "line")
    assert spec.y.log
    assert (spec.x.unit, spec.y.unit) == ("req/s", "ms")
    *lines, slo = spec.series
    assert [s.key for s in lines] == [f"{r.stack}|{r.app}" for r in searches]
    for series, search in zip(lines, searches, strict=True):
        assert search.outcome is not None
        steps = search.steps
        expected = sorted((s.rate_rps, s.observation.latency_percentiles_us["99"]) for s in steps)
        assert series.points == tuple((rate, us / 1000) for rate, us in expected)
        assert len(series.point_styles) == len(series.point_radii) == len(steps)
        by_point = dict(zip(series.points, series.point_styles, strict=True))
        for step in steps:
            style = by_point[(step.rate_rps, step.observation.latency_percentiles_us["99"] / 1000)]
            if not step.judgement.passed:
                assert style == BROKE_POINT[0]
            elif step.rate_rps == search.outcome.capacity_rps:
                assert style == CAPACITY_POINT[0]
            else:
                assert style == HELD_POINT[0]
        assert BROKE_POINT[0] in series.point_styles
        assert CAPACITY_POINT[0] in series.point_styles
        assert any(label.endswith(": held") for label in series.point_labels)
    assert any("broke: latency" in label for s in lines for label in s.point_labels)
    rates = [x for s in lines for x, _ in s.points]
    assert slo.dashed
    assert slo.label == "SLO p99 <= 50 ms"
    assert slo.points == ((min(rates), 50.0), (max(rates), 50.0))
    assert "(" not in spec.note  # no step was left out


def test_a_step_without_latency_is_left_out_of_the_chart_and_the_note_says_so() -> None:
    dying = record("gunicorn", ModelServer(mu=2000.0, dies_above_rps=800.0))
    without = [s for s in dying.steps if not s.observation.latency_percentiles_us]
    assert without
    spec = capacity_chart("c", [dying])
    assert spec is not None
    assert len(spec.series[0].points) == len(dying.steps) - len(without)
    assert f"{len(without)} step(s) without a good response" in spec.note
    nothing = replace(dying, steps=tuple(without))
    assert capacity_chart("c", [nothing]) is None
    assert capacity_chart("c", []) is None


def test_a_pooled_capacity_says_a_cross_can_sit_at_it() -> None:
    pooled_search = record("bjoern", StallsOnce(1562.5, stall_on=2, stalled_share=0.02))
    spec = capacity_chart("c", [pooled_search])
    assert spec is not None
    assert "a step that broke on its own (a cross) can sit at it" in spec.note
    plain = capacity_chart("c", records())
    assert plain is not None
    assert "(a cross)" not in plain.note
