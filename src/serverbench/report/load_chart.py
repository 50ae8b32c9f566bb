"""The HTML report's latency-vs-offered-rate chart: inline SVG, log latency, one line per
stack x app, the SLO drawn as a dashed line, each measured step a dot (filled: held; hollow:
broke) and each capacity a tick on its line."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from serverbench.plan.capacity import format_rps
from serverbench.report.blocks import LoadChart
from serverbench.report.capacity import line_points
from serverbench.report.numbers import format_us

LEFT, TOP, PLOT_W, PLOT_H = 80, 30, 620, 300
SLO_COLOUR = "#b00020"


def _log_y(value_us: float, low: float, high: float) -> float:
    span = math.log10(high) - math.log10(low)
    return TOP + PLOT_H - (math.log10(value_us) - math.log10(low)) / span * PLOT_H


def _rate_ticks(top_rps: float) -> list[float]:
    raw = top_rps / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(int(top_rps // step) + 1)]


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_load_chart(chart: LoadChart, palette: Sequence[str]) -> str:
    values = [
        p.latency_us for c in chart.curves for p in c.points if p.latency_us and p.latency_us > 0
    ]
    if chart.slo_us:
        values.append(chart.slo_us)
    rates = [p.offered_rps for c in chart.curves for p in c.points]
    if not values or not rates:
        return "<p>No open-loop step produced a latency.</p>"
    low = 10 ** math.floor(math.log10(min(values)))
    high = 10 ** math.ceil(math.log10(max(values)))
    if high <= low:
        high = low * 10
    top_rps = max(rates) * 1.05
    width, height = LEFT + PLOT_W + 20, TOP + PLOT_H + 50

    def x_of(rate: float) -> float:
        return LEFT + rate / top_rps * PLOT_W

    parts = [
        f'<svg class="chart" data-chart="latency-vs-load" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(chart.title)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="#ccc"/>',
    ]
    decade = low
    while decade <= high:
        y = _log_y(decade, low, high)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{y:.2f}" y2="{y:.2f}" stroke="#eee"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.2f}" text-anchor="end">'
            f"{esc(format_us(decade))}</text>"
        )
        decade *= 10
    for rate in _rate_ticks(top_rps):
        x = x_of(rate)
        parts.append(
            f'<line x1="{x:.2f}" x2="{x:.2f}" y1="{TOP}" y2="{TOP + PLOT_H}" stroke="#eee"/>'
            f'<text class="tick" x="{x:.2f}" y="{TOP + PLOT_H + 16}" text-anchor="middle">'
            f"{esc(format_rps(rate))}</text>"
        )
    parts.append(
        f'<text x="{LEFT + PLOT_W / 2}" y="{height - 8}" text-anchor="middle">'
        f"offered rate (req/s); p{esc(chart.percentile)} latency on a log scale</text>"
    )
    if chart.slo_us:
        y = _log_y(chart.slo_us, low, high)
        parts.append(
            f'<g class="slo" data-value="{chart.slo_us!r}">'
            f'<line x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{y:.2f}" y2="{y:.2f}" '
            f'stroke="{SLO_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{LEFT + PLOT_W - 4}" y="{y - 5:.2f}" text-anchor="end" fill="{SLO_COLOUR}">'
            f"SLO p{esc(chart.percentile)} {esc(format_us(chart.slo_us))}</text></g>"
        )
    legend = []
    for index, curve in enumerate(chart.curves):
        colour = palette[index % len(palette)]
        line = " ".join(
            f"{x_of(rate):.2f},{_log_y(value, low, high):.2f}" for rate, value in line_points(curve)
        )
        dots = []
        for point in curve.points:
            if not point.latency_us or point.latency_us <= 0:
                continue
            fill = colour if point.passed is not False else "#fff"
            verdict = {True: "held", False: "broke", None: ""}[point.passed]
            dots.append(
                f'<circle cx="{x_of(point.offered_rps):.2f}" '
                f'cy="{_log_y(point.latency_us, low, high):.2f}" r="3.5" fill="{fill}" '
                f'stroke="{colour}" stroke-width="1.5" data-rate="{point.offered_rps!r}" '
                f'data-value="{point.latency_us!r}" data-passed="{str(point.passed).lower()}">'
                f"<title>{esc(curve.label)}: {esc(format_rps(point.offered_rps))} req/s offered, "
                f"p{esc(chart.percentile)} {esc(format_us(point.latency_us))} {verdict}</title>"
                "</circle>"
            )
        capacity = ""
        if curve.capacity_rps is not None:
            x = x_of(curve.capacity_rps)
            capacity = (
                f'<line class="capacity" x1="{x:.2f}" x2="{x:.2f}" y1="{TOP + PLOT_H - 10}" '
                f'y2="{TOP + PLOT_H}" stroke="{colour}" stroke-width="3" '
                f'data-value="{curve.capacity_rps!r}"><title>{esc(curve.label)} capacity '
                f"{esc(format_rps(curve.capacity_rps))} req/s</title></line>"
            )
        parts.append(
            f'<g class="series" data-label="{esc(curve.label)}">'
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>'
            + "".join(dots)
            + capacity
            + "</g>"
        )
        legend.append(
            f'<span class="key"><span class="swatch" style="background:{colour}"></span>'
            f"{esc(curve.label)}</span>"
        )
    parts.append("</svg>")
    note = (
        "open-loop latency from each request's intended send time; filled dot: the step held "
        "the SLO and the error budget, hollow: it broke; tick on the axis: the capacity"
    )
    return (
        f'<figure class="figure" id="chart-latency-vs-load">{"".join(parts)}'
        f'<p class="legend">{"".join(legend)}</p>'
        f"<figcaption><strong>{esc(chart.title)}</strong>: {esc(note)}</figcaption></figure>"
    )
