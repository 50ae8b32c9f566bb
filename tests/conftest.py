"""Shared fixtures and helpers: no process may outlive its test; a tiny user WSGI app on disk;
the nginx-static stack as `serverbench run` starts it; the CLI run in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from serverbench.apps.registry import BUILTIN_APPS
from serverbench.run import guardian
from serverbench.run.lifecycle import RunningStack, running_stack, stack_context
from serverbench.run.process import LIVE
from serverbench.run.verify import accepts_connection
from serverbench.stacks import get_stack
from serverbench.stacks.base import TcpEndpoint
from serverbench.stacks.interpreter import Interpreter
from serverbench.stacks.nginx import nginx_unavailable_reason

LEFTOVER_GRACE_S = 3.0
SERVERBENCH = [sys.executable, "-m", "serverbench"]
SERVER_CPU = "0"  # servers on CPU 0, load on CPU 1

needs_nginx = pytest.mark.skipif(
    nginx_unavailable_reason() is not None, reason=nginx_unavailable_reason() or ""
)


def run_cli(
    *args: str,
    timeout_s: float = 300,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`serverbench ARGS` in a subprocess, as a user runs it; its exit code is the caller's to check."""
    return subprocess.run(
        [*SERVERBENCH, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env=env,
        cwd=cwd,
    )


def interrupted(
    args: list[str],
    results: Path,
    ready: Callable[[dict[str, Any]], bool],
    *,
    timeout_s: float,
    signum: int = signal.SIGINT,
) -> tuple[int, str]:
    """Start `serverbench ARGS`, send it `signum` once its `results` file shows `ready` (plus
    a moment, to land in the middle of the next job), and return its exit code and stderr."""
    child = subprocess.Popen(
        [*SERVERBENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not _shows(results, ready):
            assert time.monotonic() < deadline, f"{results} never got ready to interrupt"
            time.sleep(0.2)
        time.sleep(0.75)
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, stderr


def _shows(results: Path, ready: Callable[[dict[str, Any]], bool]) -> bool:
    try:
        return ready(json.loads(results.read_text()))
    except (OSError, ValueError):
        return False  # not written yet, or caught in the middle of a write


def refused(
    *args: str,
    exit_code: int | None = 2,
    within_s: float = 10.0,
    env: dict[str, str] | None = None,
    **popen: Any,
) -> str:
    """Run the CLI, expect it to refuse at once with one `error: ...` line; return that line.
    `exit_code` None: any failure (a missing tool exits 1, a usage error 2)."""
    started = time.monotonic()
    done = subprocess.run(
        [*SERVERBENCH, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        **popen,
    )
    elapsed_s = time.monotonic() - started
    if exit_code is None:
        assert done.returncode != 0, done.stdout
    else:
        assert done.returncode == exit_code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert elapsed_s < within_s
    line: str = lines[0]
    return line


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie (a zombie is gone for every purpose here)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def gone(pid: int) -> bool:
    """Exited (a zombie counts: it is dead, only not yet reaped)."""
    try:
        return not alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return True


def assert_gone(*pids: int) -> None:
    running = [pid for pid in pids if not gone(pid)]
    assert not running, f"still running: {running}"


def listeners(port: int) -> list[int]:
    """PIDs (0 when unknown) of the sockets listening on TCP `port`."""
    return [
        conn.pid or 0
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
    ]


def assert_stopped(tree: list[psutil.Process], ports: list[int]) -> None:
    """A stack that was stopped: no live process serverbench started, none of its `tree` left,
    nothing listening on or accepting at its `ports`."""
    assert not LIVE
    _, left = psutil.wait_procs(tree, timeout=3)
    assert not [p for p in left if alive(p)]
    for port in ports:
        assert not listeners(port), port
        assert not accepts_connection(TcpEndpoint(host="127.0.0.1", port=port))


def _descendants() -> list[psutil.Process]:
    return psutil.Process(os.getpid()).children(recursive=True)


def processes_mentioning(text: str) -> list[psutil.Process]:
    """Other processes whose command line contains `text` (a test's own folder, typically)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if process.pid == os.getpid():
            continue
        cmdline = process.info.get("cmdline") or []
        if any(text in part for part in cmdline):
            found.append(process)
    return found


def _is_guardian(process: psutil.Process) -> bool:
    try:
        return "serverbench.run.guardian" in process.cmdline()
    except psutil.Error:
        return False


def _leftovers(before: set[int], tmp_path: Path) -> list[psutil.Process]:
    candidates = {p.pid: p for p in _descendants() if p.pid not in before}
    candidates.update((p.pid, p) for p in processes_mentioning(str(tmp_path)))
    # the guardian lives as long as serverbench: a test calling serverbench in-process ends it
    # below, as the CLI does when it exits
    return [p for p in candidates.values() if alive(p) and not _is_guardian(p)]


def _describe(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid}: {' '.join(process.cmdline())}"
    except psutil.Error:
        return f"pid {process.pid}"


@pytest.fixture(autouse=True)
def own_machine_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own machine lock folder (its subprocesses inherit it): several suites run
    on this machine at once, and the lock's own tests hold it on purpose."""
    monkeypatch.setenv("SERVERBENCH_LOCK_DIR", str(tmp_path / "machine-lock"))


@pytest.fixture(autouse=True)
def no_leftovers(tmp_path: Path) -> Iterator[None]:
    """Fail the test if a process it started (or one naming its tmp_path) is still running."""
    before = {p.pid for p in _descendants()}
    yield
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while True:
        left = _leftovers(before, tmp_path)
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if left:
        # clean up what we can identify as ours, so one failure does not cascade into others
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.kill()
        guardian.shutdown()
        pytest.fail("processes left behind:\n" + "\n".join(map(_describe, left)))
    guardian.shutdown()


@dataclass(frozen=True, slots=True, kw_only=True)
class TinyApp:
    app_dir: Path
    import_string: str
    path: str  # the --path to request, with {msisdn}
    expect_json: str  # the --expect-json it answers


TINY_WSGI_SOURCE = '''\
"""A user's own WSGI app: echoes the path it was asked for, as JSON."""

import json


def application(environ, start_response):
    body = json.dumps({"app": "tiny", "path": environ["PATH_INFO"]}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
'''


@pytest.fixture
def tiny_wsgi_app(tmp_path: Path) -> TinyApp:
    app_dir = tmp_path / "userapp"
    app_dir.mkdir()
    (app_dir / "tiny_wsgi.py").write_text(textwrap.dedent(TINY_WSGI_SOURCE))
    return TinyApp(
        app_dir=app_dir,
        import_string="tiny_wsgi:application",
        path="/tiny/{msisdn}",
        expect_json='{"app": "tiny", "path": "/tiny/{msisdn}"}',
    )


@pytest.fixture
def bjoern_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """bjoern's package missing from the servers' interpreter; the seed app's flask stays."""

    def missing(self: Interpreter, *modules: str) -> str | None:
        return "bjoern" if "bjoern" in modules else None

    monkeypatch.setattr(Interpreter, "missing", missing)


@pytest.fixture
def nginx_static(tmp_path: Path) -> Iterator[RunningStack]:
    """The nginx-static stack started through the run subsystem, as `serverbench run` starts
    it: one worker on the server CPU, keep-alive for a million requests per connection."""
    ctx = stack_context(
        BUILTIN_APPS["seed-flask"],
        run_dir=tmp_path / "nginx-static",
        server_cpu_count=1,
        overrides={},
    )
    with running_stack(get_stack("nginx-static"), ctx, cpus=SERVER_CPU) as stack:
        yield stack
