"""`serverbench compare`: delta table, the change with its interval, --fail-if-slower, errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from serverbench.cli import main
from serverbench.errors import ResultsError
from serverbench.report.compare import compare, render_comparison
from serverbench.results.model import Failure, ResultsDocument
from serverbench.results.store import load, save
from tests.comparisons import DATA, SLOW, fresh, key_of, scaled


@pytest.fixture
def a() -> ResultsDocument:
    return fresh()


def write(path: Path, document: ResultsDocument) -> Path:
    save(document, path)
    return path


def test_regression_is_found_and_significant(a: ResultsDocument) -> None:
    b = scaled(SLOW, 0.5)
    result = compare(a, b)
    deltas = {d.key: d for d in result.deltas}
    assert len(deltas) == 14
    slow = deltas[SLOW]
    assert slow.rps_change_pct == pytest.approx(-50.0)
    assert slow.significant  # 8,643-10,695 against 4,321-5,347
    assert slow.verdict == "slower"
    # half the good responses for the same server CPU time: each request cost twice as much
    efficiency = slow.efficiency_change
    assert efficiency is not None
    assert efficiency.change_pct == pytest.approx(-50.0, abs=0.1)
    same = deltas[("uvicorn", "seed-flask", "tiny-high")]
    assert same.rps_change_pct == pytest.approx(0.0)
    assert not same.significant
    assert same.verdict == "no significant difference"
    assert [d.key for d in result.slower_than(10)] == [SLOW]
    assert result.slower_than(60) == []
    table = render_comparison(result, "A.json", "B.json")
    row = next(
        line for line in table.splitlines() if line.startswith("bjoern/seed-flask/tiny-high")
    )
    # two repeats each reach a 66 % interval at most, and say so
    assert "-50.0% (66 % CI " in row
    assert " slower " in row
    assert "cannot be paired by round" in table


def test_small_change_within_spread(a: ResultsDocument) -> None:
    delta = next(d for d in compare(a, scaled(SLOW, 0.95)).deltas if d.key == SLOW)
    assert delta.rps_change_pct == pytest.approx(-5.0)
    assert not delta.significant
    assert not delta.fails(1.0)


def test_failed_in_b_counts_as_total_loss(a: ResultsDocument) -> None:
    b = fresh()
    died = Failure(kind="died", message="bjoern died")
    b.runs = [
        replace(run, status="failed", failure=died) if key_of(run) == SLOW else run
        for run in b.runs
    ]
    delta = next(d for d in compare(a, b).deltas if d.key == SLOW)
    assert delta.rps_change_pct == pytest.approx(-100.0)
    assert delta.significant
    assert delta.fails(99.0)
    assert "FAILED" in render_comparison(compare(a, b), "A", "B")


def test_non_matching_entries_and_profile_differences(a: ResultsDocument) -> None:
    smoke = load(DATA / "smoke-3stacks.json")
    result = compare(smoke, a)
    assert result.deltas == ()
    assert len(result.only_in_a) == 4
    assert len(result.only_in_b) == 14
    text = render_comparison(result, "A", "B")
    assert "only in A: bjoern/seed-flask/smoke" in text
    b = fresh()
    moderate, high = b.plan.profiles
    b.plan = replace(b.plan, profiles=(moderate, replace(high, connections=800)))
    assert compare(a, b).profile_differences == (
        "profile tiny-high differs: connections 400 -> 800",
    )


def test_a_file_from_before_the_leftover_reset_is_not_like_for_like(a: ResultsDocument) -> None:
    b = fresh()
    b.runs = [replace(run, leftover_connections_reset=0) for run in b.runs]
    [warning] = compare(a, b).profile_differences
    assert warning.startswith("B reset the load's closing connections after each window, A did")
    assert compare(b, b).profile_differences == ()
    text = render_comparison(compare(b, a), "A", "B")
    assert "warning: A reset the load's closing connections" in text


def test_cli_exit_codes(
    tmp_path: Path, a: ResultsDocument, capsys: pytest.CaptureFixture[str]
) -> None:
    path_a = write(tmp_path / "a.json", a)
    path_b = write(tmp_path / "b.json", scaled(SLOW, 0.65))
    assert main(["compare", str(path_a), str(path_b)]) == 0
    assert main(["compare", str(path_a), str(path_b), "--fail-if-slower", "10"]) == 1
    assert (
        "slower: bjoern/seed-flask/tiny-high: req/s -35.0% (66 % CI -49.5 to -16.3), "
        "beyond the 10% limit" in capsys.readouterr().err
    )
    # -35 % measured, but the interval reaches up to -16.3 %: not beyond a 20 % limit
    assert main(["compare", str(path_a), str(path_b), "--fail-if-slower", "20"]) == 0
    # the drift allowed between separate runs widens every interval
    assert main(["compare", str(path_a), str(path_b), "--run-drift", "0"]) == 0
    assert "allows 0 % drift of a run's level" in capsys.readouterr().out
    assert main(["compare", str(path_a), str(path_b), "--run-drift", "-1"]) == 2
    assert main(["compare", str(path_a), str(path_b), "--fail-if-slower", "40"]) == 0
    assert main(["compare", str(path_a), str(path_a), "--fail-if-slower", "0"]) == 0


def test_unreadable_inputs_are_explained(
    tmp_path: Path, a: ResultsDocument, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path / "a.json", a)
    assert main(["compare", str(tmp_path / "missing.json"), str(good)]) == 1
    assert "does not exist" in capsys.readouterr().err
    raw = json.loads((DATA / "two-profiles-failed.json").read_text())
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**raw, "schema_version": 99}))
    with pytest.raises(ResultsError, match="upgrade serverbench"):
        load(newer)
    (tmp_path / "junk.json").write_text("{not json")
    assert main(["compare", str(good), str(tmp_path / "junk.json")]) == 1
    assert "not valid JSON" in capsys.readouterr().err
