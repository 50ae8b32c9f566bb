"""A demanding user's misuses, end to end: kill -9, two runs at once, resume of a live run,
bad input, exit codes a script can trust, faults named for what they are, bounded logs, IPv6.

Every test runs the real CLI in a subprocess. The lock folder comes from the conftest
(SERVERBENCH_LOCK_DIR, one per test), so runs started by one test share one machine lock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from serverbench.run.lock import LOCK_DIR_ENV
from tests.conftest import SERVERBENCH, alive, processes_mentioning, refused, run_cli

pytestmark = pytest.mark.integration

FAST = ["--profile", "smoke", "--repeats", "1", "--time-wait-threshold", "10000000"]


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SERVERBENCH, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout_s} s")


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def names(processes: list[psutil.Process]) -> list[str]:
    found = []
    for process in processes:
        try:
            found.append(" ".join(process.cmdline())[:60])
        except psutil.Error:
            continue
    return found


@pytest.fixture
def killer() -> Iterator[list[subprocess.Popen[str]]]:
    """Children a test starts; killed (and their trees) if the test fails midway."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        tree = descendants(child.pid)
        if child.poll() is None:
            child.kill()
        child.wait()
        for process in tree:
            if alive(process):
                process.kill()


# --- nothing left behind, even after kill -9 ----------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A results folder with a short path: nginx-gunicorn's unix socket path must fit 107 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="sb-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_kill_9_of_a_run_with_servers_up_leaves_nothing_and_resume_takes_over(
    short_dir: Path, killer: list[subprocess.Popen[str]]
) -> None:
    out = short_dir / "results"
    child = start(
        "run", *FAST, "--stack", "nginx-gunicorn", "--no-references", "--duration", "3",
        "--out", str(out),
    )  # fmt: skip
    killer.append(child)
    seen: dict[int, psutil.Process] = {}

    def servers_up() -> bool:
        assert child.poll() is None, child.communicate()
        tree = descendants(child.pid)
        seen.update((p.pid, p) for p in tree)
        running = " ".join(names(tree))
        return "nginx: worker" in running and "gunicorn" in running

    wait_until(servers_up, 60, "nginx and gunicorn starting")
    assert len(seen) >= 4  # nginx master and worker, gunicorn master and worker(s)
    child.send_signal(signal.SIGKILL)
    child.wait()
    wait_until(lambda: not [p for p in seen.values() if alive(p)], 5, "every server process ending")
    assert not processes_mentioning(str(out))
    assert json.loads((out / "results.json").read_text())["status"] == "running"

    # the report does not take the marker's word for it: the owner is gone, the run interrupted
    reported = run_cli("report", str(out), "--format", "md")
    assert reported.returncode == 0, reported.stderr
    assert reported.stderr.startswith("warning: this run was interrupted: ")
    note = (out / "report.md").read_text().split("\n\n")[1]
    assert note.startswith("**Note:** This run was interrupted")
    assert f"pid {child.pid}" in note
    assert f"`serverbench run --resume {out}`" in note

    done = run_cli("run", "--resume", str(out))
    assert done.returncode == 0, done.stderr
    document = json.loads((out / "results.json").read_text())
    assert document["status"] == "complete"
    gone = [e for e in document["events"] if e["kind"] == "owner_gone"]
    assert len(gone) == 1
    assert gone[0]["owner_pid"] == child.pid
    assert f"pid {child.pid}" in done.stderr
    assert [run["status"] for run in document["runs"]] == ["ok"]
    assert not processes_mentioning(str(out))


# --- one benchmark per machine ----------------------------------------------------------


def test_a_second_run_is_refused_naming_the_first_and_waits_with_wait_for_lock(
    tmp_path: Path, killer: list[subprocess.Popen[str]]
) -> None:
    first = start(
        "run", *FAST, "--stack", "bjoern", "--no-references", "--out", str(tmp_path / "a")
    )
    killer.append(first)
    wait_until(lambda: (tmp_path / "a" / "results.json").exists(), 60, "the first run starting")

    refused = run_cli(
        "run", *FAST, "--stack", "bjoern", "--no-references", "--out", str(tmp_path / "b")
    )
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: this machine is busy with `serverbench run")
    assert f"pid {first.pid}" in refused.stderr
    assert "--wait-for-lock" in refused.stderr
    assert not (tmp_path / "b").exists()

    second = start(
        "run", *FAST, "--stack", "bjoern", "--no-references", "--wait-for-lock",
        "--out", str(tmp_path / "c"),
    )  # fmt: skip
    killer.append(second)
    _, first_err = first.communicate(timeout=120)
    _, second_err = second.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_err
    assert "waiting for `serverbench run" in second_err
    assert f"(pid {first.pid}" in second_err
    # measured one after the other, never at the same time
    a = json.loads((tmp_path / "a" / "results.json").read_text())["runs"][0]
    c = json.loads((tmp_path / "c" / "results.json").read_text())["runs"][0]
    assert a["finished_at"] <= c["started_at"]


def test_check_is_refused_while_a_run_holds_the_machine(
    tmp_path: Path, killer: list[subprocess.Popen[str]]
) -> None:
    first = start("serve", "--stack", "bjoern")
    killer.append(first)
    assert first.stdout is not None
    lock_file = Path(os.environ[LOCK_DIR_ENV]) / "serverbench.lock"
    wait_until(lambda: lock_file.exists() and lock_file.stat().st_size > 0, 30, "serve locking")
    refused = run_cli("check", "--stack", "bjoern")
    assert refused.returncode == 1
    assert "this machine is busy with `serverbench serve --stack bjoern`" in refused.stderr
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=30)


def test_resume_of_a_run_that_is_still_going_is_refused(
    tmp_path: Path, killer: list[subprocess.Popen[str]]
) -> None:
    out = tmp_path / "results"
    first = start(
        "run", *FAST, "--stack", "bjoern", "--repeats", "3", "--no-references", "--out", str(out)
    )
    killer.append(first)
    wait_until(lambda: (out / "results.json").exists(), 60, "the run starting")
    # even with another lock folder, the results folder's own owner refuses it
    other = {**os.environ, LOCK_DIR_ENV: str(tmp_path / "other-lock")}
    refused = run_cli("run", "--resume", str(out), env=other)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: the run in {out} is still going")
    assert f"pid {first.pid}" in refused.stderr
    reported = run_cli("report", str(out), "--format", "md", "--out", str(tmp_path / "r.md"))
    assert reported.returncode == 0, reported.stderr
    assert (
        f"This run is still going: `serverbench run {' '.join(FAST)}"
        in (tmp_path / "r.md").read_text()
    )
    assert f"(pid {first.pid}" in reported.stderr
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert first.returncode == 130
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len({run["id"] for run in runs}) == len(runs)


# --- every bad input refused before anything starts ---------------------------------------


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("{file}/out", "is a file, so no folder can be made under it"),
        ("{file}", "is an existing file"),
        ("/proc/x", "/proc is not a place for results"),
    ],
)
def test_an_invalid_out_is_refused(tmp_path: Path, out: str, message: str) -> None:
    file = tmp_path / "file"
    file.write_text("")
    line = refused("run", *FAST, "--stack", "bjoern", "--out", out.format(file=file))
    assert message in line


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("workers=x", "--set gunicorn.workers=x: expected a whole number"),
        ("workers=-1", "--set gunicorn.workers=-1: must be at least 1"),
        ("workers=0", "--set gunicorn.workers=0: must be at least 1"),
        ("gunicorn.nosuch=1", "stack gunicorn has no setting 'nosuch'"),
        ("workers=100000", "--allow-many-processes"),
    ],
)
def test_bad_settings_are_refused_for_every_selected_stack(
    tmp_path: Path, setting: str, message: str
) -> None:
    line = refused(
        "run", *FAST, "--stack", "gunicorn", "--set", setting,
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert message in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expect-status", "500"], "only statuses 200-399 count as good"),
        (["--duration", "1e9"], "more than 24 hours"),
        (["--warmup", "1e9"], "more than 24 hours"),
        (["--timeout", "inf"], "more than 24 hours"),
    ],
)
def test_inputs_that_cannot_give_a_measurement_are_refused(
    tmp_path: Path, args: list[str], message: str
) -> None:
    line = refused("run", *FAST, "--stack", "bjoern", *args)
    assert message in line


# --- exit codes a script can trust ---------------------------------------------------------


PICKY = """\
import sys
import tempfile
if 'gunicorn' in sys.modules:
    raise RuntimeError('no gunicorn for me')
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [b'{"status": "ok"}']
"""


def test_a_run_where_every_job_failed_exits_1(tmp_path: Path) -> None:
    (tmp_path / "picky.py").write_text(PICKY)
    done = run_cli(
        "run", *FAST, "--no-references", "--stack", "gunicorn", "--app", "picky:app",
        "--app-dir", str(tmp_path), "--expect-json", '{"status": "ok"}',
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "error: no job produced a measurement: 1 of 1 failed" in done.stderr
    assert (tmp_path / "out" / "report.md").exists()  # the report still says why


# --- faults named for what they are --------------------------------------------------------


DYING = """\
import os
count = 0
def app(environ, start_response):
    global count
    count += 1
    if count == 500:
        os._exit(1)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [b'{"status": "ok"}']
"""

SLOW = """\
import time
def app(environ, start_response):
    time.sleep(1.5)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [b'{"status": "ok"}']
"""

CHATTY = """\
import sys
import tempfile
def app(environ, start_response):
    print('x' * 4000, file=sys.stderr, flush=True)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [b'{"status": "ok"}']
"""


def app_run(tmp_path: Path, source: str, stack: str, *extra: str) -> dict[str, object]:
    (tmp_path / "userapp.py").write_text(source)
    out = tmp_path / "out"
    run_cli(
        "run", *FAST, "--no-references", "--stack", stack, "--app", "userapp:app",
        "--app-dir", str(tmp_path), "--expect-json", '{"status": "ok"}', "--out", str(out),
        *extra,
    )  # fmt: skip
    document: dict[str, object] = json.loads((out / "results.json").read_text())
    return document


def test_a_server_that_dies_under_load_is_died_whatever_wrk_did(tmp_path: Path) -> None:
    document = app_run(tmp_path, DYING, "bjoern", "--duration", "2")
    run = document["runs"][0]  # type: ignore[index]
    assert run["status"] == "failed"
    assert run["failure"]["kind"] == "died"
    # wrk may fail on the dead socket before it ends (during the load) or end first (the
    # measurement): both are the server's death, named so.
    assert re.search(r"bjoern died during the (load|measurement)", run["failure"]["message"])


def test_slow_calls_are_told_apart_from_a_slow_import_and_the_timeout_is_explained(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    # two connections: bjoern answers one request at a time, each queued one costs 1.5 s after
    document = app_run(
        tmp_path, SLOW, "bjoern", "--warmup", "0", "--duration", "2", "--timeout", "1",
        "--threads", "1", "--connections", "2",
    )  # fmt: skip
    assert time.monotonic() - started < 60
    cost = document["references"]["app_cost"]["userapp:app"]  # type: ignore[index]
    assert cost["error"] is None  # neither "import took too long" nor a timeout
    assert cost["per_call_us"] >= 1.5e6
    run = document["runs"][0]  # type: ignore[index]
    assert run["failure"]["kind"] == "no_good_responses"
    message = run["failure"]["message"]
    assert "took 1.5" in message
    assert "1 s timeout" in message
    assert "2 s measurement" in message


def test_an_app_that_logs_on_every_request_is_capped_and_warned_about(tmp_path: Path) -> None:
    document = app_run(tmp_path, CHATTY, "gunicorn", "--duration", "2")
    run = document["runs"][0]  # type: ignore[index]
    assert run["status"] == "ok", run["failure"]
    logs = run["logs"]
    assert logs["gunicorn"]["written_bytes"] > 1_000_000
    assert any("to its log during the 2 s measurement" in w for w in run["warnings"])
    assert "to its log during the 2 s measurement" in (tmp_path / "out" / "report.md").read_text()
    log = next((tmp_path / "out" / "logs").glob("*/gunicorn.log"))
    assert log.stat().st_size <= 40 * 1024 * 1024


# --- IPv6 loopback and localhost -----------------------------------------------------------


IPV6_SERVER = """\
import json, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6

server = Server(("::1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.fixture
def ipv6_server(tmp_path: Path) -> Iterator[int]:
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-c", IPV6_SERVER],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        yield int(server.stdout.readline())
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("host", ["[::1]", "localhost"])
def test_ipv6_loopback_and_localhost_urls_are_measured(
    tmp_path: Path, ipv6_server: int, host: str
) -> None:
    out = tmp_path / "out"
    done = run_cli(
        "run", *FAST, "--warmup", "0", "--url", f"http://{host}:{ipv6_server}/",
        "--expect-json", '{"status": "ok"}', "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [run["status"] for run in runs] == ["ok"]


# --- reports always follow a complete results file -----------------------------------------


def test_resume_writes_the_reports_an_interrupted_report_step_left_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_cli("run", *FAST, "--stack", "bjoern", "--no-references", "--out", str(out))
    assert done.returncode == 0, done.stderr
    (out / "report.md").unlink()
    (out / "report.html").unlink()
    resumed = run_cli("run", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "report.md").exists()
    assert (out / "report.html").exists()
    assert "reports were missing" in resumed.stderr
    again = run_cli("run", "--resume", str(out))
    assert again.returncode == 1
    assert f"serverbench report {out}" in again.stderr


def test_compare_fails_when_nothing_was_compared(tmp_path: Path) -> None:
    data = Path(__file__).parent / "data" / "results" / "two-profiles-failed.json"
    document = json.loads(data.read_text())
    other = json.loads(data.read_text())
    for run in other["runs"]:
        run["app"] = "another-app"
    (tmp_path / "b.json").write_text(json.dumps(other))
    done = run_cli("compare", str(data), str(tmp_path / "b.json"), "--fail-if-slower", "5")
    assert done.returncode == 1
    assert "nothing was compared" in done.stderr
    assert document["runs"]
