import math
from collections.abc import Callable

import pytest

from serverbench.plan.capacity import CapacityRecord, Observation, Probe, Search
from serverbench.plan.slo import parse_slo
from serverbench.report.capacity import (
    capacity_section,
    loop_methodology,
    ranked,
    ranking_table,
    steps_table,
)
from serverbench.report.content import Bullets, Chart, Heading, Paragraph, Table
from tests.test_capacity_search import ModelServer, StallsOnce, settings


def record(
    stack: str, model: Callable[[Probe], Observation], peak: float | None = None, **changes
) -> CapacityRecord:
    search = Search(settings(**changes))
    outcome = search.run(model)
    return CapacityRecord(
        stack=stack,
        app="seed-flask",
        peak_rps=peak,
        settings=search.settings,
        steps=tuple(search.steps),
        outcome=outcome,
    )


def records() -> list[CapacityRecord]:
    return [
        record("gunicorn", ModelServer(mu=1000.0), peak=1050.0),
        record("bjoern", ModelServer(mu=4000.0), peak=4100.0),
        record("uvicorn", ModelServer(mu=30_000.0, generator_max_rps=6000.0), peak=9000.0),
    ]


def test_ranking_puts_the_highest_capacity_first_and_marks_lower_bounds():
    table = ranking_table(records())
    assert [row[1] for row in table.rows] == ["uvicorn", "bjoern", "gunicorn"]
    uvicorn, bjoern, gunicorn = table.rows
    assert uvicorn[3].startswith("≥ ")
    assert uvicorn[7] == "the load generator"
    assert bjoern[7] == "the server's CPU"
    assert not bjoern[3].startswith("≥")
    assert gunicorn[4].endswith("%")  # share of the closed-loop peak
    assert table.headers[5] == "p99 at capacity"


def test_an_unfinished_or_empty_search_ranks_last():
    done = records()[0]
    unfinished = CapacityRecord(
        stack="waitress",
        app="seed-flask",
        peak_rps=None,
        settings=done.settings,
        steps=done.steps[:2],
        outcome=None,
    )
    assert [r.stack for r in ranked([unfinished, done])] == ["gunicorn", "waitress"]
    table = ranking_table([unfinished, done])
    assert table.rows[1][3] == "unfinished"


def test_the_section_states_the_slo_the_budget_and_the_spread_and_lists_every_step():
    blocks = capacity_section(records())
    assert blocks[0] == Heading(level=2, text="Capacity at SLO")
    text = " ".join(b.text for b in blocks if isinstance(b, Paragraph))
    assert "p99 <= 50 ms" in text
    assert "0.1 %" in text
    assert "±10 %" in text
    (chart,) = [b for b in blocks if isinstance(b, Chart)]
    assert chart.kind == "latency-vs-load"
    assert chart.searches == tuple(ranked(records()))  # the lines in the ranking's order
    step_tables = [b for b in blocks if isinstance(b, Table) and b.headers[0] == "step"]
    assert [len(t.rows) for t in step_tables] == [len(r.steps) for r in ranked(records())]


def test_a_generator_limited_figure_says_it_is_a_lower_bound_and_how_to_measure_further():
    blocks = capacity_section(records())
    bullets = next(b for b in blocks if isinstance(b, Bullets))
    (uvicorn,) = [item for item in bullets.items if item.startswith("**uvicorn**")]
    assert "Limited by the load generator" in uvicorn
    assert "lower bound" in uvicorn
    assert "`--client-cpus`" in uvicorn


def test_steps_table_shows_each_verdict():
    table = steps_table(records()[0])
    verdicts = [row[-1] for row in table.rows]
    assert "held" in verdicts
    assert any(v.startswith("broke: latency") for v in verdicts)


def test_nothing_measured_no_section():
    assert capacity_section([]) == []


def test_methodology_explains_both_loops():
    items = loop_methodology(records())
    assert "Closed loop" in items[0]
    assert "Open loop" in items[0]
    assert "Little's law is not a check there" in items[0]
    assert "bisection" in items[1]


def test_compare_names_the_change_and_whether_it_is_beyond_the_spread():
    import dataclasses

    from serverbench.report.capacity_compare import compare_capacity, render_capacity_comparison

    a = records()
    b = [
        record("gunicorn", ModelServer(mu=1500.0), peak=1550.0),  # +50 %
        record("bjoern", ModelServer(mu=4040.0), peak=4100.0),  # within the spread
    ]
    comparison = compare_capacity(a, b)
    by_stack = {d.a.stack: d for d in comparison.deltas}
    assert by_stack["gunicorn"].beyond_spread is True
    assert by_stack["gunicorn"].change_pct is not None
    assert by_stack["gunicorn"].change_pct > 30
    assert by_stack["bjoern"].beyond_spread is False
    assert [r.stack for r in comparison.only_in_a] == ["uvicorn"]
    text = render_capacity_comparison(comparison)
    assert "capacity only in A: uvicorn/seed-flask" in text
    assert "the server's CPU -> the server's CPU" in text
    stricter = [dataclasses.replace(r, settings=settings(slo=parse_slo("p99=20ms"))) for r in b]
    assert "the SLO differs: p99 <= 50 ms -> p99 <= 20 ms" in render_capacity_comparison(
        compare_capacity(a, stricter)
    )


def test_a_lower_bound_cannot_tell_a_change():
    from serverbench.report.capacity_compare import compare_capacity

    a = records()
    delta = next(d for d in compare_capacity(a, a).deltas if d.a.stack == "uvicorn")
    assert delta.change_pct == 0.0
    assert delta.beyond_spread is None


def test_compare_gates_on_lost_capacity():
    from serverbench.report.capacity_compare import compare_capacity

    a = records()
    b = [record("gunicorn", ModelServer(mu=700.0), peak=750.0)]
    comparison = compare_capacity(a, b)
    assert [d.a.stack for d in comparison.lower_than(10.0)] == ["gunicorn"]
    assert comparison.lower_than(50.0) == []


def test_the_compare_command_prints_capacities_and_gates_on_them(tmp_path, capsys):
    import json
    from pathlib import Path

    import msgspec

    from serverbench.cli import main
    from serverbench.run.capacity import capacity_section, short_capacity_plan

    data = Path(__file__).parent / "data" / "results" / "two-profiles-failed.json"

    def write(name: str, found: list[CapacityRecord]) -> Path:
        document = json.loads(data.read_text())
        section = capacity_section(short_capacity_plan(settings().slo, 0.001))
        section.searches.extend(found)
        document["capacity"] = msgspec.to_builtins(section)
        path = tmp_path / name
        path.write_text(json.dumps(document))
        return Path(path)

    before = write("a.json", records())
    after = write("b.json", [record("gunicorn", ModelServer(mu=700.0), peak=750.0)])
    assert main(["compare", str(before), str(after)]) == 0
    out = capsys.readouterr().out
    assert "capacity at SLO (open loop):" in out
    assert "gunicorn/seed-flask" in out
    assert "capacity only in A: bjoern/seed-flask, uvicorn/seed-flask" in out
    assert main(["compare", str(before), str(after), "--fail-if-slower", "10"]) == 1
    assert "gunicorn/seed-flask capacity -" in capsys.readouterr().err


def test_steps_on_a_busy_cpu_make_the_section_say_the_figure_will_not_repeat():
    import dataclasses

    done = records()[0]
    busy = dataclasses.replace(
        done,
        steps=tuple(
            dataclasses.replace(
                s,
                observation=dataclasses.replace(
                    s.observation, server_cpu_utilisation=0.1, server_cpus_foreign=0.9
                ),
            )
            for s in done.steps
        ),
    )
    text = " ".join(b.text for b in capacity_section([busy]) if isinstance(b, Paragraph))
    assert "Not reproducible as measured" in text
    assert f"gunicorn: {len(done.steps)} of {len(done.steps)} steps" in text
    quiet = " ".join(b.text for b in capacity_section([done]) if isinstance(b, Paragraph))
    assert "Not reproducible" not in quiet


def repeated() -> list[CapacityRecord]:
    """gunicorn searched twice (the machine moved between the searches), bjoern twice."""
    import dataclasses

    return [
        record("gunicorn", ModelServer(mu=1000.0), peak=1050.0),
        record("bjoern", ModelServer(mu=4000.0), peak=4100.0),
        dataclasses.replace(record("gunicorn", ModelServer(mu=1200.0), peak=1050.0), repeat=2),
        dataclasses.replace(record("bjoern", ModelServer(mu=4040.0), peak=4100.0), repeat=2),
    ]


def test_several_searches_of_a_stack_give_a_median_and_a_spread():
    from serverbench.plan.capacity import capacity_figures

    gunicorn, bjoern = capacity_figures(repeated())
    assert (gunicorn.stack, [r.repeat for r in gunicorn.records]) == ("gunicorn", [1, 2])
    low, high = gunicorn.capacities
    assert high > low
    assert gunicorn.capacity_rps == pytest.approx((low + high) / 2)
    assert gunicorn.spread_pct == pytest.approx((high - low) / ((low + high) / 2) * 100)
    assert bjoern.spread_pct is not None
    assert gunicorn.spread_pct is not None
    assert bjoern.spread_pct < gunicorn.spread_pct
    (single,) = capacity_figures(records()[:1])
    assert single.spread_pct is None


def test_the_section_names_each_search_and_states_the_measured_spread():
    blocks = capacity_section(repeated())
    text = " ".join(b.text for b in blocks if isinstance(b, Paragraph))
    assert "**Run-to-run spread.**" in text
    assert "(gunicorn)" in text  # the widest spread is named
    spread_table = next(b for b in blocks if isinstance(b, Table) and b.headers[2] == "searches")
    assert [row[0] for row in spread_table.rows] == ["gunicorn", "bjoern"]
    names = [row[1] for row in ranking_table(repeated()).rows]
    assert "gunicorn (search 2)" in names
    assert "bjoern (search 1)" in names
    # one search per stack: plain names, no spread claimed
    assert "Run-to-run spread" not in " ".join(
        b.text for b in capacity_section(records()) if isinstance(b, Paragraph)
    )


def test_compare_takes_the_median_and_the_searches_spread_as_the_noise():
    from serverbench.report.capacity_compare import compare_capacity, render_capacity_comparison

    a = repeated()
    (gunicorn_a,) = [f for f in compare_capacity(a, a).deltas if f.a.stack == "gunicorn"]
    spread = gunicorn_a.a.spread_pct
    assert spread is not None
    # the searches' spread (above the resolution here) with the separate runs' 5 % drift:
    # ±14.5 % at 95 %, in quadrature
    assert spread > 10
    assert gunicorn_a.noise_pct == pytest.approx(math.hypot(spread, 14.5), abs=0.1)
    (same_run,) = [f for f in compare_capacity(a, a, drift_pct=0).deltas if f.a.stack == "gunicorn"]
    assert same_run.noise_pct == pytest.approx(spread)
    # one search in B, a little above A's median: within A's spread, so no evidence
    b = [record("gunicorn", ModelServer(mu=1150.0), peak=1050.0)]
    (delta,) = compare_capacity(a, b).deltas
    assert delta.change_pct is not None
    assert 0 < delta.change_pct < spread
    assert delta.beyond_spread is False
    text = render_capacity_comparison(compare_capacity(a, b))
    assert "2 searches)" in text
    assert f"no (±{math.hypot(spread, 14.5):.0f} %)" in text
    assert "combined with 5 % drift of a run's level between separate runs" in text


def test_a_pooled_capacity_states_its_requests_together_and_their_percentile():
    pooled_record = record("bjoern", StallsOnce(1562.5, stall_on=2, stalled_share=0.02), 2000.0)
    blocks = capacity_section([pooled_record])
    text = " ".join(b.text for b in blocks if isinstance(b, Paragraph))
    assert "over all the requests of its measurements at that rate together" in text
    bullets = " ".join(next(b for b in blocks if isinstance(b, Bullets)).items)
    assert "over all the requests of its 3 measurements at that rate together" in bullets
    # the ranking shows the pooled p99 (5 ms), not the paused window's 400 ms
    assert ranking_table([pooled_record]).rows[0][5] == "5.00 ms"
    # a search without histograms (every measurement passed on its own) says so
    plain = " ".join(b.text for b in capacity_section(records()) if isinstance(b, Paragraph))
    assert "held in every measurement at that rate" in plain


def test_the_steps_table_gives_the_confirmed_rate_its_verdict_over_all_its_requests():
    table = steps_table(record("bjoern", StallsOnce(1562.5, stall_on=2, stalled_share=0.02)))
    verdicts = [row[-1] for row in table.rows]
    assert verdicts[-2] == "broke: latency"  # the window the pause spoiled
    assert verdicts[-1] == "held; the rate over its measurements together: held"
