"""`serverbench run` with the database workloads: PostgreSQL started and removed per job, its
share of the CPU sampled, and its faults (down at start, killed mid-run) recorded by kind while
the other jobs still run. Nothing is left: no process, no data folder, no temporary file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from serverbench.services.postgres import Postgres
from tests.conftest import SERVERBENCH, alive

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        Postgres().unavailable_reason() is not None, reason="needs PostgreSQL (scripts/setup)"
    ),
]

SHORT = [
    "--profile", "smoke", "--duration", "2", "--warmup", "1", "--repeats", "1",
    "--time-wait-threshold", "10000000", "--no-references",
]  # fmt: skip


def _postmasters(parent: int) -> list[psutil.Process]:
    try:
        found = psutil.Process(parent).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in found if _name(p) == "postgres" and _name(p.parent()) != "postgres"]


def _name(process: psutil.Process | None) -> str:
    try:
        return process.name() if process is not None else ""
    except psutil.Error:
        return ""


def _run(
    out: Path, *args: str, env: dict[str, str] | None = None, during: Any = None
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, Any], str]:
    tmpdir = out.parent / "tmp"
    tmpdir.mkdir(exist_ok=True)
    child = subprocess.Popen(
        [*SERVERBENCH, "run", *SHORT, "--out", str(out), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {}), "TMPDIR": str(tmpdir)},
    )
    seen: dict[int, psutil.Process] = {}
    try:
        while child.poll() is None:
            for process in psutil.Process(child.pid).children(recursive=True):
                seen[process.pid] = process
            if during is not None and during(child):
                during = None
            time.sleep(0.05)
        stdout, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, stderr
    time.sleep(0.2)
    assert not [p.pid for p in seen.values() if alive(p)], "a process outlived the run"
    assert not list(out.rglob("postgres/data")), "a data folder outlived its job"
    assert not list(out.rglob("postgres/password"))
    assert list(tmpdir.iterdir()) == []
    document = json.loads((out / "results.json").read_text())
    assert document["status"] == "complete"
    return {(r["stack"], r["app"]): r for r in document["runs"]}, document, stdout


def test_db_workloads_run_with_their_own_database(tmp_path: Path) -> None:
    runs, document, _ = _run(tmp_path / "results", "--stack", "gunicorn,uvicorn", "--app", "db")
    assert set(runs) == {
        ("gunicorn", "db-flask"),
        ("uvicorn", "db-flask"),
        ("uvicorn", "db-fastapi"),
    }
    for run in runs.values():
        assert run["status"] == "ok", run["failure"]
        components = [c["name"] for c in run["usage"]["server"]["components"]]
        assert "postgres" in components  # its CPU is part of the stack's
        postgres = run["services"]["postgres"]
        assert postgres["version"].startswith("PostgreSQL ")
        assert {s["name"] for s in postgres["settings"]} >= {"max_connections", "fsync"}
        assert all(s["source"] for s in postgres["settings"])
        assert "***" in postgres["app_env"]["DATABASE_URL"]
    cost = document["references"]["app_cost"]["db-flask"]
    assert "waits on I/O" in cost["skipped"]
    assert len(list((tmp_path / "results" / "logs").glob("*/postgres.log"))) == 3  # logs stay


@pytest.fixture
def broken_postgres() -> Iterator[Path]:
    """PostgreSQL binaries whose initdb fails, where the database user may run them."""
    folder = Path(tempfile.mkdtemp(prefix="serverbench-brokenpg-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        bin_dir = folder / "bin"
        bin_dir.mkdir(mode=0o755)
        for name, body in (("initdb", "echo 'initdb: error: no space left' >&2; exit 1"),):
            (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
            (bin_dir / name).chmod(0o755)
        for name in ("postgres", "pg_isready", "psql"):
            os.symlink(f"{Postgres().bin_dir}/{name}", bin_dir / name)
        yield bin_dir
    finally:
        shutil.rmtree(folder)


def test_database_down_at_start_fails_its_jobs_only(tmp_path: Path, broken_postgres: Path) -> None:
    runs, _, stdout = _run(
        tmp_path / "results",
        *("--stack", "granian", "--app", "db-flask", "--app", "io-wait-fastapi"),
        env={"SERVERBENCH_PG_BINDIR": str(broken_postgres)},
    )
    db = runs[("granian", "db-flask")]
    assert db["status"] == "failed"
    assert db["failure"]["kind"] == "service"
    assert "initdb failed" in db["failure"]["message"]
    assert "no space left" in db["failure"]["message"]
    assert runs[("granian", "io-wait-fastapi")]["status"] == "ok"
    assert "FAILED (service)" in stdout


def test_database_killed_mid_run_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "results"
    killed: list[int] = []

    def kill_during_granian(child: subprocess.Popen[str]) -> bool:
        if not list((out / "logs").glob("1-granian-*/measure.wrk.log")):
            return False
        time.sleep(0.3)
        for postmaster in _postmasters(child.pid):
            postmaster.kill()
            killed.append(postmaster.pid)
        return bool(killed)

    runs, _, stdout = _run(
        out, "--stack", "granian,uvicorn", "--app", "db-fastapi", during=kill_during_granian
    )
    assert killed
    granian = runs[("granian", "db-fastapi")]
    assert granian["status"] == "failed"
    assert granian["failure"]["kind"] == "service_died"
    assert "postgres, which db-fastapi needs, died" in granian["failure"]["message"]
    assert "postgres" in granian["failure"]["log_tail"]
    assert runs[("uvicorn", "db-fastapi")]["status"] == "ok"  # with a database of its own
    assert "FAILED (service_died)" in stdout
