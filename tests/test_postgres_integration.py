"""A real PostgreSQL: started in the job folder, filled, counted against the responses, removed.

Each db workload's responses are checked against the database's own count of transactions
(pg_stat_database), through real servers under wrk: a response that did not read the database
would show as a missing transaction.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from serverbench.load.mix import lua, parse_mix
from serverbench.load.wrk import WrkSettings
from serverbench.load.wrk_process import run_wrk
from serverbench.run.host import LOCAL
from serverbench.run.process import ManagedProcess
from serverbench.run.services import RunningService, running_service
from serverbench.run.verify import accepts_connection, wait_until
from serverbench.services.base import ServiceContext
from serverbench.services.postgres import Postgres, default_run_as
from serverbench.stacks.base import TcpEndpoint
from serverbench.workloads import checks, spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        Postgres().unavailable_reason() is not None or shutil.which("wrk") is None,
        reason="needs PostgreSQL (scripts/setup installs it) and wrk",
    ),
]

SERVER_CPU = str(min(os.sched_getaffinity(0)))
CLIENT_CPU = str(max(os.sched_getaffinity(0)))
CONNECTIONS = 4
MAX_POOL_CONNECTIONS = 8  # gunicorn: 2 workers x 4; uvicorn: 1 worker x 4


def _segments() -> set[str]:
    return {line.split()[1] for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]}


@pytest.fixture
def database(tmp_path: Path) -> Iterator[RunningService]:
    service = Postgres()
    ctx = ServiceContext(
        run_dir=tmp_path / "job",
        port=LOCAL.free_port(),
        password=secrets.token_hex(12),
        run_as=default_run_as(),
        python=sys.executable,
        setup_sql=spec.setup_sql(),
        database="hello_world",
    )
    plan = service.plan(ctx)
    with running_service(service, plan, log_dir=tmp_path / "job", cpus=SERVER_CPU) as running:
        pidfile = (plan.remove_after[0] / "postmaster.pid").read_text().splitlines()
        ours = pidfile[6].split()[1]  # "key id" of its System V segment
        assert ours in _segments()
        yield running
    assert not plan.remove_after[0].exists(), "the data folder outlived the job"
    assert not (tmp_path / "job" / "postgres" / "password").exists()
    assert (tmp_path / "job" / "postgres.log").exists(), "the log must stay"
    assert ours not in _segments(), "shared memory left behind"


def _admin(running: RunningService, database: str = "postgres") -> psycopg.Connection:
    url = running.plan.app_env["DATABASE_URL"].rsplit("/", 1)[0] + f"/{database}"
    return psycopg.connect(url, autocommit=True)


def test_database_holds_techempower_data_and_leaves_nothing(database: RunningService) -> None:
    with _admin(database, "hello_world") as connection:
        assert connection.execute("SELECT count(*) FROM world").fetchone() == (10_000,)
        row = connection.execute("SELECT randomnumber FROM world WHERE id = 42").fetchone()
        assert row == (spec.world_random_number(42),)
        assert connection.execute("SELECT count(*) FROM fortune").fetchone() == (12,)
    postmaster = database.process
    assert postmaster.exit_code() is None
    assert os.stat(database.plan.remove_after[0]).st_mode & 0o077 == 0


def test_killed_database_is_seen_and_cleaned_up(database: RunningService) -> None:
    os.kill(database.process.pid, signal.SIGKILL)
    assert wait_until(lambda: database.exited() is not None, timeout_s=5)
    assert "exited with code -9" in str(database.exited())


def _committed(running: RunningService) -> int:
    """hello_world's committed transactions, once every client session has ended."""
    with _admin(running) as connection:
        # a backend reports its counts when its session ends
        assert wait_until(
            lambda: (
                connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = 'hello_world'"
                ).fetchone()
                == (0,)
            ),
            timeout_s=10,
        )
        connection.execute("SELECT pg_stat_clear_snapshot()")
        row = connection.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = 'hello_world'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _server(app: str, port: int, running: RunningService, log: Path) -> ManagedProcess:
    target = f"serverbench.apps.builtin.workload_{app}:app"
    if app == "flask":
        argv = [sys.executable, "-m", "gunicorn", "--no-control-socket", "--workers", "2"]
        argv += ["--bind", f"127.0.0.1:{port}", target]
    else:
        argv = [sys.executable, "-m", "uvicorn", "--workers", "1", "--no-access-log"]
        argv += ["--host", "127.0.0.1", "--port", str(port), target]
    process = ManagedProcess(
        f"{app}-server", argv, log_path=log, env=dict(running.plan.app_env), cpus=SERVER_CPU
    )
    endpoint = TcpEndpoint(host="127.0.0.1", port=port)
    assert wait_until(lambda: accepts_connection(endpoint), timeout_s=20), process.tail()
    return process


def _get(port: int, path: str) -> tuple[int, bytes, str, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.monotonic()
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        return (
            response.status,
            body,
            response.getheader("Content-Type", ""),
            time.monotonic() - started,
        )
    finally:
        connection.close()


def _wrk(port: int, path: str) -> int:
    done = subprocess.run(
        [
            *("taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{CONNECTIONS}", "-d1s"),
            *("--timeout", "5s", f"http://127.0.0.1:{port}{path}"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "Non-2xx" not in done.stdout, done.stdout
    match = re.search(r"(\d+) requests in", done.stdout)
    assert match is not None, done.stdout
    return int(match.group(1))


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_every_response_did_its_transactions(
    app: str, database: RunningService, tmp_path: Path
) -> None:
    for path, per_response in (("/db", 1), ("/queries?queries=5", 5), ("/fortunes", 1)):
        before = _committed(database)
        port = LOCAL.free_port()
        server = _server(app, port, database, tmp_path / f"{app}.log")
        try:
            status, body, content_type, elapsed_s = _get(port, path)
            assert status == 200, body
            problem = checks.check(path, body=body, content_type=content_type, elapsed_s=elapsed_s)
            assert problem is None, problem
            responses = 1 + _wrk(port, path)
        finally:
            server.stop()
        transactions = _committed(database) - before
        # each response did its reads: at least one transaction per query (autocommit)
        assert responses * per_response <= transactions, (path, responses, transactions)
        # and no more, but for a request in flight when wrk stopped (served, not counted) and
        # one each for a new session and psycopg's first PREPARE on it
        limit = (responses + CONNECTIONS) * per_response + 2 * MAX_POOL_CONNECTIONS
        assert transactions <= limit, (path, responses, transactions)


def test_a_request_mix_sends_each_path_its_share(database: RunningService, tmp_path: Path) -> None:
    mix = parse_mix({"/api/v2/1234567890": 3, "/db": 1}, where="test")
    before = _committed(database)
    port = LOCAL.free_port()
    server = _server("flask", port, database, tmp_path / "flask.log")
    try:
        measurement = run_wrk(
            WrkSettings(threads=1, connections=CONNECTIONS, duration_s=1, extra_lua=lua(mix)),
            f"http://127.0.0.1:{port}/",
            out_dir=tmp_path / "wrk",
            label="mix",
            cpus=CLIENT_CPU,
        )
    finally:
        server.stop()
    transactions = _committed(database) - before
    responses = measurement.requests
    assert measurement.non_2xx_3xx == 0
    # one response in four read the database: a quarter, but for requests in flight at the end
    assert responses // 4 - CONNECTIONS <= transactions
    assert transactions <= responses // 4 + CONNECTIONS + 2 * MAX_POOL_CONNECTIONS
