"""Plain-text tables for the terminal, drawn by rich: aligned columns, no colour, fine in CI logs.

Each row starts at the left margin with its first cell, so a line can be found by what it
starts with; cells never wrap (a terminal narrower than the table scrolls, a log keeps it whole).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

_UNWRAPPED_WIDTH = 100_000


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> str:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1))
    for index, header in enumerate(headers):
        table.add_column(
            header, justify="right" if index in right else "left", no_wrap=True, overflow="fold"
        )
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells for {len(headers)} columns: {row!r}")
        table.add_row(*row)
    out = io.StringIO()
    console = Console(
        file=out, width=_UNWRAPPED_WIDTH, no_color=True, color_system=None, highlight=False
    )
    console.print(table, markup=False, emoji=False, crop=False)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines() if line.strip())
