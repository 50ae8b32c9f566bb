"""`serverbench compare` for machines and CI: a Markdown summary and a JSON document.

Both render the same `Comparison` the console table renders, so the three always agree. The
Markdown is made for a CI job summary ($GITHUB_STEP_SUMMARY) or a pull-request comment: a
verdict line first, then one row per stack x app x profile measured in both files. The JSON
carries the same figures with units in the key names, and the verdict for the gate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from serverbench.report.compare import (
    Comparison,
    Delta,
    change_with_interval,
    not_paired_note,
)
from serverbench.report.numbers import format_us, rate_text
from serverbench.results.aggregate import Cell


def _name(cell: Cell) -> str:
    return f"{cell.stack}/{cell.app}/{cell.profile}"


def _change(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f} %"


def _rate(cell: Cell) -> str:
    if cell.requests_per_sec is None:
        return f"**{cell.status.upper()}**"
    return rate_text(cell, always=True)


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _verdict(slower: Sequence[Delta], limit_pct: float | None) -> str:
    if limit_pct is None:
        return "No gate was set (`--fail-if-slower PCT`)."
    if not slower:
        return f"✅ No entry lost more than {limit_pct:g} % of its throughput."
    names = ", ".join(f"`{_name(d.a)}` ({_change(d.rps_change_pct)})" for d in slower)
    return f"❌ {len(slower)} slower than the {limit_pct:g} % limit: {names}."


def comparison_markdown(
    comparison: Comparison, a_name: str, b_name: str, limit_pct: float | None = None
) -> str:
    slower = comparison.slower_than(limit_pct) if limit_pct is not None else []
    lines = [
        "## serverbench: performance comparison",
        "",
        _verdict(slower, limit_pct),
        "",
        f"A (baseline): `{_md(a_name)}`  ",
        f"B (this change): `{_md(b_name)}`",
        "",
    ]
    if comparison.deltas:
        lines += [
            "| stack/app/profile | A req/s | B req/s | change (interval) | verdict | p99 A → B | p99 change | errors A → B |",
            "|---|--:|--:|--:|:-:|--:|--:|--:|",
        ]
        for d in comparison.deltas:
            mark = " ❌" if d in slower else ""
            p99a = d.a.latency_percentiles_us.get("99")
            p99b = d.b.latency_percentiles_us.get("99")
            lines.append(
                f"| `{_md(_name(d.a))}` | {_rate(d.a)} | {_rate(d.b)} | "
                f"{_md(change_with_interval(d))}{mark} | {d.verdict} | "
                f"{format_us(p99a)} → {format_us(p99b)} | {_change(d.latency_change_pct('99'))} | "
                f"{_error_rate(d.a)} → {_error_rate(d.b)} |"
            )
    else:
        lines.append("No stack/app/profile was measured in both files.")
    if comparison.only_in_a:
        lines += ["", "Only in A: " + ", ".join(f"`{_md(_name(c))}`" for c in comparison.only_in_a)]
    if comparison.only_in_b:
        lines += ["", "Only in B: " + ", ".join(f"`{_md(_name(c))}`" for c in comparison.only_in_b)]
    for text in comparison.profile_differences:
        lines += ["", f"> **warning:** {_md(text)}; the numbers are not like for like."]
    note = not_paired_note(comparison)
    lines += [
        "",
        "<sub>req/s = good responses per second, median ± its confidence interval over the "
        "repeats; a change fails the gate only when its whole interval lies beyond the limit."
        + (f" {_md(note)}" if note else "")
        + "</sub>",
    ]
    return "\n".join(lines) + "\n"


def _error_rate(cell: Cell) -> str:
    return f"{cell.error_rate * 100:.2f} %" if cell.ok_runs else "–"


def _cell_figures(cell: Cell) -> dict[str, Any]:
    s = cell.requests_per_sec
    p = cell.latency_percentiles_us
    return {
        "status": cell.status,
        "repeats_ok": len(cell.ok_runs),
        "requests_per_sec_median": s.median if s else None,
        "requests_per_sec_min": s.minimum if s else None,
        "requests_per_sec_max": s.maximum if s else None,
        "latency_p50_ms": p["50"] / 1000 if "50" in p else None,
        "latency_p99_ms": p["99"] / 1000 if "99" in p else None,
        "error_rate_pct": cell.error_rate * 100 if cell.ok_runs else None,
    }


def _key(cell: Cell) -> dict[str, str]:
    return {"stack": cell.stack, "app": cell.app, "profile": cell.profile}


def comparison_record(
    comparison: Comparison, a_name: str, b_name: str, limit_pct: float | None = None
) -> dict[str, Any]:
    slower = comparison.slower_than(limit_pct) if limit_pct is not None else []
    return {
        "a": a_name,
        "b": b_name,
        "fail_if_slower_pct": limit_pct,
        "passed": not slower,
        "slower": [_key(d.a) | {"requests_per_sec_change_pct": d.rps_change_pct} for d in slower],
        "deltas": [
            _key(d.a)
            | {
                "a": _cell_figures(d.a),
                "b": _cell_figures(d.b),
                "requests_per_sec_change_pct": d.rps_change_pct,
                "requests_per_sec_change_low_pct": d.change.low_pct if d.change else None,
                "requests_per_sec_change_high_pct": d.change.high_pct if d.change else None,
                "significant": d.significant,
                "verdict": d.verdict,
                "latency_p50_change_pct": d.latency_change_pct("50"),
                "latency_p99_change_pct": d.latency_change_pct("99"),
            }
            for d in comparison.deltas
        ],
        "only_in_a": [_key(c) for c in comparison.only_in_a],
        "only_in_b": [_key(c) for c in comparison.only_in_b],
        "profile_differences": list(comparison.profile_differences),
    }


def comparison_json(
    comparison: Comparison, a_name: str, b_name: str, limit_pct: float | None = None
) -> str:
    return json.dumps(comparison_record(comparison, a_name, b_name, limit_pct), indent=1) + "\n"
