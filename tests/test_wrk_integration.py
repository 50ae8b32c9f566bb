"""run_wrk with the real wrk against the nginx-static stack (one worker, pinned to CPU 0)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from serverbench.errors import LoadGeneratorError
from serverbench.load.histogram import percentiles_from_hdr
from serverbench.load.wrk import (
    WrkSettings,
    build_argv,
    lua_script_path,
    parse,
    script_env,
)
from serverbench.load.wrk_process import run_wrk
from serverbench.run.host import LOCAL
from serverbench.run.lifecycle import RunningStack
from tests.conftest import assert_gone, needs_nginx

needs_tools = pytest.mark.skipif(
    shutil.which("wrk") is None or shutil.which("taskset") is None,
    reason="needs wrk and taskset",
)


@pytest.fixture
def nginx_url(nginx_static: RunningStack) -> str:
    return f"{nginx_static.url}/"


SHORT = WrkSettings(threads=2, connections=50, duration_s=1, timeout_s=2)


@pytest.mark.integration
@needs_tools
@needs_nginx
def test_run_wrk_against_nginx(nginx_url: str, tmp_path: Path) -> None:
    started: list[int] = []
    m = run_wrk(
        SHORT, nginx_url, out_dir=tmp_path / "out", label="ok", cpus="1", on_start=started.append
    )
    assert m.requests > 0
    assert m.good_responses == m.requests
    assert m.socket_errors.connect == m.socket_errors.read == m.socket_errors.write == 0
    assert m.requests_per_sec > 0
    assert m.histogram_hdr is not None
    assert HdrHistogram.decode(m.histogram_hdr).get_total_count() == m.latency_samples
    assert m.latency_samples >= m.requests
    assert set(m.latency_percentiles_us) == {"50", "75", "90", "99", "99.9", "99.99"}
    assert (tmp_path / "out" / "ok.wrk.json").exists()
    assert "Requests/sec" in (tmp_path / "out" / "ok.wrk.log").read_text()
    assert len(started) == 1
    assert_gone(started[0])


@pytest.mark.integration
@needs_tools
@needs_nginx
def test_grid_mode_matches_wrk_percentiles(nginx_url: str, tmp_path: Path) -> None:
    out = tmp_path / "grid.json"
    argv = build_argv(SHORT, nginx_url, str(lua_script_path()), cpus="1")
    env = {**os.environ, **script_env(out, exact_budget=0)}
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=30)
    m = parse(json.loads(out.read_text()))
    assert not m.histogram_exact
    assert m.histogram_hdr is not None
    assert HdrHistogram.decode(m.histogram_hdr).get_total_count() == m.latency_samples
    hdr = percentiles_from_hdr(m.histogram_hdr, [50, 90, 99])
    for key in hdr:
        assert hdr[key] == pytest.approx(m.latency_percentiles_us[key], rel=0.02, abs=3), key


@pytest.mark.integration
@needs_tools
@needs_nginx
def test_overrun_kills_wrk(nginx_url: str, tmp_path: Path) -> None:
    started: list[int] = []

    def freeze(pid: int) -> None:  # a stopped wrk can only end by the overrun kill
        started.append(pid)
        os.kill(pid, signal.SIGSTOP)

    t0 = time.monotonic()
    with pytest.raises(LoadGeneratorError, match="did not finish within"):
        run_wrk(SHORT, nginx_url, out_dir=tmp_path, label="stuck", grace_s=0.5, on_start=freeze)
    assert time.monotonic() - t0 < 10
    assert_gone(started[0])


@pytest.mark.integration
@needs_tools
@needs_nginx
def test_interrupt_kills_wrk(nginx_url: str, tmp_path: Path) -> None:
    started: list[int] = []

    def interrupt(pid: int) -> None:
        started.append(pid)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_wrk(SHORT, nginx_url, out_dir=tmp_path, label="ctrl-c", on_start=interrupt)
    assert_gone(started[0])


@pytest.mark.integration
@needs_tools
def test_unreachable_target_fails_with_log_tail(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{LOCAL.free_port()}/"
    with pytest.raises(LoadGeneratorError, match="unable to connect"):
        run_wrk(SHORT, url, out_dir=tmp_path, label="down")


def test_missing_wrk_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LoadGeneratorError, match="wrk not found; install it: apt-get install wrk"):
        run_wrk(SHORT, "http://127.0.0.1:1/", out_dir=tmp_path, label="x")
