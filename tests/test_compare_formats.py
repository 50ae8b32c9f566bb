"""`compare` as Markdown (CI job summary, pull-request comment) and JSON: same figures, same verdict."""

from __future__ import annotations

import json

import pytest

from serverbench.report.compare import compare
from serverbench.report.compare_formats import comparison_json, comparison_markdown
from serverbench.results.model import ResultsDocument
from tests.comparisons import SLOW, fresh, scaled


@pytest.fixture
def a() -> ResultsDocument:
    return fresh()


def test_markdown_names_the_slower_entry_first(a: ResultsDocument) -> None:
    text = comparison_markdown(compare(a, scaled(SLOW, 0.5)), "main.json", "pr.json", 5.0)
    lines = text.splitlines()
    assert lines[0] == "## serverbench: performance comparison"
    assert lines[2].startswith("❌ 1 slower than the 5 % limit: `bjoern/seed-flask/tiny-high`")
    assert "-50.0 %" in lines[2]
    rows = [line for line in lines if line.startswith("| `")]
    assert len(rows) == 14
    (slow,) = [row for row in rows if "bjoern/seed-flask/tiny-high" in row]
    assert "-50.0% (66 % CI -61.2 to -35.6) ❌ | slower |" in slow
    assert all(row.count("|") == slow.count("|") for row in rows)  # a well-formed table


def test_markdown_passes_without_slowdown(a: ResultsDocument) -> None:
    text = comparison_markdown(compare(a, a), "a", "b", 5.0)
    assert "✅ No entry lost more than 5 % of its throughput." in text
    assert "❌" not in text


def test_json_carries_the_verdict_and_the_figures(a: ResultsDocument) -> None:
    record = json.loads(comparison_json(compare(a, scaled(SLOW, 0.5)), "a", "b", 5.0))
    assert record["passed"] is False
    assert record["slower"] == [
        {
            "stack": "bjoern",
            "app": "seed-flask",
            "profile": "tiny-high",
            "requests_per_sec_change_pct": pytest.approx(-50.0),
        }
    ]
    (delta,) = [d for d in record["deltas"] if (d["stack"], d["app"], d["profile"]) == SLOW]
    assert delta["b"]["requests_per_sec_median"] == pytest.approx(
        delta["a"]["requests_per_sec_median"] * 0.5
    )
    assert delta["significant"] is True
    assert delta["verdict"] == "slower"
    assert (
        delta["requests_per_sec_change_low_pct"] < -50 < delta["requests_per_sec_change_high_pct"]
    )
    assert json.loads(comparison_json(compare(a, a), "a", "b", 5.0))["passed"] is True
