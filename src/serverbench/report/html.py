"""The HTML report: the same content blocks as the Markdown one, plus inline SVG charts.

One self-contained file: the stylesheet is inlined, the charts are SVG drawn here, and nothing
is fetched from the network, so the page works from disk and in an air-gapped CI artifact.
Every bar, point and label of a chart is built from one `Cell` object at a time, so a label
cannot drift away from its value; every text is escaped.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from importlib import resources

from serverbench.report.content import (
    Block,
    Bullets,
    Chart,
    Code,
    Heading,
    LoadChart,
    Paragraph,
    Table,
    build,
)
from serverbench.report.load_chart import render_load_chart
from serverbench.report.numbers import format_us, median_range
from serverbench.results.aggregate import Cell, throughput_order
from serverbench.results.model import ResultsDocument

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
REFERENCE_COLOUR = "#8a8a8a"
ERROR_KINDS: tuple[tuple[str, str], ...] = (
    ("connect", "#9467bd"),
    ("read", "#d62728"),
    ("write", "#ff7f0e"),
    ("timeout", "#8c564b"),
    ("non-2xx/3xx", "#e377c2"),
)
CURVE_PERCENTILES = ("50", "75", "90", "99", "99.9", "99.99")
BAR_H = 22
LABEL_W = 230
PLOT_W = 560
VALUE_W = 170


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def inline(text: str) -> str:
    """Escape, then turn `code` and **bold** into tags (both renderers' only inline markup)."""
    escaped = esc(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def cell_key(cell: Cell) -> str:
    return f"{cell.stack}|{cell.app}|{cell.profile}"


def bar_label(cell: Cell) -> str:
    return f"{cell.stack} · {cell.app}" + (" (ceiling)" if cell.role == "reference" else "")


def colours(items: Sequence[Cell]) -> dict[str, str]:
    """One colour per stack x app (the same in every chart); the ceiling is grey."""
    series = list(dict.fromkeys(series_key(c) for c in items if c.role != "reference"))
    chosen = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(series)}
    chosen.update({series_key(c): REFERENCE_COLOUR for c in items if c.role == "reference"})
    return chosen


def series_key(cell: Cell) -> str:
    return f"{cell.stack}|{cell.app}"


def _profiles(items: Sequence[Cell]) -> list[str]:
    return list(dict.fromkeys(c.profile for c in items))


def _svg_open(kind: str, title: str, width: int, height: int) -> str:
    return (
        f'<svg class="chart" data-chart="{esc(kind)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(title)}">'
    )


def _bar_rows(
    kind: str,
    title: str,
    items: Sequence[Cell],
    draw: Callable[[Cell, int, float], str],
    maximum_of: Callable[[Cell], float],
) -> str:
    width = LABEL_W + PLOT_W + VALUE_W
    parts: list[str] = []
    y = 0
    for profile in _profiles(items):
        group = [c for c in items if c.profile == profile]
        if kind == "throughput":
            group = throughput_order(group)
        # The ceiling is drawn clipped rather than setting the scale: it is often 5-10x the
        # Python stacks, whose differences would otherwise shrink to a few pixels.
        scaled = [c for c in group if c.role != "reference"] or group
        top = max((maximum_of(c) for c in scaled), default=0.0) or 1.0
        parts.append(
            f'<text class="group" x="0" y="{y + 16}" font-weight="bold">profile {esc(profile)}</text>'
        )
        y += 24
        for cell in group:
            parts.append(draw(cell, y, top))
            y += BAR_H + 6
        y += 8
    return _svg_open(kind, title, width, y + 4) + "".join(parts) + "</svg>"


def _label(cell: Cell, y: int) -> str:
    return (
        f'<text class="label" x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end">'
        f"{esc(bar_label(cell))}</text>"
    )


def _missing(cell: Cell, y: int) -> str:
    reason = cell.skipped_reason or "; ".join(
        dict.fromkeys(r.splitlines()[0] for r in cell.failure_reasons)
    )
    return (
        f'<g class="bar missing" data-key="{esc(cell_key(cell))}" data-status="{esc(cell.status)}">'
        f"<title>{esc(bar_label(cell))}: {esc(cell.status)}: {esc(reason)}</title>"
        + _label(cell, y)
        + f'<text class="status" x="{LABEL_W + 4}" y="{y + 15}" fill="#b00020">'
        f"{esc(cell.status.upper())}</text></g>"
    )


def throughput_bar(cell: Cell, y: int, top: float, colour: str) -> str:
    s = cell.requests_per_sec
    if s is None:
        return _missing(cell, y)
    scale = PLOT_W / top
    clipped = s.maximum > top
    width = min(s.median * scale, PLOT_W)
    x_min = LABEL_W + min(s.minimum * scale, PLOT_W)
    x_max = LABEL_W + min(s.maximum * scale, PLOT_W)
    mid = y + BAR_H / 2
    value = median_range(s)
    if clipped:
        value += " (off scale)"
    # A clipped bar carries its value inside, in white; any other bar has it to its right.
    label_x = LABEL_W + 8 if clipped else max(LABEL_W + width, x_max) + 6
    return (
        f'<g class="bar" data-key="{esc(cell_key(cell))}" data-label="{esc(bar_label(cell))}" '
        f'data-value="{s.median!r}" data-min="{s.minimum!r}" data-max="{s.maximum!r}" '
        f'data-clipped="{str(clipped).lower()}">'
        f"<title>{esc(bar_label(cell))} · {esc(cell.profile)}: {esc(value)} req/s</title>"
        + _label(cell, y)
        + f'<rect class="value" x="{LABEL_W}" y="{y}" width="{width:.2f}" height="{BAR_H}" '
        f'fill="{colour}"/>'
        f'<line class="range" x1="{x_min:.2f}" x2="{x_max:.2f}" y1="{mid}" y2="{mid}" '
        f'stroke="#111" stroke-width="1.5"/>'
        f'<line x1="{x_min:.2f}" x2="{x_min:.2f}" y1="{y + 5}" y2="{y + BAR_H - 5}" stroke="#111"/>'
        f'<line x1="{x_max:.2f}" x2="{x_max:.2f}" y1="{y + 5}" y2="{y + BAR_H - 5}" stroke="#111"/>'
        f'<text class="value-label" x="{label_x:.2f}" '
        f'y="{y + 15}"'
        + (' fill="#fff" font-weight="bold"' if clipped else "")
        + f">{esc(value)}</text></g>"
    )


def throughput_chart(title: str, items: Sequence[Cell]) -> str:
    palette = colours(items)
    return _bar_rows(
        "throughput",
        title,
        items,
        lambda c, y, top: throughput_bar(c, y, top, palette[series_key(c)]),
        lambda c: c.requests_per_sec.maximum if c.requests_per_sec else 0.0,
    )


def _error_counts(cell: Cell) -> list[tuple[str, int, str]]:
    counts = cell.errors.by_kind()
    counts["non-2xx/3xx"] = counts.pop("status")
    return [(kind, counts[kind], colour) for kind, colour in ERROR_KINDS]


def errors_bar(cell: Cell, y: int, top: float) -> str:
    if not cell.ok_runs:
        return _missing(cell, y)
    attempts = cell.good_responses + cell.error_count
    scale = PLOT_W / top
    x = float(LABEL_W)
    rects = []
    for kind, count, colour in _error_counts(cell):
        if not count:
            continue
        width = count / attempts * 100 * scale if attempts else 0.0
        rects.append(
            f'<rect class="segment" data-kind="{kind}" data-count="{count}" x="{x:.2f}" '
            f'y="{y}" width="{width:.2f}" height="{BAR_H}" fill="{colour}">'
            f"<title>{esc(kind)}: {count:,}</title></rect>"
        )
        x += width
    rate = cell.error_rate * 100
    detail = ", ".join(f"{k} {n:,}" for k, n, _ in _error_counts(cell) if n) or "no errors"
    return (
        f'<g class="bar" data-key="{esc(cell_key(cell))}" data-label="{esc(bar_label(cell))}" '
        f'data-value="{cell.error_rate!r}">'
        f"<title>{esc(bar_label(cell))} · {esc(cell.profile)}: {rate:.2f} % ({esc(detail)})</title>"
        + _label(cell, y)
        + "".join(rects)
        + f'<text class="value-label" x="{x + 6:.2f}" y="{y + 15}">{rate:.2f} % · '
        f"{esc(detail)}</text></g>"
    )


def errors_chart(title: str, items: Sequence[Cell]) -> str:
    chart = _bar_rows(
        "errors",
        title,
        items,
        errors_bar,
        lambda c: max(c.error_rate * 100, 1.0),
    )
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{colour}"></span>{esc(kind)}</span>'
        for kind, colour in ERROR_KINDS
    )
    return chart + f'<p class="legend">{legend} (share of attempts, axis at least 1 %)</p>'


def _log_position(value: float, low: float, high: float, length: float) -> float:
    if high <= low:
        return 0.0
    return (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low)) * length


def _nines(percentile: str) -> float:
    """x position of a percentile on the HdrHistogram-style axis: log10(1 / (1 - p))."""
    return math.log10(1 / (1 - float(percentile) / 100))


def latency_chart(title: str, items: Sequence[Cell]) -> str:
    palette = colours(items)
    figures = []
    for profile in _profiles(items):
        series = [c for c in items if c.profile == profile and c.latency_percentiles_us]
        if not series:
            continue
        values = [v for c in series for v in c.latency_percentiles_us.values() if v > 0]
        low = 10 ** math.floor(math.log10(min(values)))
        high = 10 ** math.ceil(math.log10(max(values)))
        if high <= low:
            high = low * 10
        left, top, plot_w, plot_h = 70, 26, 600, 260
        width, height = left + plot_w + 20, top + plot_h + 50
        x_span = _nines(CURVE_PERCENTILES[-1])
        parts = [
            _svg_open("latency", f"{title}, {profile}", width, height),
            f'<text x="{left}" y="14" font-weight="bold">profile {esc(profile)}</text>',
            f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
        ]
        decade = low
        while decade <= high:
            y = top + plot_h - _log_position(decade, low, high, plot_h)
            parts.append(
                f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.2f}" y2="{y:.2f}" stroke="#eee"/>'
                f'<text class="tick" x="{left - 6}" y="{y + 4:.2f}" text-anchor="end">'
                f"{esc(format_us(decade))}</text>"
            )
            decade *= 10
        for p in CURVE_PERCENTILES:
            x = left + _nines(p) / x_span * plot_w
            parts.append(
                f'<line x1="{x:.2f}" x2="{x:.2f}" y1="{top}" y2="{top + plot_h}" stroke="#eee"/>'
                f'<text class="tick" x="{x:.2f}" y="{top + plot_h + 16}" text-anchor="middle">'
                f"p{esc(p)}</text>"
            )
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">'
            "percentile (log scale of 1/(1-p)); latency on a log scale</text>"
        )
        legend = []
        for cell in series:
            points = []
            dots = []
            for p in CURVE_PERCENTILES:
                value = cell.latency_percentiles_us.get(p)
                if value is None or value <= 0:
                    continue
                x = left + _nines(p) / x_span * plot_w
                y = top + plot_h - _log_position(value, low, high, plot_h)
                points.append(f"{x:.2f},{y:.2f}")
                dots.append(
                    f'<circle cx="{x:.2f}" cy="{y:.2f}" r="3" fill="{palette[series_key(cell)]}" '
                    f'data-percentile="{esc(p)}" data-value="{value!r}">'
                    f"<title>{esc(bar_label(cell))} p{esc(p)}: {esc(format_us(value))}</title></circle>"
                )
            parts.append(
                f'<g class="series" data-key="{esc(cell_key(cell))}" data-label="{esc(bar_label(cell))}">'
                f'<polyline fill="none" stroke="{palette[series_key(cell)]}" stroke-width="2" '
                f'points="{" ".join(points)}"/>' + "".join(dots) + "</g>"
            )
            legend.append(
                f'<span class="key"><span class="swatch" style="background:{palette[series_key(cell)]}">'
                f"</span>{esc(bar_label(cell))}</span>"
            )
        parts.append("</svg>")
        figures.append("".join(parts) + f'<p class="legend">{"".join(legend)}</p>')
    return "".join(figures) or "<p>No latency histogram was recorded.</p>"


def _loops(items: Sequence[Cell]) -> str:
    """How the charted latencies were measured: "closed-loop", "open-loop", or both."""
    loops = {
        c.median_run.measurement.loop
        for c in items
        if c.median_run is not None and c.median_run.measurement is not None
    }
    return " and ".join(f"{loop}-loop" for loop in sorted(loops)) or "closed-loop"


def render_chart(chart: Chart) -> str:
    if chart.kind == "throughput":
        body = throughput_chart(chart.title, chart.cells)
        note = "good responses per second: bar = median, whisker = min-max over the repeats"
    elif chart.kind == "latency":
        body = latency_chart(chart.title, chart.cells)
        note = f"percentiles of the repeats' merged histograms ({_loops(chart.cells)} latency)"
    elif chart.kind == "errors":
        body = errors_chart(chart.title, chart.cells)
        note = "errors over attempts, by kind"
    else:
        raise ValueError(f"unknown chart kind {chart.kind!r}")
    return (
        f'<figure class="figure" id="chart-{slug(chart.kind)}">{body}'
        f"<figcaption><strong>{esc(chart.title)}</strong>: {esc(note)}</figcaption></figure>"
    )


def render_block(block: Block) -> str:
    match block:
        case Heading(level=level, text=text):
            return f'<h{level} id="{slug(text)}">{inline(text)}</h{level}>'
        case Paragraph(text=text):
            return f"<p>{inline(text)}</p>"
        case Bullets(items=items, numbered=numbered):
            tag = "ol" if numbered else "ul"
            return f"<{tag}>" + "".join(f"<li>{inline(i)}</li>" for i in items) + f"</{tag}>"
        case Table(headers=headers, rows=rows, right=right):
            head = "".join(f"<th>{inline(h)}</th>" for h in headers)
            body = "".join(
                "<tr>"
                + "".join(
                    f'<td class="num">{inline(c)}</td>' if i in right else f"<td>{inline(c)}</td>"
                    for i, c in enumerate(row)
                )
                + "</tr>"
                for row in rows
            )
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        case Code(text=text, language=language):
            return f'<pre class="{esc(language)}"><code>{esc(text)}</code></pre>'
        case Chart():
            return render_chart(block)
        case LoadChart():
            return render_load_chart(block, PALETTE)
    raise TypeError(f"unknown block {block!r}")


def _toc(blocks: Sequence[Block]) -> str:
    items = "".join(
        f'<li><a href="#{slug(b.text)}">{esc(b.text)}</a></li>'
        for b in blocks
        if isinstance(b, Heading) and b.level == 2
    )
    return f'<nav class="toc"><ol>{items}</ol></nav>'


# Runs after the page is parsed; headless tests read the attribute with --dump-dom.
RENDERED_SCRIPT = (
    "document.body.dataset.rendered = String(document.querySelectorAll('svg.chart').length);"
)


def render_html(document: ResultsDocument) -> str:
    blocks = build(document)
    title = next((b.text for b in blocks if isinstance(b, Heading)), "serverbench report")
    css = resources.files("serverbench.report").joinpath("report.css").read_text()
    body = "\n".join(render_block(b) for b in blocks[1:])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{css}</style></head>\n"
        f"<body><main><h1>{inline(title)}</h1>{_toc(blocks)}\n{body}\n</main>"
        f"<script>{RENDERED_SCRIPT}</script></body></html>\n"
    )
