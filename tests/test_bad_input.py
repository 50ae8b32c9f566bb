"""Bad input and missing tools: one `error: ...` line saying what to do, fast, nothing started.

Most tests run the real CLI in a subprocess with its own TMPDIR, and check that it refused in
a few seconds, wrote no results folder and created no temporary file.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serverbench import cli
from tests.conftest import refused as cli_refused

QUICK_S = 5.0


@pytest.fixture
def private_tmp(tmp_path: Path) -> Path:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return tmpdir


def refused(private_tmp: Path, *args: str, env: dict[str, str] | None = None, **popen: Any) -> str:
    """A quick one-line refusal (conftest's), with a TMPDIR of its own left empty."""
    line = cli_refused(
        *args,
        exit_code=None,
        within_s=QUICK_S,
        env={**(env or os.environ), "TMPDIR": str(private_tmp)},
        **popen,
    )
    assert list(private_tmp.iterdir()) == []
    return line


def test_unknown_stack(private_tmp: Path, tmp_path: Path):
    out = tmp_path / "out"
    line = refused(private_tmp, "run", "--stack", "gunicron", "--out", str(out))
    assert "unknown stack 'gunicron'" in line
    assert "serverbench stacks" in line
    assert not out.exists()


def test_unknown_app(private_tmp: Path, tmp_path: Path):
    out = tmp_path / "out"
    line = refused(private_tmp, "run", "--app", "seed-flsk", "--out", str(out))
    assert "unknown app 'seed-flsk'" in line
    assert not out.exists()


def test_an_app_that_fails_to_import(private_tmp: Path, tmp_path: Path):
    (tmp_path / "broken.py").write_text("import not_installed_anywhere\n")
    out = tmp_path / "out"
    line = refused(
        private_tmp, "run", "--app", "broken:app", "--app-dir", str(tmp_path), "--out", str(out)
    )
    assert "cannot load broken:app" in line
    assert "not_installed_anywhere" in line
    assert not out.exists()


def test_missing_wrk(private_tmp: Path, tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("taskset", "nginx"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    out = tmp_path / "out"
    line = refused(private_tmp, "run", "--out", str(out), env={**os.environ, "PATH": str(bin_dir)})
    assert "wrk is not on PATH; install it" in line
    assert not out.exists()


def test_more_connections_than_the_open_file_limit(private_tmp: Path, tmp_path: Path):
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))

    out = tmp_path / "out"
    line = refused(
        private_tmp, "run", "--connections", "100000", "--out", str(out), preexec_fn=low_limit
    )
    assert "100000 connections" in line
    assert "open-file limit is 4096" in line
    assert "ulimit -n" in line
    assert not out.exists()


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_on_a_port_in_use(private_tmp: Path, held_port: int):
    line = refused(private_tmp, "serve", "--stack", "bjoern", "--port", str(held_port))
    assert f"port {held_port} is already in use" in line
    assert "--port" in line


# --- missing packages and tools, in-process so the lookups can be patched -------------------


@pytest.mark.usefixtures("bjoern_not_installed")
def test_a_named_stack_whose_package_is_missing_stops_the_run(capsys, tmp_path):
    out = tmp_path / "out"
    started = time.monotonic()
    code = cli.main(["run", "--stack", "bjoern", "--out", str(out)])
    assert code == 1
    assert time.monotonic() - started < QUICK_S
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: stack bjoern is unavailable: Python module bjoern")
    assert "pip install" in error
    assert "\n" not in error
    assert not out.exists()


@pytest.mark.usefixtures("bjoern_not_installed")
def test_check_reports_a_missing_package(capsys):
    assert cli.main(["check", "--stack", "bjoern"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL" in printed
    assert "Python module bjoern is not installed" in printed


@pytest.fixture
def no_nginx(monkeypatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin-without-nginx"
    bin_dir.mkdir()
    for tool in ("wrk", "taskset"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    monkeypatch.setattr("serverbench.stacks.nginx.NGINX", str(tmp_path / "no" / "nginx"))
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.usefixtures("no_nginx")
def test_check_reports_missing_nginx(capsys):
    assert cli.main(["check", "--stack", "nginx-static"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL" in printed
    assert "nginx is not on PATH; install it" in printed


@pytest.mark.integration
@pytest.mark.usefixtures("no_nginx")
def test_without_nginx_the_ceiling_is_recorded_skipped(capsys, tmp_path: Path):
    from serverbench.results.store import load

    out = tmp_path / "out"
    args = ["run", "--profile", "smoke", "--repeats", "1", "--stack", "bjoern", "--out", str(out)]
    assert cli.main([*args, "--time-wait-threshold", "10000000"]) == 0
    runs = {run.stack: run for run in load(out).runs}
    assert runs["bjoern"].status == "ok"
    skipped = runs["nginx-static"]
    assert skipped.status == "skipped"
    assert skipped.failure is not None
    assert "nginx is not on PATH" in skipped.failure.message
    captured = capsys.readouterr()
    assert "warning: the nginx-static ceiling is skipped: nginx is not on PATH" in captured.err
    assert "skipped: " in captured.out
