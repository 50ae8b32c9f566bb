"""Reports rendered from a results document: Markdown and a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

from serverbench.results import Document


def write_reports(
    document: Document, out_dir: Path, formats: tuple[str, ...] = ("md", "html")
) -> list[Path]:
    """Render each format into out_dir; return the paths written."""
    return []
