"""Faults during `serverbench run`, injected from the test into the real stacks it started.

Each test runs the real CLI on two stacks, a faulty gunicorn and a healthy bjoern, and checks
that the fault is recorded with its kind and log tail, that bjoern is still measured, that the
summary shows it, and that nothing is left: no process, no temporary file (the child gets its
own TMPDIR, which must end empty).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import SERVERBENCH, alive, processes_mentioning

pytestmark = pytest.mark.integration

# TIME_WAIT sockets left by other runs on this machine must not make a test wait
SHORT = [
    "--profile", "smoke", "--duration", "2", "--warmup", "1", "--repeats", "1",
    "--time-wait-threshold", "10000000",
]  # fmt: skip


@dataclass(slots=True)
class Run:
    out: Path
    tmpdir: Path
    child: subprocess.Popen[str]
    seen: dict[int, psutil.Process] = field(default_factory=dict)  # every descendant met

    def descendants(self) -> list[psutil.Process]:
        try:
            found = psutil.Process(self.child.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update((p.pid, p) for p in found)
        return found

    def gunicorn_master(self) -> psutil.Process:
        for process in self.descendants():
            try:
                if process.ppid() == self.child.pid and "gunicorn" in process.cmdline():
                    return process
            except psutil.Error:
                continue
        raise AssertionError("gunicorn is not running")

    def wait_for_measurement(self, stack: str, timeout_s: float = 60) -> None:
        """Until wrk's measured run against `stack` has begun."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if list((self.out / "logs").glob(f"1-{stack}-*/measure.wrk.log")):
                return
            assert self.child.poll() is None, self.child.communicate()
            self.descendants()
            time.sleep(0.05)
        raise AssertionError(f"the measurement of {stack} never began")


@pytest.fixture
def start_run(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    runs: list[Run] = []

    def start(*args: str) -> Run:
        out, tmpdir = tmp_path / "results", tmp_path / "tmp"
        tmpdir.mkdir()
        child = subprocess.Popen(
            [*SERVERBENCH, "run", *SHORT, "--no-references", "--out", str(out), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TMPDIR": str(tmpdir)},
        )
        runs.append(Run(out=out, tmpdir=tmpdir, child=child))
        return runs[-1]

    yield start
    for run in runs:  # a failed assertion must not leave a stopped stack behind
        if run.child.poll() is None:
            run.child.kill()
            run.child.wait()
        for process in run.seen.values():
            if alive(process):
                process.send_signal(signal.SIGCONT)
                process.kill()


def finish(run: Run, timeout_s: float = 90) -> tuple[dict[str, Any], str]:
    """Wait for the run; its runs by stack and its stdout. Checks that nothing is left."""
    while run.child.poll() is None:
        run.descendants()
        time.sleep(0.1)
    stdout, stderr = run.child.communicate(timeout=timeout_s)
    assert run.child.returncode == 0, stderr
    time.sleep(0.2)
    assert not [p.pid for p in run.seen.values() if alive(p)]
    assert not processes_mentioning(str(run.out))
    assert list(run.tmpdir.iterdir()) == []
    document = json.loads((run.out / "results.json").read_text())
    assert document["status"] == "complete"
    return {r["stack"]: r for r in document["runs"]}, stdout


def test_a_worker_killed_mid_measurement_is_recorded_and_the_run_goes_on(start_run):
    run = start_run("--stack", "gunicorn,bjoern", "--set", "gunicorn.workers=2")
    run.wait_for_measurement("gunicorn")
    victim = run.gunicorn_master().children()[0]
    time.sleep(0.5)
    victim.kill()
    runs, stdout = finish(run)
    gunicorn = runs["gunicorn"]
    assert victim.pid in [exit["pid"] for exit in gunicorn["process_exits"]]
    assert gunicorn["process_restarts"] >= 1  # its master started another worker
    assert gunicorn["status"] == "ok", gunicorn["failure"]
    assert runs["bjoern"]["status"] == "ok"
    assert runs["bjoern"]["process_exits"] == []
    assert f"pid {victim.pid}" in stdout
    assert "exited during the measurement" in stdout


def test_a_stack_whose_master_dies_mid_measurement_is_recorded_died(start_run):
    run = start_run("--stack", "gunicorn,bjoern")
    run.wait_for_measurement("gunicorn")
    time.sleep(0.3)
    run.gunicorn_master().kill()
    runs, stdout = finish(run)
    gunicorn = runs["gunicorn"]
    assert gunicorn["status"] == "failed"
    assert gunicorn["failure"]["kind"] == "died"
    assert "exited with code -9" in gunicorn["failure"]["message"]
    assert "gunicorn" in gunicorn["failure"]["log_tail"]
    assert runs["bjoern"]["status"] == "ok"
    assert "FAILED (died)" in stdout


def test_a_stack_that_stops_answering_is_bounded_and_recorded_unresponsive(start_run):
    run = start_run("--stack", "gunicorn,bjoern", "--recovery-timeout", "5")
    run.wait_for_measurement("gunicorn")
    time.sleep(0.3)
    stopped_at = time.monotonic()
    os.killpg(run.gunicorn_master().pid, signal.SIGSTOP)  # the whole stack, master and workers
    runs, stdout = finish(run)
    gunicorn = runs["gunicorn"]
    assert gunicorn["status"] == "failed"
    assert gunicorn["failure"]["kind"] == "unresponsive"
    assert "an HTTP response" in gunicorn["failure"]["message"]
    assert "gunicorn" in gunicorn["failure"]["log_tail"]
    assert runs["bjoern"]["status"] == "ok"
    assert "FAILED (unresponsive)" in stdout
    # measurement (3 s) + post-verify retries (~5 s) + stop + bjoern's job, nothing unbounded
    assert time.monotonic() - stopped_at < 40


WRONG_AFTER_A_WHILE = """\
import itertools
import json
import sys

_served = itertools.count()


def app(environ, start_response):
    # correct for the first requests, then wrong; only under gunicorn
    broken = "gunicorn" in sys.modules and next(_served) >= 10
    body = json.dumps({"status": "broken" if broken else "ok"}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"""


def test_a_stack_that_starts_answering_wrongly_is_recorded_wrong_response(start_run, tmp_path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "fickle.py").write_text(textwrap.dedent(WRONG_AFTER_A_WHILE))
    run = start_run(
        "--stack", "gunicorn,bjoern", "--app", "fickle:app", "--app-dir", str(app_dir),
        "--expect-json", '{"status": "ok"}',
    )  # fmt: skip
    runs, stdout = finish(run)
    gunicorn = runs["gunicorn"]
    assert gunicorn["status"] == "failed"
    assert gunicorn["failure"]["kind"] == "wrong_response"
    message = gunicorn["failure"]["message"]
    assert 'expected {"status": "ok"}, got {"status": "broken"}' in message
    assert runs["bjoern"]["status"] == "ok"
    assert "FAILED (wrong_response)" in stdout
