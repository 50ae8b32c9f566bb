"""The Markdown report: the content blocks written as GitHub-flavoured Markdown."""

from __future__ import annotations

from collections.abc import Sequence

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


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(block: Table) -> str:
    align = ["---:" if i in block.right else "---" for i in range(len(block.headers))]
    lines = [
        "| " + " | ".join(_cell(h) for h in block.headers) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows),
    ]
    return "\n".join(lines)


def _fence(text: str) -> str:
    longest = max((len(run) for run in text.split("\n") if set(run) == {"`"}), default=0)
    return "`" * max(3, longest + 1)


def render_block(block: Block) -> str | None:
    match block:
        case Heading(level=level, text=text):
            return f"{'#' * level} {text}"
        case Paragraph(text=text):
            return text
        case Bullets(items=items, numbered=numbered):
            return "\n".join(
                (f"{i}. " if numbered else "* ") + item for i, item in enumerate(items, start=1)
            )
        case Table():
            return _table(block)
        case Code(text=text, language=language):
            fence = _fence(text)
            return f"{fence}{language}\n{text}\n{fence}"
        case Chart():
            return None  # charts are drawn in the HTML report only
    raise TypeError(f"unknown block {block!r}")


def render_blocks(blocks: Sequence[Block]) -> str:
    parts = [text for text in map(render_block, blocks) if text is not None]
    return "\n\n".join(parts) + "\n"


def render_markdown(document: ResultsDocument, notes: Sequence[str] = ()) -> str:
    return render_blocks(build(document, notes))
