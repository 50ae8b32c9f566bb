"""The HTML report: self-contained, escaped, and every chart label bound to its own value.

The Chromium test loads the page from disk in a real headless browser (Debian package
`chromium`, installed by `scripts/setup --with-browser`) and checks the rendered DOM, the
absence of console errors and the screenshot.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from serverbench.report.html import LABEL_W, PLOT_W, bar_label, render_html
from serverbench.report.numbers import format_rate
from serverbench.results.aggregate import cells
from serverbench.results.model import ResultsDocument, RunRecord
from serverbench.results.store import load as load_results

DATA = Path(__file__).parent / "data" / "results"
SVG = "{http://www.w3.org/2000/svg}"


def load(name: str) -> ResultsDocument:
    return load_results(DATA / name)


def charts(page: str, kind: str) -> list[ET.Element]:
    found = re.findall(rf'<svg class="chart" data-chart="{kind}".*?</svg>', page, re.S)
    return [ET.fromstring(svg) for svg in found]


@pytest.fixture(params=["two-profiles-failed.json", "smoke-3stacks.json"])
def document(request: pytest.FixtureRequest) -> ResultsDocument:
    return load(request.param)


def test_throughput_bars_carry_their_own_cells_value(document: ResultsDocument) -> None:
    by_key = {f"{c.stack}|{c.app}|{c.profile}": c for c in cells(document)}
    (svg,) = charts(render_html(document), "throughput")
    bars = svg.findall(f"{SVG}g")
    assert {b.get("data-key") for b in bars} == set(by_key)
    for bar in bars:
        cell = by_key[bar.get("data-key") or ""]
        label = bar.find(f"{SVG}text[@class='label']")
        assert label is not None
        assert label.text == bar_label(cell)
        if cell.requests_per_sec is None:
            status = bar.find(f"{SVG}text[@class='status']")
            assert status is not None
            assert status.text == cell.status.upper()
            assert bar.find(f"{SVG}rect") is None  # never drawn as a zero bar
            continue
        assert float(bar.get("data-value") or 0) == cell.requests_per_sec.median
        value_label = bar.find(f"{SVG}text[@class='value-label']")
        assert value_label is not None
        assert (value_label.text or "").startswith(format_rate(cell.requests_per_sec.median))
    # within one profile group, the unclipped bars' widths are proportional to their values
    for profile in {c.profile for c in by_key.values()}:
        drawn = [
            (float(b.get("data-value") or 0), b.find(f"{SVG}rect[@class='value']"))
            for b in bars
            if b.get("data-key", "").endswith(f"|{profile}") and b.get("data-clipped") == "false"
        ]
        ratios = [
            float(rect.get("width") or 0) / value for value, rect in drawn if rect is not None
        ]
        assert ratios
        assert max(ratios) - min(ratios) < 0.01 * min(ratios)


def test_ceiling_is_clipped_and_says_so() -> None:
    page = render_html(load("two-profiles-failed.json"))
    (svg,) = charts(page, "throughput")
    ceiling = [
        b for b in svg.findall(f"{SVG}g") if b.get("data-key", "").startswith("nginx-static|")
    ]
    assert ceiling
    for bar in ceiling:
        assert bar.get("data-clipped") == "true"
        rect = bar.find(f"{SVG}rect[@class='value']")
        assert rect is not None
        assert float(rect.get("width") or 0) <= PLOT_W
        text = bar.find(f"{SVG}text[@class='value-label']")
        assert text is not None
        assert (text.text or "").endswith("(off scale)")
        assert float(rect.get("x") or 0) == LABEL_W


def test_latency_points_are_the_cells_percentiles() -> None:
    document = load("two-profiles-failed.json")
    by_key = {f"{c.stack}|{c.app}|{c.profile}": c for c in cells(document)}
    svgs = charts(render_html(document), "latency")
    assert len(svgs) == 2  # one per profile
    for svg in svgs:
        for series in svg.findall(f"{SVG}g[@class='series']"):
            cell = by_key[series.get("data-key") or ""]
            for dot in series.findall(f"{SVG}circle"):
                key = dot.get("data-percentile") or ""
                assert float(dot.get("data-value") or 0) == cell.latency_percentiles_us[key]


def test_error_bars_match_error_rates() -> None:
    document = load("two-profiles-failed.json")

    def read_errors(run: RunRecord) -> RunRecord:
        m = run.measurement
        if not run.id.endswith("/uvicorn/seed-flask/tiny-high") or m is None:
            return run
        return replace(run, measurement=replace(m, errors=replace(m.errors, read=500)))

    document.runs = [read_errors(run) for run in document.runs]
    by_key = {f"{c.stack}|{c.app}|{c.profile}": c for c in cells(document)}
    (svg,) = charts(render_html(document), "errors")
    for bar in svg.findall(f"{SVG}g[@class='bar']"):
        cell = by_key[bar.get("data-key") or ""]
        assert float(bar.get("data-value") or 0) == cell.error_rate
        segments = {
            s.get("data-kind"): int(s.get("data-count") or 0) for s in bar.findall(f"{SVG}rect")
        }
        counts = cell.errors.by_kind()
        counts["non-2xx/3xx"] = counts.pop("status")
        expected = {k: v for k, v in counts.items() if v}
        assert segments == expected
    assert by_key["uvicorn|seed-flask|tiny-high"].error_rate > 0


def test_text_is_escaped_and_page_is_self_contained() -> None:
    document = load("smoke-3stacks.json")
    evil = "bad<script>alert(1)</script>&"
    document.runs = [replace(r, stack=evil) if r.stack == "uvicorn" else r for r in document.runs]
    document.host_warnings = ['<img src=x onerror="alert(2)">']
    page = render_html(document)
    assert "<script>alert(1)" not in page
    assert "<img" not in page
    assert "bad&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in page
    assert page.count("<script>") == 1  # only the render marker
    assert "<link" not in page
    assert not re.search(r"""\b(src|href)=["']?(https?:)?//""", page)
    for svg in re.findall(r"<svg .*?</svg>", page, re.S):
        ET.fromstring(svg)  # well-formed, so labels and values can be read back


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
@pytest.mark.timeout(60)
@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/setup --with-browser)"
)
def test_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(load("two-profiles-failed.json")))
    dom, err = run_chromium(["--dump-dom", page.as_uri()], tmp_path / "profile")
    assert 'data-rendered="4"' in dom  # the inline script ran and saw every chart
    assert dom.count('<svg class="chart"') == 4
    assert 'data-chart="throughput"' in dom
    assert 'data-chart="errors"' in dom
    assert "Uncaught" not in err
    assert "CONSOLE" not in err
    shot = tmp_path / "report.png"
    _, err = run_chromium(
        ["--screenshot=" + str(shot), "--window-size=1280,2000", page.as_uri()],
        tmp_path / "profile",
    )
    assert "Uncaught" not in err
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 50_000  # a blank page is a few kB
