"""The HTML report's charts as data: one `ChartSpec` per figure, drawn in the page by Chart.js.

Python decides what is plotted (series, values, units, which axes are logarithmic); the page's
small glue script (charts.js) turns a spec into a Chart.js chart, so a new kind of chart (latency
against offered rate for the capacity searches, say) is one more function here.
Chart.js gives hover values, series hidden by clicking their legend entry, and log axes; it is
vendored in the package (report/vendor/) and inlined, so the page opens offline.

Each value is taken from one `Cell` at a time; a cell without a measurement is a gap with its
status drawn in its place, never a zero. The specs travel as JSON inside the page, escaped so
that no text can close the script element.

Why Chart.js (4.x, MIT, ~210 kB minified, inlined in every page): it has bar, line and scatter
charts, logarithmic axes, tooltips and legend toggling built in, one stable major version at a
time, and a large user base; after drawing, `chart.data` holds exactly what was plotted, which
the headless-browser test reads back from each canvas. uPlot (~50 kB) is smaller but made for
time series: grouped bars and tooltips would be ours to write. ECharts (~1 MB) and plotly.js
(~3.5 MB, what plotly.py embeds) would make every report several megabytes. Hand-drawn SVG
(before) gave none of hover, hiding or new chart kinds without drawing code for each.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from serverbench.plan.capacity import CapacityRecord, Step, any_pooled, format_rps
from serverbench.report.capacity import search_name
from serverbench.report.uncertainty import confidence_label
from serverbench.results.aggregate import Cell, throughput_order
from serverbench.results.inference import CONFIDENCE, Estimate, repeats_for

PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
)
PALETTE += ("#bcbd22", "#7f7f7f", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39")
REFERENCE_COLOUR = "#8a8a8a"
ERROR_KINDS: tuple[tuple[str, str, str], ...] = (  # ErrorCounts field, label, colour
    ("connect", "connect", "#9467bd"),
    ("read", "read", "#d62728"),
    ("write", "write", "#ff7f0e"),
    ("timeout", "timeout", "#8c564b"),
    ("status", "status >= 400", "#e377c2"),
)
CURVE_PERCENTILES = ("50", "75", "90", "99", "99.9", "99.99")
SLO_COLOUR = "#b00020"
# Chart.js point styles of a capacity step: held, broke, held at the capacity found
HELD_POINT, BROKE_POINT, CAPACITY_POINT = ("circle", 3.0), ("crossRot", 5.0), ("rectRot", 6.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Axis:
    title: str
    log: bool = False
    unit: str = ""  # shown after values in ticks and tooltips
    # fixed ticks as (position, label), for an axis whose positions are not its labels
    ticks: tuple[tuple[float, str], ...] = ()
    stacked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    label: str
    colour: str
    # one value per category (bar charts), or (x, y) points (line charts); None = no measurement
    values: tuple[float | None, ...] = ()
    points: tuple[tuple[float, float], ...] = ()
    ranges: tuple[tuple[float, float] | None, ...] = ()  # whisker per category
    range_labels: tuple[str, ...] = ()  # what each whisker is, for tooltips: "95 % CI, 6 repeats"
    statuses: tuple[str, ...] = ()  # drawn where a value is None: "FAILED", "SKIPPED"
    point_labels: tuple[str, ...] = ()  # names of the points for tooltips, e.g. "p99"
    point_styles: tuple[str, ...] = ()  # Chart.js pointStyle per point; empty: circles
    point_radii: tuple[float, ...] = ()  # px per point, with point_styles
    dashed: bool = False  # a reference line (an SLO): dashed, no point marks
    hidden: bool = False  # starts hidden; its legend entry shows it
    key: str = ""  # stack|app (bars) or stack|app|profile (curves): what the test reads back


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartSpec:
    kind: str  # "throughput", "latency", "errors", ...
    type: str  # "bar" or "line"
    title: str
    x: Axis
    y: Axis
    series: tuple[Series, ...]
    categories: tuple[str, ...] = ()  # bar charts: one label per value
    horizontal: bool = False
    height_px: int = 360
    note: str = ""

    def to_json(self) -> str:
        """JSON safe to place inside <script type="application/json">."""
        text = json.dumps(_plain(self), allow_nan=False, separators=(",", ":"))
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def series_label(cell: Cell) -> str:
    return f"{cell.stack} · {cell.app}" + (" (ceiling)" if cell.role == "reference" else "")


def series_key(cell: Cell) -> str:
    return f"{cell.stack}|{cell.app}"


def colours(items: Sequence[Cell]) -> dict[str, str]:
    """One colour per stack x app, the same in every chart; the ceiling is grey."""
    keys = list(dict.fromkeys(series_key(c) for c in items if c.role != "reference"))
    chosen = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}
    chosen.update({series_key(c): REFERENCE_COLOUR for c in items if c.role == "reference"})
    return chosen


def _profiles(items: Sequence[Cell]) -> list[str]:
    return list(dict.fromkeys(c.profile for c in items))


def whisker(estimate: Estimate | None) -> tuple[tuple[float, float], str] | None:
    """A bar's whisker and what it is: the 95 % confidence interval of the median, or, from
    fewer repeats than a 95 % interval needs, min-max with the confidence it does have."""
    if estimate is None or estimate.count < 2:
        return None
    sure = confidence_label(estimate.confidence)
    what = sure if estimate.confidence >= CONFIDENCE else f"min-max, {sure}"
    return (estimate.low, estimate.high), f"{what}, {estimate.count} repeats"


def whisker_note(estimates: Sequence[Estimate]) -> str:
    """What the whiskers of a chart are, honestly: a 95 % interval only where one exists."""
    counts = sorted({e.count for e in estimates if e.count > 1})
    if not counts:
        return "bar = median; one repeat per bar, so no interval"
    needed = repeats_for(CONFIDENCE)
    short = [n for n in counts if n < needed]
    interval = "whisker = 95 % confidence interval of the median (order statistics)"
    if not short:
        return f"bar = median, {interval}"
    sure = ", ".join(
        f"{confidence_label(next(e.confidence for e in estimates if e.count == n))} with {n}"
        for n in short
    )
    fallback = (
        f"min-max over the repeats ({sure}: fewer than {needed} repeats cannot give a 95 % "
        "interval)"
    )
    if len(short) == len(counts):
        return f"bar = median, whisker = {fallback}"
    return f"bar = median, {interval} where {needed} repeats or more, else {fallback}"


def throughput_chart(title: str, items: Sequence[Cell]) -> ChartSpec:
    """Grouped bars: one group per profile, one series per stack x app (best first)."""
    profiles = _profiles(items)
    palette = colours(items)
    by_key = {c.key: c for c in items}
    series = []
    for cell in _series_order(items):
        row = [by_key.get((cell.stack, cell.app, p)) for p in profiles]
        whiskers = [whisker(c.rps_estimate if c else None) for c in row]
        series.append(
            Series(
                label=series_label(cell),
                key=series_key(cell),
                colour=palette[series_key(cell)],
                values=tuple(
                    c.requests_per_sec.median if c and c.requests_per_sec else None for c in row
                ),
                ranges=tuple(w[0] if w else None for w in whiskers),
                range_labels=tuple(w[1] if w else "" for w in whiskers),
                statuses=tuple(c.status.upper() if c else "" for c in row),
                # the ceiling is often 5-10x the Python stacks and would flatten their
                # differences: it starts hidden, one click on its legend entry shows it
                hidden=cell.role == "reference",
            )
        )
    estimates = [e for c in items if (e := c.rps_estimate) is not None]
    return ChartSpec(
        kind="throughput",
        type="bar",
        title=title,
        categories=tuple(f"profile {p}" for p in profiles),
        x=Axis(title=""),
        y=Axis(title="good responses per second", unit="req/s"),
        series=tuple(series),
        note=f"{whisker_note(estimates)}; click a legend entry to hide or show a stack (the "
        "nginx-static ceiling starts hidden)",
    )


def _series_order(items: Sequence[Cell]) -> list[Cell]:
    """One cell per stack x app, best throughput first (by its best profile)."""
    seen: dict[str, Cell] = {}
    for cell in throughput_order(items):
        seen.setdefault(series_key(cell), cell)
    return list(seen.values())


def nines(percentile: str) -> float:
    """x position of a percentile on the HdrHistogram-style axis: log10(1 / (1 - p))."""
    return math.log10(1 / (1 - float(percentile) / 100))


def _loops(items: Sequence[Cell]) -> str:
    """How the charted latencies were measured: "closed-loop", "open-loop", or both."""
    loops = {
        c.median_run.measurement.loop
        for c in items
        if c.median_run is not None and c.median_run.measurement is not None
    }
    return " and ".join(f"{loop}-loop" for loop in sorted(loops)) or "closed-loop"


def latency_charts(title: str, items: Sequence[Cell]) -> list[ChartSpec]:
    """One chart per profile: percentile curves, latency on a log axis."""
    palette = colours(items)
    charts = []
    for profile in _profiles(items):
        series = []
        for cell in [c for c in items if c.profile == profile and c.latency_percentiles_us]:
            shown = [p for p in CURVE_PERCENTILES if (cell.latency_percentiles_us.get(p) or 0) > 0]
            series.append(
                Series(
                    label=series_label(cell),
                    key=f"{series_key(cell)}|{profile}",
                    colour=palette[series_key(cell)],
                    points=tuple((nines(p), cell.latency_percentiles_us[p] / 1000) for p in shown),
                    point_labels=tuple(f"p{p}" for p in shown),
                )
            )
        if series:
            charts.append(
                ChartSpec(
                    kind="latency",
                    type="line",
                    title=f"{title}, profile {profile}",
                    x=Axis(
                        title="percentile (log scale of 1/(1-p))",
                        ticks=tuple((nines(p), f"p{p}") for p in CURVE_PERCENTILES),
                    ),
                    y=Axis(title="latency", log=True, unit="ms"),
                    series=tuple(series),
                    note=f"percentiles of the repeats' merged histograms ({_loops(items)} latency)",
                )
            )
    return charts


def errors_chart(title: str, items: Sequence[Cell]) -> ChartSpec:
    """Stacked horizontal bars: one row per stack x app x profile, one series per error kind."""
    rows = [c for c in items if c.ok_runs]
    series = []
    for kind, label, colour in ERROR_KINDS:
        values: list[float | None] = []
        for cell in rows:
            attempts = cell.good_responses + cell.error_count
            count = cell.errors.by_kind()[kind]
            values.append(count / attempts * 100 if attempts else 0.0)
        series.append(Series(label=label, key=kind, colour=colour, values=tuple(values)))
    return ChartSpec(
        kind="errors",
        type="bar",
        title=title,
        categories=tuple(f"{series_label(c)} · {c.profile}" for c in rows),
        x=Axis(title="share of attempts", unit="%", stacked=True),
        y=Axis(title="", stacked=True),
        series=tuple(series),
        horizontal=True,
        height_px=80 + 26 * max(1, len(rows)),
        note="errors over attempts (good responses plus errors), by kind",
    )


def _step_latency_ms(step: Step, key: str) -> float | None:
    value = step.observation.latency_percentiles_us.get(key)
    return value / 1000 if value is not None and value > 0 else None


def _step_mark(step: Step, capacity_rps: float | None) -> tuple[str, float]:
    if not step.judgement.passed:
        return BROKE_POINT
    return CAPACITY_POINT if step.rate_rps == capacity_rps else HELD_POINT


def _step_label(step: Step) -> str:
    return (
        f"{format_rps(step.rate_rps)} req/s offered, step {step.index} ({step.phase}): "
        f"{step.judgement.summary}"
    )


def capacity_chart(title: str, searches: Sequence[CapacityRecord]) -> ChartSpec | None:
    """Latency at the SLO's percentile (log axis) against offered rate: one line per stack x
    app through every measured step, by rate; the SLO a dashed line across. None when no step
    got a latency."""
    if not searches:
        return None
    slo = searches[0].settings.slo
    series = []
    left_out = 0
    for index, record in enumerate(searches):
        capacity = record.outcome.capacity_rps if record.outcome else None
        # a step without a good response has no latency to put on a log axis
        drawn = sorted(
            (
                (s.rate_rps, ms, s)
                for s in record.steps
                if (ms := _step_latency_ms(s, slo.key)) is not None
            ),
            key=lambda point: point[:2],
        )
        left_out += len(record.steps) - len(drawn)
        marks = [_step_mark(s, capacity) for _, _, s in drawn]
        series.append(
            Series(
                label=f"{search_name(record, searches)} · {record.app}",
                key=f"{record.stack}|{record.app}"
                + (f"|{record.repeat}" if record.repeat > 1 else ""),
                colour=PALETTE[index % len(PALETTE)],
                points=tuple((rate, ms) for rate, ms, _ in drawn),
                point_labels=tuple(_step_label(s) for _, _, s in drawn),
                point_styles=tuple(style for style, _ in marks),
                point_radii=tuple(radius for _, radius in marks),
            )
        )
    rates = [x for s in series for x, _ in s.points]
    if not rates:
        return None
    limit = f"SLO {slo.text}"
    series.append(
        Series(
            label=limit,
            key="slo",
            colour=SLO_COLOUR,
            points=((min(rates), slo.limit_us / 1000), (max(rates), slo.limit_us / 1000)),
            point_labels=(limit, limit),
            dashed=True,
        )
    )
    note = (
        "open-loop latency, from each request's intended send time, of every measured step; "
        "dot: the step held the SLO and the error budget, cross: it broke them, diamond: the "
        "capacity found; dashed: the SLO. Each step's numbers are in the tables below"
    )
    if any_pooled(searches):
        note += (
            "; a capacity is judged on all its steps' requests together, so a step that broke "
            "on its own (a cross) can sit at it"
        )
    if left_out:
        note += f" ({left_out} step(s) without a good response have no latency and are there only)"
    return ChartSpec(
        kind="latency-vs-load",
        type="line",
        title=title,
        x=Axis(title="offered rate", unit="req/s"),
        y=Axis(title=f"p{slo.key} latency", log=True, unit="ms"),
        series=tuple(series),
        note=note,
    )


def figure_html(spec: ChartSpec, chart_id: str) -> str:
    """The canvas a chart is drawn in, with its spec beside it as inert JSON."""
    title = html.escape(spec.title, quote=True)
    return (
        f'<figure class="figure" data-chart="{html.escape(spec.kind)}">'
        f'<div class="chart-box" style="height:{spec.height_px}px">'
        f'<canvas id="{chart_id}" class="chart" data-chart="{html.escape(spec.kind)}" '
        f'role="img" aria-label="{title}"></canvas></div>'
        f'<script type="application/json" class="chart-spec" data-canvas="{chart_id}">'
        f"{spec.to_json()}</script>"
        f"<figcaption><strong>{title}</strong>: {html.escape(spec.note)}</figcaption></figure>"
    )


def page_scripts() -> str:
    """Chart.js and the glue that draws every chart-spec, inlined: the page fetches nothing."""
    package = resources.files("serverbench.report")
    library = package.joinpath("vendor", "chart.umd.min.js").read_text()
    glue = package.joinpath("charts.js").read_text()
    return f"<script>{library}</script><script>{glue}</script>"
