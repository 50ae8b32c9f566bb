"""Reports rendered from a results document: Markdown and a self-contained HTML page.

Reports read the results document only: they never start a process or measure anything, so
`serverbench report` can rebuild them anywhere from a results.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from serverbench.errors import UsageError
from serverbench.report.html import render_html
from serverbench.report.markdown import render_markdown
from serverbench.results.model import ResultsDocument

FORMATS = {"md": ("report.md", render_markdown), "html": ("report.html", render_html)}


def render(document: ResultsDocument, fmt: str, notes: Sequence[str] = ()) -> str:
    """The report; `notes` lead it (what the results file alone cannot know)."""
    try:
        _, renderer = FORMATS[fmt]
    except KeyError:
        raise UsageError(
            f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}"
        ) from None
    return renderer(document, notes)


def write_report(
    document: ResultsDocument, fmt: str, path: Path, notes: Sequence[str] = ()
) -> Path:
    text = render(document, fmt, notes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_reports(
    document: ResultsDocument, out_dir: Path, formats: tuple[str, ...] = ("md", "html")
) -> list[Path]:
    """Render each format into out_dir; return the paths written."""
    return [write_report(document, fmt, out_dir / FORMATS[fmt][0]) for fmt in formats]
