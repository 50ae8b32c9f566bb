"""The report's building blocks, format-neutral: what content.py produces and the Markdown
and HTML renderers draw. Inline markup inside text is limited to `code` and **bold**."""

from __future__ import annotations

from dataclasses import dataclass

from serverbench.plan.capacity import CapacityRecord
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
    """A figure only the HTML report draws; it carries what its series are built from: the
    cells (throughput, latency, errors) or the capacity searches (latency against offered rate)."""

    kind: str  # "throughput", "latency", "errors", "latency-vs-load"
    title: str
    cells: tuple[Cell, ...] = ()
    searches: tuple[CapacityRecord, ...] = ()  # in the order their lines are listed


Block = Heading | Paragraph | Bullets | Table | Code | Chart
