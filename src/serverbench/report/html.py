"""The HTML report: the same content blocks as the Markdown one, plus interactive charts.

One self-contained file: the stylesheet, Chart.js (vendored in the package) and the charts'
data are inlined, and nothing is fetched from the network, so the page works from disk and in
an air-gapped CI artifact. The charts (report/charts.py) show values on hover, hide a series
when its legend entry is clicked, and put latency on log axes; every text is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from importlib import resources

from serverbench.report.charts import (
    ChartSpec,
    capacity_chart,
    errors_chart,
    figure_html,
    latency_charts,
    page_scripts,
    throughput_chart,
)
from serverbench.report.content import (
    Block,
    Bullets,
    Chart,
    Code,
    Heading,
    Paragraph,
    Table,
    build,
)
from serverbench.results.model import ResultsDocument


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def inline(text: str) -> str:
    """Escape, then turn `code` and **bold** into tags (both renderers' only inline markup)."""
    escaped = esc(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def chart_specs(chart: Chart) -> list[ChartSpec]:
    if chart.kind == "throughput":
        return [throughput_chart(chart.title, chart.cells)]
    if chart.kind == "latency":
        return latency_charts(chart.title, chart.cells)
    if chart.kind == "errors":
        return [errors_chart(chart.title, chart.cells)]
    if chart.kind == "latency-vs-load":
        spec = capacity_chart(chart.title, chart.searches)
        return [spec] if spec else []
    raise ValueError(f"unknown chart kind {chart.kind!r}")


def render_chart(chart: Chart) -> str:
    specs = chart_specs(chart)
    if not specs:
        return f"<p>{esc(chart.title)}: nothing was measured.</p>"
    figures = "".join(
        figure_html(spec, f"chart-{slug(chart.kind)}-{index}") for index, spec in enumerate(specs)
    )
    return f'<section class="charts" id="chart-{slug(chart.kind)}">{figures}</section>'


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
    raise TypeError(f"unknown block {block!r}")


def _toc(blocks: Sequence[Block]) -> str:
    items = "".join(
        f'<li><a href="#{slug(b.text)}">{esc(b.text)}</a></li>'
        for b in blocks
        if isinstance(b, Heading) and b.level == 2
    )
    return f'<nav class="toc"><ol>{items}</ol></nav>'


def render_html(document: ResultsDocument, notes: Sequence[str] = ()) -> str:
    blocks = build(document, notes)
    title = next((b.text for b in blocks if isinstance(b, Heading)), "serverbench report")
    css = resources.files("serverbench.report").joinpath("report.css").read_text()
    body = "\n".join(render_block(b) for b in blocks[1:])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{css}</style></head>\n"
        f"<body><main><h1>{inline(title)}</h1>{_toc(blocks)}\n{body}\n</main>"
        f"{page_scripts()}</body></html>\n"
    )
