"""run_wrk with the real wrk against a real nginx started here (one worker, pinned to CPU 0)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
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

NGINX = "/usr/sbin/nginx"
NGINX_CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type application/json; return 200 '{{"ok":1}}'; }}
    }}
}}
"""

needs_tools = pytest.mark.skipif(
    shutil.which("wrk") is None or not Path(NGINX).exists() or shutil.which("taskset") is None,
    reason="needs wrk, nginx and taskset",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], deadline_s: float = 5.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on {port}")


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM nginx's process group (master and worker), SIGKILL it if it lingers."""
    members: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        master = psutil.Process(proc.pid)
        members = [master, *master.children(recursive=True)]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _, alive = psutil.wait_procs(members, timeout=5)
    assert not alive, f"nginx processes left: {alive}"


@pytest.fixture
def nginx_url(tmp_path: Path) -> Iterator[str]:
    prefix = tmp_path / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port))
    argv = ["taskset", "-c", "0", NGINX, "-p", str(prefix), "-e", str(prefix / "error.log")]
    argv += ["-c", str(conf), "-g", "daemon off;"]
    with open(prefix / "out.log", "wb") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    try:
        wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_group(proc)


def assert_gone(pid: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, f"wrk {pid} still runs"


SHORT = WrkSettings(threads=2, connections=50, duration_s=1, timeout_s=2)


@pytest.mark.integration
@needs_tools
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
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(LoadGeneratorError, match="unable to connect"):
        run_wrk(SHORT, url, out_dir=tmp_path, label="down")


def test_missing_wrk_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LoadGeneratorError, match="wrk not found; install it: apt-get install wrk"):
        run_wrk(SHORT, "http://127.0.0.1:1/", out_dir=tmp_path, label="x")
