"""Shared fixtures: no process may outlive its test; a tiny user WSGI app on disk."""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from serverbench.run import guardian
from serverbench.stacks.interpreter import Interpreter

LEFTOVER_GRACE_S = 3.0
SERVERBENCH = [sys.executable, "-m", "serverbench"]


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie (a zombie is gone for every purpose here)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


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
