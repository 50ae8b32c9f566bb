"""The open-loop engine behind the load-engine seam and `serverbench run --engine open`."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from serverbench import cli
from serverbench.apps.registry import BUILTIN_APPS
from serverbench.errors import LoadGeneratorError, UsageError
from serverbench.load.engine import EngineRun, KeptResponse, LoadRequest
from serverbench.load.open_loop.engine import merge_parts
from serverbench.load.open_loop_engine import (
    OpenLoopEngine,
    measurement_from_open_loop,
    open_loop_settings,
    settings_argv,
)
from serverbench.plan.profiles import PROFILES, at_rates
from serverbench.results.model import ErrorCounts
from serverbench.run.runner import wrong_under_load
from tests.test_open_loop import _part

REQUEST = LoadRequest(
    url="http://127.0.0.1:1/x", connections=64, threads=2, duration_s=3, timeout_s=2
)


def test_profiles_at_rates_are_named_by_rate() -> None:
    profiles = at_rates([PROFILES["smoke"], PROFILES["quick-moderate"]], [500, 2500.5])
    assert [p.name for p in profiles] == [
        "smoke@500rps",
        "smoke@2500.5rps",
        "quick-moderate@500rps",
        "quick-moderate@2500.5rps",
    ]
    assert [p.rate_per_s for p in profiles] == [500, 2500.5, 500, 2500.5]
    assert profiles[0].connections == PROFILES["smoke"].connections
    with pytest.raises(UsageError, match="offered rate"):
        at_rates([PROFILES["smoke"]], [0])
    (poisson,) = at_rates([PROFILES["smoke"]], [100], "poisson")
    assert (poisson.name, poisson.arrivals) == ("smoke@100rps-poisson", "poisson")


def test_a_request_becomes_open_loop_settings() -> None:
    settings = open_loop_settings(replace(REQUEST, rate_per_s=1500.0, arrivals="poisson"), seed=4)
    assert (settings.rate_per_s, settings.max_connections) == (1500.0, 64)
    assert (settings.duration_s, settings.timeout_s) == (3, 2)
    assert (settings.arrivals, settings.seed) == ("poisson", 4)
    argv = settings_argv(settings, REQUEST.url, "1")
    assert "--rate=1500" in argv
    assert "--cpus=1" in argv
    assert argv[-1] == REQUEST.url


def test_a_request_without_a_rate_is_refused() -> None:
    with pytest.raises(LoadGeneratorError, match="--rate"):
        open_loop_settings(REQUEST, seed=1)


def test_the_measurement_is_engine_neutral() -> None:
    settings = open_loop_settings(
        replace(REQUEST, rate_per_s=2000.0, duration_s=1.0),
        seed=1,
    )
    result = merge_parts(settings, [_part(0, [100] * 990 + [5000] * 10), _part(1, [200] * 1000)])
    m = measurement_from_open_loop(result)
    assert (m.engine, m.loop, m.offered_rate_per_s) == ("open", "open", 2000.0)
    assert m.good_responses == 2000
    assert m.requests == result.responses
    assert m.requests_per_sec == 2000.0
    assert m.errors == ErrorCounts(read=1, status=2)
    assert m.connections == 64
    assert m.latency_percentiles_us["50"] == pytest.approx(200, abs=1)
    assert set(m.latency_percentiles_us) == {"50", "75", "90", "99", "99.9", "99.99"}
    assert m.latency_histogram_hdr == result.latency_histogram_hdr
    assert m.latency_max_us == pytest.approx(5000, rel=0.001)
    assert m.generator_behind is None
    assert m.bytes_read == 2000


def test_the_engine_checks_its_packages() -> None:
    OpenLoopEngine().check_available()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "100"], "add --engine open"),
        (["--engine", "open"], "needs an offered rate"),
        (["--engine", "open", "--rate", "-5"], "must be a positive"),
        (["--arrivals", "poisson"], "add --engine open"),
    ],
)
def test_rates_and_engines_that_do_not_fit_are_refused(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    started = time.monotonic()
    code = cli.main(["run", "--stack", "bjoern", "--profile", "smoke", *args, "--out", str(out)])
    assert code != 0
    assert time.monotonic() - started < 5
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ")
    assert message in error
    assert not out.exists()


@pytest.mark.integration
def test_run_with_the_open_engine_records_open_loop_measurements(tmp_path: Path) -> None:
    out = tmp_path / "results"
    code = cli.main(
        [
            "run",
            "--engine",
            "open",
            "--rate",
            "200",
            "--stack",
            "bjoern",
            "--profile",
            "smoke",
            "--repeats",
            "1",
            "--no-references",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    document = json.loads((out / "results.json").read_text())
    (run,) = document["runs"]
    assert run["status"] == "ok", run.get("failure")
    assert run["profile"] == "smoke@200rps"
    measurement = run["measurement"]
    assert (measurement["engine"], measurement["loop"]) == ("open", "open")
    assert measurement["offered_rate_per_s"] == 200
    assert measurement["good_responses"] == 200  # 1 s at 200 req/s
    assert run["load_argv"][0] == "serverbench-open-loop"
    assert [c["name"] for c in run["usage"]["client"]["components"]] == ["open"]
    details = json.loads(
        (out / "logs" / "1-bjoern-seed-flask-smoke@200rps" / "measure.open-loop.json").read_text()
    )
    assert details["scheduled"] == 200
    assert details["samples"][0]["status"] == 200
    assert "open-loop p50" in (out / "report.md").read_text()


def test_answers_kept_from_the_load_are_verified() -> None:
    app = BUILTIN_APPS["seed-flask"]
    measurement = measurement_from_open_loop(
        merge_parts(
            open_loop_settings(replace(REQUEST, rate_per_s=1000.0), seed=1),
            [_part(0, [100])],
        )
    )

    def run_keeping(*kept: KeptResponse) -> EngineRun:
        return EngineRun(measurement=measurement, argv=(), kept=kept)

    good = KeptResponse(
        status=200,
        content_type="application/json",
        body=b'{"msisdn": "1234567890", "status": "ok"}',
    )
    wrong = KeptResponse(status=200, content_type="application/json", body=b'{"msisdn": "x"}')
    overloaded = KeptResponse(status=503, content_type="text/html", body=b"busy")
    assert wrong_under_load(app, run_keeping(good, overloaded)) is None
    mismatch = wrong_under_load(app, run_keeping(good, wrong))
    assert mismatch is not None
    assert '"x"' in str(mismatch)
