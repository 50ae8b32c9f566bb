"""`serverbench capacity` end to end with a real stack, short steps: the search recorded step
by step, the report led by the capacity section, Ctrl-C and --resume, nothing left running."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import interrupted, processes_mentioning, run_cli

pytestmark = pytest.mark.integration

SHORT = [
    "--stack", "bjoern", "--slo", "p99=50ms", "--peak-profile", "smoke",
    "--step-duration", "1", "--warmup", "0.5", "--confirmations", "1", "--precision", "25%",
]  # fmt: skip


def test_a_capacity_run_records_every_step_and_leads_the_report(tmp_path: Path):
    out = tmp_path / "results"
    done = run_cli("capacity", *SHORT, "--out", str(out))
    assert done.returncode == 0, done.stderr
    document = json.loads((out / "results.json").read_text())
    assert document["status"] == "complete"
    peak = document["runs"][0]
    assert (peak["stack"], peak["profile"], peak["status"]) == ("bjoern", "smoke", "ok")
    (search,) = document["capacity"]["searches"]
    assert search["peak_rps"] == pytest.approx(peak["measurement"]["requests_per_sec"])
    steps = search["steps"]
    assert len(steps) >= 3
    assert [s["index"] for s in steps] == list(range(1, len(steps) + 1))
    assert steps[0]["rate_rps"] == pytest.approx(0.25 * search["peak_rps"], abs=0.1)
    for step in steps:
        seen = step["observation"]
        assert seen["failure"] is None, seen
        assert seen["server_cpu_utilisation"] is not None
        assert seen["server_cpus_foreign"] is not None  # the window's noise was read
        # its requests and their histogram, so the confirmed rate's measurements pool
        assert seen["requests"] > 0
        assert seen["latency_histogram_hdr"]
        assert (out / "logs" / f"capacity-bjoern-seed-flask-{step['index']}").is_dir()
    outcome = search["outcome"]
    assert outcome["steps"] == len(steps)
    if outcome["capacity_rps"] is not None:
        # the capacity is judged on the requests of all its measurements together, and said so
        assert outcome["pooled"]
        assert outcome["passes_at_capacity"] == 2
        assert outcome["latency_at_capacity_us"] <= 50_000
        assert "the rate, confirmed: held at" in done.stderr
        assert "(over its 2 measurements, " in done.stderr
    # the progress lines count against a total that grows when a search needs more steps
    counts = [tuple(map(int, m)) for m in re.findall(r"^\[(\d+)/(\d+)\]", done.stderr, re.M)]
    assert counts
    assert all(step <= total for step, total in counts), counts
    assert outcome["limit"] in ("server_cpu", "latency", "errors", "generator", "contention")
    assert "capacity at p99 <= 50 ms" in done.stdout
    report = (out / "report.md").read_text()
    assert report.index("## Capacity at SLO") < report.index("## Introduction")
    assert "closed-loop" in report
    assert "Open loop" in report
    html = (out / "report.html").read_text()
    assert 'data-chart="latency-vs-load"' in html
    assert not processes_mentioning(str(out))


def steps_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    searches = (document.get("capacity") or {}).get("searches", [])
    return list(searches[0]["steps"]) if searches else []


def test_an_interrupted_capacity_run_resumes_without_repeating_a_step(tmp_path: Path):
    out = tmp_path / "results"
    code, stderr = interrupted(
        ["capacity", *SHORT, "--out", str(out)],
        out / "results.json",
        lambda document: len(steps_of(document)) >= 2,
        timeout_s=90,
    )
    assert code == 130, stderr
    document = json.loads((out / "results.json").read_text())
    assert document["status"] == "interrupted"
    assert (out / ".serverbench-owner").read_text() == ""  # owned as a run's folder, released
    reported = run_cli("report", str(out), "--format", "md")
    assert f"Continue it with `serverbench capacity --resume {out}`" in reported.stderr
    kept = steps_of(document)
    assert len(kept) >= 2
    assert document["capacity"]["searches"][0]["outcome"] is None
    assert not processes_mentioning(str(out))

    done = run_cli("capacity", "--resume", str(out))
    assert done.returncode == 0, done.stderr
    final = json.loads((out / "results.json").read_text())
    assert final["status"] == "complete"
    assert len(final["runs"]) == 1  # the peak was not measured again
    steps = final["capacity"]["searches"][0]["steps"]
    assert steps[: len(kept)] == kept
    assert [s["index"] for s in steps] == list(range(1, len(steps) + 1))
    assert final["capacity"]["searches"][0]["outcome"] is not None
    assert not processes_mentioning(str(out))


def test_repeated_searches_are_recorded_apart_and_their_spread_reported(tmp_path: Path):
    out = tmp_path / "results"
    quick = [a if a != "25%" else "50%" for a in SHORT]  # fewer steps: a coarser bisection
    done = run_cli("capacity", *quick, "--confirmations", "0", "--repeats", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    document = json.loads((out / "results.json").read_text())
    assert document["capacity"]["plan"]["repeats"] == 2
    assert len(document["runs"]) == 1  # one closed-loop peak serves both searches
    searches = document["capacity"]["searches"]
    assert [(s["stack"], s["repeat"]) for s in searches] == [("bjoern", 1), ("bjoern", 2)]
    assert all(s["outcome"] is not None for s in searches)
    assert (out / "logs" / "capacity-bjoern-seed-flask-1").is_dir()
    assert (out / "logs" / "capacity-bjoern-seed-flask-search2-1").is_dir()
    assert "capacity search 2/2 step 1" in done.stderr
    assert "bjoern (search 2)" in done.stdout
    if all(s["outcome"]["capacity_rps"] for s in searches):
        assert "**Run-to-run spread.**" in (out / "report.md").read_text()
        assert "bjoern · seed-flask: 2 searches, median" in done.stdout
    assert not processes_mentioning(str(out))


def test_a_bad_slo_is_refused_before_anything_starts(tmp_path: Path):
    done = run_cli("capacity", "--stack", "bjoern", "--slo", "p99", "--out", str(tmp_path / "x"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: --slo 'p99': not a latency objective")
    assert not (tmp_path / "x").exists()


def test_resuming_a_plain_run_as_capacity_is_refused(tmp_path: Path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "results.json").write_text(
        json.dumps({"schema_version": 1, "status": "interrupted", "plan": {}})
    )
    done = run_cli("capacity", "--resume", str(out))
    assert done.returncode != 0
    assert done.stderr.startswith("error: ")


def test_a_run_with_capacity_searches_after_the_matrix_from_its_peak(tmp_path: Path):
    out = tmp_path / "results"
    # the SLO from the project file, the budget from the flag; each recorded with its source
    (tmp_path / "serverbench.toml").write_text("slo = { p99_ms = 50, error_rate_pct = 5 }\n")
    done = run_cli(
        "run", "--profile", "smoke", "--repeats", "1", "--stack", "bjoern", "--no-references",
        "--capacity", "--max-errors", "0.1%", "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads((out / "results.json").read_text())
    assert document["status"] == "complete"
    sources = document["capacity"]["plan"]["sources"]
    assert sources == {
        "slo": f"{tmp_path.resolve()}/serverbench.toml slo",
        "max_errors": "--max-errors",
    }
    assert document["capacity"]["plan"]["max_error_rate"] == 0.001
    (search,) = document["capacity"]["searches"]
    peak = document["runs"][0]["measurement"]["requests_per_sec"]
    assert search["peak_rps"] == pytest.approx(peak)
    assert search["steps"][0]["rate_rps"] == pytest.approx(0.5 * peak, abs=0.1)
    assert search["settings"]["confirmations"] == 1
    assert search["outcome"] is not None
    assert "capacity at p99 <= 50 ms" in done.stdout
    report = (out / "report.md").read_text()
    assert "## Capacity at SLO" in report
    assert (
        f"Capacity searched at p99 <= 50 ms ({tmp_path.resolve()}/serverbench.toml slo)" in report
    )
    assert not processes_mentioning(str(out))


def test_open_loop_rates_as_shares_of_each_stacks_peak_measured_first(tmp_path: Path):
    out = tmp_path / "results"
    done = run_cli(
        "run", "--engine", "open", "--rate", "50%", "--profile", "smoke", "--repeats", "1",
        "--stack", "bjoern", "--no-references", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [(r["profile"], r["status"]) for r in runs] == [("smoke", "ok"), ("smoke@50%", "ok")]
    peak = runs[0]["measurement"]
    assert peak["loop"] == "closed"
    half = runs[1]["measurement"]
    assert half["loop"] == "open"
    assert half["offered_rate_per_s"] == pytest.approx(0.5 * peak["requests_per_sec"], abs=0.1)
    assert not processes_mentioning(str(out))


def test_a_bad_rate_is_refused_with_both_forms_named(tmp_path: Path):
    done = run_cli("run", "--engine", "open", "--rate", "lots", "--out", str(tmp_path / "x"))
    assert done.returncode == 2
    assert "2.5k" in done.stderr
    assert "50%" in done.stderr
