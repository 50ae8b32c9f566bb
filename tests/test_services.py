"""The PostgreSQL service plan: pure commands, nothing spawned, nothing outside the job folder."""

from __future__ import annotations

import dataclasses
import re
import signal
import sys
from pathlib import Path

import pytest

from serverbench.services.base import ServiceContext
from serverbench.services.postgres import Postgres, shared_memory_id


def _ctx(tmp_path: Path, run_as: str | None = "postgres") -> ServiceContext:
    return ServiceContext(
        run_dir=tmp_path / "job",
        port=54321,
        password="s3cret",
        run_as=run_as,
        python=sys.executable,
        setup_sql="CREATE TABLE t (id int);",
        database="hello_world",
    )


def test_plan_keeps_everything_in_the_job_folder(tmp_path: Path) -> None:
    plan = Postgres(bin_dir=Path("/usr/lib/postgresql/15/bin")).plan(_ctx(tmp_path))
    folder = (tmp_path / "job" / "postgres").absolute()
    assert plan.remove_after == (folder / "data", folder / "password")
    assert {file.path for file in plan.files} == {folder / "password", folder / "setup.sql"}
    process = plan.process.argv
    assert process[:6] == (
        sys.executable,
        "-m",
        "serverbench.shims.run_as",
        "--user",
        "postgres",
        "--dir",
    )
    assert process[process.index("-D") + 1] == "/proc/self/fd/3"
    for option in ("unix_socket_directories=", "dynamic_shared_memory_type=mmap", "port=54321"):
        assert option in process
    assert "listen_addresses=127.0.0.1" in process
    assert plan.process.stop_signal is signal.SIGINT
    assert plan.process.pinned
    initdb = plan.init[0].argv
    assert "--pwfile=/proc/self/fd/4" in initdb
    assert "--auth=scram-sha-256" in initdb
    assert [step.name for step in plan.setup] == ["createdb", "setup-sql"]
    assert plan.app_env == {
        "DATABASE_URL": "postgresql://benchmarkdbuser:s3cret@127.0.0.1:54321/hello_world"
    }
    assert plan.masked(plan.app_env["DATABASE_URL"]).count("***") == 1
    assert all(setting.source for setting in plan.settings)


def test_not_root_runs_as_itself(tmp_path: Path) -> None:
    plan = Postgres(bin_dir=Path("/usr/lib/postgresql/15/bin")).plan(_ctx(tmp_path, run_as=None))
    assert "--user" not in plan.process.argv


def test_no_setup_sql_creates_the_database_only(tmp_path: Path) -> None:
    ctx = dataclasses.replace(_ctx(tmp_path), setup_sql="", database="serverbench")
    plan = Postgres(bin_dir=Path("/x/bin")).plan(ctx)
    assert [step.name for step in plan.setup] == ["createdb"]
    assert plan.app_env["DATABASE_URL"].endswith("/serverbench")


def test_bad_database_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="identifier"):
        Postgres(bin_dir=Path("/x/bin")).plan(
            dataclasses.replace(_ctx(tmp_path), database="x; DROP")
        )


def test_missing_postgresql_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("serverbench.services.postgres.bin_dirs", lambda: [])
    reason = Postgres().unavailable_reason()
    assert reason is not None
    assert "apt-get install postgresql" in reason


PIDFILE = "123\n/proc/self/fd/3\n1795854697\n54999\n\n127.0.0.1\n 16039964         4\nready\n"
SYSVIPC = (
    "       key      shmid perms size cpid lpid nattch uid gid\n"
    "  16039964          4   600   56  10   11      0 101 104\n"
)


def test_leftover_segment_is_named_only_when_unattached_and_same_key() -> None:
    assert shared_memory_id(PIDFILE, SYSVIPC) == 4
    assert shared_memory_id(PIDFILE, SYSVIPC.replace("      0 101", "      2 101")) is None
    assert shared_memory_id(PIDFILE, SYSVIPC.replace("16039964 ", "16039965 ")) is None
    assert shared_memory_id("123\n", SYSVIPC) is None


def _fake_bin(tmp_path: Path, *, initdb: str, postgres: str) -> Path:
    bin_dir = tmp_path / "fakepg" / "15" / "bin"
    bin_dir.mkdir(parents=True)
    for name, body in (("initdb", initdb), ("postgres", postgres), ("pg_isready", "exit 2")):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    return bin_dir


@pytest.mark.integration
@pytest.mark.parametrize(
    ("initdb", "postgres", "message"),
    [
        ("echo 'initdb: error: disk full' >&2; exit 1", "exit 0", "initdb failed (exit code 1)"),
        ("exit 0", "echo 'FATAL: could not bind' >&2; exit 1", "postgres exited with code 1"),
    ],
)
def test_database_down_at_start_fails_with_its_log_and_leaves_nothing(
    tmp_path: Path, initdb: str, postgres: str, message: str
) -> None:
    from serverbench.errors import StackStartError
    from serverbench.run.services import running_service

    service = Postgres(bin_dir=_fake_bin(tmp_path, initdb=initdb, postgres=postgres))
    plan = service.plan(dataclasses.replace(_ctx(tmp_path), run_as=None))
    with (
        pytest.raises(StackStartError, match=re.escape(message)) as failure,
        running_service(service, plan, log_dir=tmp_path / "job"),
    ):
        pytest.fail("a service that cannot start must not be handed to the stack")
    assert "disk full" in str(failure.value) or "could not bind" in str(failure.value)
    assert "s3cret" not in str(failure.value)
    assert not plan.remove_after[0].exists()
