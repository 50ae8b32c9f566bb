"""The Markdown report, rendered from checked-in results files.

Golden test: `two-profiles-failed.json` (a real 2-profile run of gunicorn, uvicorn and bjoern
with seed-flask and seed-fastapi, where gunicorn's tiny-high repeats were edited into start
failures) must render exactly to `two-profiles-failed.report.md`. After an intended change to
the report, regenerate it and review the diff:

    .venv/bin/serverbench report tests/data/results/two-profiles-failed.json --format md \
        --out tests/data/results/two-profiles-failed.report.md
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from serverbench.cli import main
from serverbench.observe.noise import CpuSetNoise, Disturbance, NoiseWindow
from serverbench.report import write_reports
from serverbench.report.analysis import analyse_stack
from serverbench.report.checks import warnings
from serverbench.report.facts import all_facts
from serverbench.report.markdown import render_markdown
from serverbench.report.numbers import format_rate, format_us
from serverbench.report.wrk_text import wrk_binary, wrk_metric, wrk_text, wrk_time_s, wrk_time_us
from serverbench.results.aggregate import Cell, cells
from serverbench.results.model import (
    Event,
    NotApplicable,
    PrimerRecord,
    ProcessExit,
    ResultsDocument,
    RunRecord,
)
from serverbench.results.store import load as load_results
from serverbench.results.store import save

DATA = Path(__file__).parent / "data" / "results"
GOLDEN_INPUT = DATA / "two-profiles-failed.json"
GOLDEN_OUTPUT = DATA / "two-profiles-failed.report.md"
SECTIONS = (
    "## Introduction",
    "## Test setup",
    "## Results",
    "## Analysis",
    "## Further optimizations",
    "## Conclusion",
    "## Methodology and warnings",
)


def load(name: str) -> ResultsDocument:
    """Through the results store, as `serverbench report` reads it: old schemas migrate."""
    return load_results(DATA / name)


@pytest.fixture
def two() -> ResultsDocument:
    return load("two-profiles-failed.json")


@pytest.fixture
def smoke() -> ResultsDocument:
    return load("smoke-3stacks.json")


def cell_of(document: ResultsDocument, stack: str, app: str, profile: str) -> Cell:
    return next(c for c in cells(document) if c.key == (stack, app, profile))


def median(cell: Cell) -> float:
    assert cell.requests_per_sec is not None
    return cell.requests_per_sec.median


def edit_runs(
    document: ResultsDocument,
    which: Callable[[RunRecord], bool],
    change: Callable[[RunRecord], RunRecord],
) -> None:
    """Replace the runs `which` selects by `change(run)`, in place."""
    document.runs = [change(run) if which(run) else run for run in document.runs]


def test_golden_markdown(two: ResultsDocument) -> None:
    assert render_markdown(two) == GOLDEN_OUTPUT.read_text()


@pytest.mark.parametrize("name", ["two-profiles-failed.json", "smoke-3stacks.json"])
def test_every_section_in_the_seed_order(name: str) -> None:
    text = render_markdown(load(name))
    positions = [text.index(section + "\n") for section in SECTIONS]
    assert positions == sorted(positions)
    assert text.startswith("# Performance Comparison Report: gunicorn (WSGI)")


def test_failed_stack_shows_as_failed_not_zero(two: ResultsDocument) -> None:
    text = render_markdown(two)
    row = next(
        line
        for line in text.splitlines()
        if line.startswith("| gunicorn | seed-flask | tiny-high |")
    )
    assert "FAILED" in row
    assert "gunicorn did not listen" in row
    assert "| 0 |" not in row
    assert " 0.0 % " not in row
    # its results block gives the reason instead of a wrk block
    block = text.split("#### seed-flask · tiny-high", 1)[1].split("####", 1)[0]
    assert "**FAILED: start: gunicorn did not listen" in block
    # skipped (interface mismatch) cells say so, with the reason
    assert "| bjoern | seed-fastapi | tiny-high | SKIPPED |" in text
    assert "serves WSGI apps only" in text


def test_summary_table_sorted_by_throughput(two: ResultsDocument) -> None:
    text = render_markdown(two)
    summary = text.split("### Summary", 1)[1].split("\n## ", 1)[0]
    rates = []
    for line in summary.splitlines()[3:]:
        first = line.split("|")[4].strip().split(" ")[0]
        if first[0].isdigit():
            rates.append(float(first.replace(",", "")))
    assert rates == sorted(rates, reverse=True)
    assert len(rates) == 9


def test_wrk_block_is_the_median_repeat_in_wrk_layout(smoke: ResultsDocument) -> None:
    cell = cell_of(smoke, "gunicorn", "seed-flask", "smoke")
    run = cell.median_run
    assert run is not None
    assert run.measurement is not None
    text = wrk_text(run, smoke.plan.profiles[0])
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == f"Running 1s test @ {run.load_argv[-1]}"
    assert lines[1] == "  2 threads and 20 connections"
    assert lines[2] == "  Thread Stats   Avg      Stdev     Max   +/- Stdev"
    assert lines[3].startswith("    Latency     9.55ms    7.09ms  59.20ms   91.01%")
    assert lines[-2] == f"Requests/sec: {run.measurement.raw_requests_per_sec:9.2f}"
    assert lines[-1].startswith("Transfer/sec:")
    assert lines[-1].endswith("KB")
    assert "Socket errors" not in text


def test_wrk_units_match_wrk() -> None:
    assert wrk_time_us(136_660) == "136.66ms"
    assert wrk_time_us(1_780_000) == "1.78s"
    assert wrk_time_us(797.27) == "797.27us"
    assert wrk_time_s(60) == "1m"
    assert wrk_time_s(120) == "2m"
    assert wrk_time_s(7) == "7s"
    assert wrk_metric(1600) == "1.60k"
    assert wrk_metric(609.6) == "609.60"
    assert wrk_binary(76.3 * 2**20) == "76.30M"
    assert wrk_binary(431.7 * 1024) == "431.70K"


def test_compact_line_has_median_interval_percentiles_and_errors(two: ResultsDocument) -> None:
    cell = cell_of(two, "bjoern", "seed-flask", "tiny-high")
    s = cell.requests_per_sec
    assert s is not None
    p = cell.latency_percentiles_us
    half_width = (s.maximum - s.median) / s.median * 100
    line = (
        f"**{format_rate(s.median)} req/s** ±{half_width:.1f} % (50 % CI, 2 repeats)"
        f" (good responses, median of the repeats) · closed-loop p50 "
        f"{format_us(p['50'])} · p90 {format_us(p['90'])} · p99 {format_us(p['99'])} · "
        f"p99.9 {format_us(p['99.9'])}"
    )
    assert line in render_markdown(two)


def test_analysis_sentences_cite_the_data(two: ResultsDocument) -> None:
    facts = all_facts(two)
    bjoern = analyse_stack(two, facts, "bjoern")
    best = median(cell_of(two, "bjoern", "seed-flask", "tiny-high"))
    runner_up = median(cell_of(two, "uvicorn", "seed-flask", "tiny-high"))
    expected = (
        f"Highest throughput for seed-flask, tiny-high (400 connections): {format_rate(best)} "
        f"req/s, {best / runner_up:.2f}x uvicorn ({format_rate(runner_up)})."
    )
    assert expected in bjoern.strengths
    ceiling = median(cell_of(two, "nginx-static", "seed-flask", "tiny-high"))
    share = (
        f"{best / ceiling * 100:.1f} % of the nginx-static ceiling ({format_rate(ceiling)} req/s)"
    )
    assert any(share in reason for reason in bjoern.reasons)
    rate = two.references.app_cost["seed-flask"].calls_per_sec
    assert any(
        f"{best / rate * 100:.1f} % of the app's in-process limit" in r for r in bjoern.reasons
    )
    # scaling from the lighter to the heavier profile, with both throughputs
    uvicorn = analyse_stack(two, facts, "uvicorn")
    light = median(cell_of(two, "uvicorn", "seed-fastapi", "tiny-moderate"))
    heavy = median(cell_of(two, "uvicorn", "seed-fastapi", "tiny-high"))
    change = f"throughput changes by {(heavy / light - 1) * 100:+.1f} %"
    scaling = [s for s in (*uvicorn.strengths, *uvicorn.weaknesses) if "seed-fastapi: from" in s]
    assert len(scaling) == 1
    assert change in scaling[0]
    assert format_rate(light) in scaling[0]
    # the model is quoted, and resources name every component
    assert uvicorn.reasons[0].startswith("Model: event loop")
    assert any("RSS peak uvicorn" in r and "wrk used" in r for r in uvicorn.resources)


def test_fastapi_vs_flask_is_compared_in_further_optimizations(two: ResultsDocument) -> None:
    text = render_markdown(two)
    section = text.split("## Further optimizations", 1)[1].split("\n## ", 1)[0]
    flask = median(cell_of(two, "uvicorn", "seed-flask", "tiny-high"))
    fastapi = median(cell_of(two, "uvicorn", "seed-fastapi", "tiny-high"))
    assert (
        f"seed-fastapi vs seed-flask on uvicorn (tiny-high): {format_rate(fastapi)} vs "
        f"{format_rate(flask)} req/s (medians), faster by " in section
    )
    assert "serverbench run --stack gunicorn,nginx-gunicorn,bjoern,nginx-bjoern" in section
    assert "serverbench run --stack uvicorn --app seed-flask --app seed-fastapi" not in section


def test_variants_are_read_from_the_records_not_the_names(two: ResultsDocument) -> None:
    """An app's twin is the app of the same workload; a topology names its bare stack."""
    two.apps["seed-fastapi"] = replace(two.apps["seed-fastapi"], workload="another")
    section = render_markdown(two).split("## Further optimizations", 1)[1].split("\n## ", 1)[0]
    # no longer twins: seed-fastapi is then a candidate against the run's first app
    assert f"seed-fastapi vs {two.plan.apps[0]}" in section or two.plan.apps[0] == "seed-fastapi"
    two.apps["seed-fastapi"] = replace(two.apps["seed-fastapi"], workload="seed")
    two.stacks["uvicorn"] = replace(two.stacks["uvicorn"], variant_of="bjoern")
    section = render_markdown(two).split("## Further optimizations", 1)[1].split("\n## ", 1)[0]
    bjoern = median(cell_of(two, "bjoern", "seed-flask", "tiny-high"))
    assert f"uvicorn vs bjoern (seed-flask, tiny-high): 2,477 vs {format_rate(bjoern)}" in section


def test_smoke_run_suggests_the_seed_optimizations(smoke: ResultsDocument) -> None:
    section = render_markdown(smoke).split("## Further optimizations", 1)[1]
    assert "`serverbench run --stack uvicorn --app seed-flask --app seed-fastapi`" in section


def test_conclusion_ranks_clean_stacks_by_heaviest_profile(two: ResultsDocument) -> None:
    conclusion = render_markdown(two).split("## Conclusion", 1)[1].split("\n## ", 1)[0]
    assert "heaviest profile measured, **tiny-high**" in conclusion
    assert conclusion.index("1. **bjoern**") < conclusion.index("2. **uvicorn**")


def with_timeouts(run: RunRecord) -> RunRecord:
    """The run with 30 % of its responses past the timeout."""
    m = run.measurement
    assert m is not None
    timeouts = int(m.requests * 0.3)
    good = m.requests - timeouts
    return replace(
        run,
        measurement=replace(
            m,
            errors=replace(m.errors, timeout=timeouts),
            good_responses=good,
            requests_per_sec=good / m.duration_s,
        ),
    )


def test_sanity_warnings_are_raised_with_their_numbers(two: ResultsDocument) -> None:
    document = two
    edit_runs(document, lambda r: r.id.endswith("/uvicorn/seed-flask/tiny-high"), with_timeouts)
    document.cpu_split = replace(document.cpu_split, shared=True)
    document.host_warnings = ["net.core.somaxconn is 128, below 8000 connections"]
    document.events = [
        Event(
            at="2026-01-01T00:00:00+00:00",
            kind="time_wait_pause",
            time_wait_before=25000,
            time_wait_after=900,
            waited_s=12.5,
        )
    ]
    found = {(w.kind, w.subject): w.text for w in warnings(document)}
    cell = cell_of(document, "uvicorn", "seed-flask", "tiny-high")
    errors = found[("errors", "uvicorn · seed-flask · tiny-high")]
    assert errors.startswith(f"{cell.error_rate * 100:.1f} % of requests failed (timeout ")
    assert ("raw_rps", "uvicorn · seed-flask · tiny-high") in found
    assert ("shared_cpus", "") in found
    assert found[("host", "")] == "net.core.somaxconn is 128, below 8000 connections"
    assert "paused 12.5 s" in found[("time_wait", "")]
    assert "25,000" in found[("time_wait", "")]
    assert found[("failed", "gunicorn · seed-flask · tiny-high")].startswith(
        "2 of 2 repeats failed (start: gunicorn did not listen"
    )
    text = render_markdown(document)
    assert "**uvicorn · seed-flask · tiny-high** (errors)" in text
    # the stack with > 1 % errors ranks after the clean ones
    conclusion = text.split("## Conclusion", 1)[1].split("\n## ", 1)[0]
    assert "— ranked last:" in conclusion


def half_the_mean_latency(run: RunRecord) -> RunRecord:
    m = run.measurement
    assert m is not None
    assert m.latency_mean_us is not None
    return replace(run, measurement=replace(m, latency_mean_us=m.latency_mean_us / 2))


def test_littles_law_is_silent_where_reconnects_or_synthetic_samples_explain_the_gap(
    two: ResultsDocument,
) -> None:
    edit_runs(
        two, lambda r: r.stack == "gunicorn" and r.status == "ok", half_the_mean_latency
    )  # half the connections seem busy
    found = warnings(two, all_facts(two))
    # gunicorn closes every connection (wrk reconnects); the others' means hold synthetic samples
    assert [w for w in found if w.kind == "littles_law"] == []


def test_littles_law_fires_on_an_unexplained_gap(two: ResultsDocument) -> None:
    def quarter_and_no_synthetic_samples(run: RunRecord) -> RunRecord:
        m, wrk = run.measurement, run.wrk
        assert m is not None
        assert wrk is not None
        assert m.latency_mean_us is not None
        return replace(
            run,
            measurement=replace(m, latency_mean_us=m.latency_mean_us / 4),
            wrk=replace(wrk, latency_samples=m.requests),
        )

    edit_runs(
        two, lambda r: r.stack == "bjoern" and r.status == "ok", quarter_and_no_synthetic_samples
    )
    little = [w for w in warnings(two) if w.kind == "littles_law"]
    assert {w.subject for w in little} == {
        "bjoern · seed-flask · tiny-moderate",
        "bjoern · seed-flask · tiny-high",
    }
    assert "requests counted per second" in little[0].text


def test_the_40_ms_check_reads_the_primer_not_a_p50_under_load(smoke: ResultsDocument) -> None:
    assert [w for w in warnings(smoke) if w.kind == "latency_floor"] == []

    def nagle_primer(run: RunRecord) -> RunRecord:
        return replace(
            run,
            primer=PrimerRecord(
                connections=8, requests=200, requests_per_sec=190.0, latency_p50_us=40_100.0
            ),
        )

    edit_runs(smoke, lambda r: r.stack == "bjoern", nagle_primer)
    floor = [w for w in warnings(smoke) if w.kind == "latency_floor"]
    assert [w.subject for w in floor] == ["bjoern · seed-flask · smoke"]
    assert "with 8 connections (the primer) the p50 was 40.1 ms" in floor[0].text


def test_a_disturbed_window_is_named_with_its_numbers(smoke: ResultsDocument) -> None:
    assert [w for w in warnings(smoke) if w.kind == "noise"] == []
    text = "processes outside the benchmark used 31.0 % of the server CPUs (0) (1.55 s): backup"
    quiet = CpuSetNoise(
        cpus=(0,), capacity_s=5.0, busy_s=5.0, steal_s=0.0, iowait_s=0.0, foreign_cpu_s=1.55,
        foreign=(), kernel_cpu_s=0.0,
    )  # fmt: skip
    window = NoiseWindow(
        window_s=5.0,
        server=quiet,
        client=quiet,
        disturbances=(Disturbance(kind="foreign_cpu", side="server", text=text),),
    )
    edit_runs(
        smoke, lambda r: r.stack == "uvicorn" and r.round == 1, lambda r: replace(r, noise=window)
    )
    noise = [w for w in warnings(smoke) if w.kind == "noise"]
    assert [w.text for w in noise] == [f"round 1: {text}"]


def test_littles_law_is_a_closed_loop_rule(two: ResultsDocument) -> None:
    def open_loop(run: RunRecord) -> RunRecord:
        assert run.measurement is not None
        return replace(
            half_the_mean_latency(run), measurement=replace(run.measurement, loop="open")
        )

    edit_runs(two, lambda r: r.stack == "gunicorn" and r.status == "ok", open_loop)
    found = warnings(two)
    assert not [w for w in found if w.kind == "littles_law" and w.subject.startswith("gunicorn")]
    # an open-loop run has no wrk block, but the same summary line
    text = render_markdown(two)
    block = text.split("### gunicorn (WSGI)", 1)[1].split("\n### ", 1)[0]
    assert "Running 1s test" not in block
    assert "Thread Stats" not in block
    assert "(good responses, median of the repeats) · open-loop p50" in block


def test_latency_floor_without_percentiles(smoke: ResultsDocument) -> None:
    facts = all_facts(smoke)
    floor = [w for w in warnings(smoke, facts) if w.kind == "latency_floor"]
    assert floor == []  # the smoke run's p50s are a few ms

    def no_histogram(run: RunRecord) -> RunRecord:
        assert run.measurement is not None
        return replace(run, measurement=replace(run.measurement, latency_histogram_hdr=None))

    edit_runs(smoke, lambda r: r.stack == "bjoern", no_histogram)
    # without histograms no percentiles: nothing to flag, and nothing crashes
    assert not [w for w in warnings(smoke) if w.kind == "latency_floor"]


def test_write_reports_and_cli(tmp_path: Path, smoke: ResultsDocument) -> None:
    written = write_reports(smoke, tmp_path)
    assert [p.name for p in written] == ["report.md", "report.html"]
    results = tmp_path / "run" / "results.json"
    save(smoke, results)
    assert main(["report", str(results.parent)]) == 0
    assert (results.parent / "report.md").read_text() == render_markdown(smoke)
    assert (results.parent / "report.html").exists()
    assert main(["report", str(results), "--format", "md", "--out", str(tmp_path / "x.md")]) == 0
    assert (tmp_path / "x.md").read_text().startswith("# Performance Comparison Report")
    assert main(["report", str(tmp_path / "missing.json")]) == 1


def test_server_processes_exiting_during_a_measurement_are_reported(
    smoke: ResultsDocument,
) -> None:
    gunicorn = next(r for r in smoke.runs if r.stack == "gunicorn")
    edit_runs(
        smoke,
        lambda r: r is gunicorn,
        lambda r: replace(
            r, process_exits=(ProcessExit(pid=4242, process="gunicorn"),), process_restarts=1
        ),
    )
    text = render_markdown(smoke)
    assert "(process_exits): round 1: server processes exited during the measurement: " in text
    assert "gunicorn (pid 4242); 1 new ones started" in text


def test_pairs_that_cannot_run_are_listed_once(smoke: ResultsDocument) -> None:
    smoke.not_applicable = [
        NotApplicable(stack="gunicorn", app="seed-fastapi", reason="gunicorn serves WSGI apps only")
    ]
    text = render_markdown(smoke)
    assert text.count("gunicorn serves WSGI apps only") == 1
    assert "Not run, as the server cannot serve the app" in text


def test_a_slow_recovery_after_the_load_is_reported(smoke: ResultsDocument) -> None:
    gunicorn = next(r for r in smoke.runs if r.stack == "gunicorn")
    edit_runs(smoke, lambda r: r is gunicorn, lambda r: replace(r, recovery_s=17.25))
    text = render_markdown(smoke)
    assert "(slow_recovery): round 1: after the load the server took 17.2 s to answer" in text


def test_listen_queue_overflows_are_reported_with_the_backlog(smoke: ResultsDocument) -> None:
    kernel = {"listen_overflows": 1234, "listen_drops": 1234, "syncookies_sent": 0}
    edit_runs(
        smoke,
        lambda r: r.stack == "gunicorn",
        lambda r: replace(r, kernel=kernel, leftover_connections_reset=6512),
    )
    text = render_markdown(smoke)
    assert (
        "(listen_overflows): the kernel dropped 1,234 connections because the listen queue" in text
    )
    assert "backlog 2048" in text
    assert "6,512 of the load's connections were still closing when it ended" in text


def test_the_first_two_of_a_ranking_are_tied_unless_paired_rounds_tell_them_apart(
    two: ResultsDocument,
) -> None:
    assert "treat them as tied." not in render_markdown(two).split("## Conclusion", 1)[1]
    bjoern = {
        r.round: r.measurement.requests_per_sec
        for r in two.runs
        if (r.stack, r.app, r.profile) == ("bjoern", "seed-flask", "tiny-high") and r.measurement
    }
    first = min(bjoern)

    def straddle(run: RunRecord) -> RunRecord:
        # ahead of bjoern in one round, behind it in the other
        assert run.measurement is not None
        factor = 1.05 if run.round == first else 0.75
        rate = bjoern[run.round] * factor
        return replace(run, measurement=replace(run.measurement, requests_per_sec=rate))

    edit_runs(
        two,
        lambda r: (
            (r.stack, r.app, r.profile) == ("uvicorn", "seed-flask", "tiny-high")
            and r.status == "ok"
        ),
        straddle,
    )
    conclusion = render_markdown(two).split("## Conclusion", 1)[1]
    assert "bjoern against uvicorn: no significant difference (" in conclusion
    assert "treat them as tied." in conclusion


def test_two_different_builtin_workloads_are_no_baseline_and_candidate(
    two: ResultsDocument,
) -> None:
    two.apps["seed-flask"] = replace(two.apps["seed-flask"], workload="io-wait")
    two.apps["seed-fastapi"] = replace(two.apps["seed-fastapi"], workload="db")
    section = render_markdown(two).split("## Further optimizations", 1)[1].split("\n## ", 1)[0]
    assert "seed-fastapi vs seed-flask" not in section
