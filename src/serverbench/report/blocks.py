"""The report's building blocks, format-neutral: what content.py produces and the Markdown
and HTML renderers draw. Inline markup inside text is limited to `code` and **bold**."""

from __future__ import annotations

from dataclasses import dataclass

from serverbench.results.aggregate import Cell


@dataclass(frozen=True, slots=True, kw_only=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Paragraph:
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Bullets:
    items: tuple[str, ...]
    numbered: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: tuple[int, ...] = ()  # right-aligned (numeric) columns


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    text: str
    language: str = "text"


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    """A figure only the HTML report draws; it carries the cells its bars are built from."""

    kind: str  # "throughput", "latency", "errors"
    title: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CurvePoint:
    offered_rps: float
    latency_us: float | None  # the plotted percentile; None when no response was good
    passed: bool | None  # against the SLO and the budget; None where none applied


@dataclass(frozen=True, slots=True, kw_only=True)
class Curve:
    label: str  # "stack · app"
    points: tuple[CurvePoint, ...]  # in the order measured; the line joins per-rate medians
    capacity_rps: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadChart:
    """Latency (log scale) against offered rate, one line per stack, the SLO drawn; HTML only."""

    title: str
    percentile: str  # "99"
    slo_us: float | None
    curves: tuple[Curve, ...]


Block = Heading | Paragraph | Bullets | Table | Code | Chart | LoadChart
