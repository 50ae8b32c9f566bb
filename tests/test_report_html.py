"""The HTML report: self-contained, escaped, and every chart's values are its cells' values.

The charts are drawn by Chart.js from JSON specs in the page. The fast tests read the specs
back; the Chromium test loads the page from disk in a real headless browser (Debian package
`chromium`, installed by `scripts/setup --with-browser`), with the network off, and reads back
the values Chart.js itself holds for each chart, checks there are no console errors, and takes
a screenshot.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from serverbench.plan.slo import parse_slo
from serverbench.report.html import render_html
from serverbench.results.aggregate import cells
from serverbench.results.model import ResultsDocument
from serverbench.results.store import load as load_results
from serverbench.run.capacity import capacity_section, short_capacity_plan
from tests.test_capacity_report import records

DATA = Path(__file__).parent / "data" / "results"


def load(name: str) -> ResultsDocument:
    return load_results(DATA / name)


def specs(page: str) -> dict[str, dict[str, Any]]:
    """Chart specs by canvas id, as the page carries them."""
    found = re.findall(
        r'<script type="application/json" class="chart-spec" data-canvas="([^"]+)">(.*?)</script>',
        page,
        re.S,
    )
    return {canvas: json.loads(text) for canvas, text in found}


def with_capacity(document: ResultsDocument) -> ResultsDocument:
    """The document with three capacity searches (a model server's) recorded in it."""
    document.capacity = capacity_section(short_capacity_plan(parse_slo("p99=50ms"), 0.001))
    document.capacity.searches.extend(records())
    return document


@pytest.fixture(params=["two-profiles-failed.json", "smoke-3stacks.json"])
def document(request: pytest.FixtureRequest) -> ResultsDocument:
    return load(request.param)


def test_every_chart_has_its_canvas_and_spec(document: ResultsDocument) -> None:
    page = render_html(document)
    found = specs(page)
    kinds = [spec["kind"] for spec in found.values()]
    assert kinds.count("throughput") == 1
    assert kinds.count("errors") == 1
    assert kinds.count("latency") == len({c.profile for c in cells(document) if c.ok_runs})
    for canvas in found:
        assert f'<canvas id="{canvas}"' in page


def test_throughput_values_are_the_cells_medians(document: ResultsDocument) -> None:
    by_key = {c.key: c for c in cells(document)}
    (spec,) = [s for s in specs(render_html(document)).values() if s["kind"] == "throughput"]
    profiles = [c.removeprefix("profile ") for c in spec["categories"]]
    for series in spec["series"]:
        stack, app = series["key"].split("|")
        for profile, value in zip(profiles, series["values"], strict=True):
            cell = by_key.get((stack, app, profile))
            if cell is None or cell.requests_per_sec is None:
                assert value is None  # a gap, never a zero bar
            else:
                assert value == cell.requests_per_sec.median


def test_ceiling_starts_hidden() -> None:
    (spec,) = [
        s
        for s in specs(render_html(load("two-profiles-failed.json"))).values()
        if s["kind"] == "throughput"
    ]
    hidden = {s["key"] for s in spec["series"] if s["hidden"]}
    assert hidden == {"nginx-static|seed-flask"}


def test_text_is_escaped_and_page_is_self_contained() -> None:
    document = load("smoke-3stacks.json")
    evil = "bad<script>alert(1)</script>&"
    document.runs = [replace(r, stack=evil) if r.stack == "uvicorn" else r for r in document.runs]
    document.host_warnings = ['<img src=x onerror="alert(2)">']
    page = render_html(document)
    assert "<script>alert(1)" not in page
    assert "<img" not in page
    assert "bad&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in page
    # the library, the glue and one inert JSON spec per chart: nothing else runs
    assert page.count("<script>") == 2
    assert "<link" not in page
    assert not re.search(r"""\b(src|href)=["']?(https?:)?//""", page)
    labels = [s["label"] for spec in specs(page).values() for s in spec["series"]]
    assert f"{evil} · seed-flask" in labels  # the JSON carries the text, the page escapes it


def test_capacity_chart_is_a_chart_spec_like_the_others() -> None:
    page = render_html(with_capacity(load("smoke-3stacks.json")))
    (spec,) = [s for s in specs(page).values() if s["kind"] == "latency-vs-load"]
    assert spec["type"] == "line"
    assert spec["y"]["log"]
    assert [s["key"] for s in spec["series"]] == [
        "uvicorn|seed-flask",
        "bjoern|seed-flask",
        "gunicorn|seed-flask",
        "slo",
    ]
    assert "<svg" not in page
    assert 'id="chart-latency-vs-load"' in page
    assert page.count("<script>") == 2  # still only the library and the glue


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(args: list[str], profile_dir: Path) -> tuple[str, str]:
    assert CHROMIUM is not None
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile_dir}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=60)
    finally:
        # chromium leaves helper processes behind; its own session holds them all
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return out, err


@pytest.mark.integration
@pytest.mark.timeout(90)
@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/setup --with-browser)"
)
def test_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    document = with_capacity(load("two-profiles-failed.json"))
    page_text = render_html(document)
    page = tmp_path / "report.html"
    page.write_text(page_text)
    offline = ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
    dom, err = run_chromium([*offline, "--dump-dom", page.as_uri()], tmp_path / "profile")
    expected = specs(page_text)
    assert f'data-rendered="{len(expected)}"' in dom  # every chart drawn, with a plot area
    assert "Uncaught" not in err
    assert "CONSOLE" not in err
    # the values Chart.js holds, read back from each canvas, are the specs' values
    drawn = {
        canvas: json.loads(html.unescape(values))
        for canvas, values in re.findall(r'<canvas id="([^"]+)"[^>]*data-values="([^"]*)"', dom)
    }
    assert set(drawn) == set(expected)
    for canvas, spec in expected.items():
        for series, held in zip(spec["series"], drawn[canvas], strict=True):
            assert held["key"] == series["key"]
            assert held["visible"] == (not series["hidden"])
            if spec["type"] == "line":
                assert [[p["x"], p["y"]] for p in held["data"]] == series["points"]
            else:
                assert held["data"] == series["values"]
    by_key = {f"{c.stack}|{c.app}": c for c in cells(document) if c.profile == "tiny-high"}
    (throughput,) = [c for c, s in expected.items() if s["kind"] == "throughput"]
    bjoern = next(d for d in drawn[throughput] if d["key"] == "bjoern|seed-flask")
    rps = by_key["bjoern|seed-flask"].requests_per_sec
    assert rps is not None
    assert bjoern["data"][1] == rps.median
    shot = tmp_path / "report.png"
    _, err = run_chromium(
        [*offline, "--screenshot=" + str(shot), "--window-size=1280,2000", page.as_uri()],
        tmp_path / "profile",
    )
    assert "Uncaught" not in err
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 50_000  # a blank page is a few kB
