"""The command line, in-process (`cli.main`) and as users run it (`python -m serverbench`)."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from serverbench import cli
from serverbench.commands import COMMANDS, check, serve
from serverbench.errors import StackStartError
from serverbench.run import process
from serverbench.stacks import SEED_STACKS
from tests.conftest import run_cli

APP_RAISING_ON_IMPORT = "raise RuntimeError('cannot reach the database')\n"


def assert_one_error_line(stderr: str, *fragments: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("error: ")
    assert "; " in line, f"no 'what to do' part: {line}"
    for fragment in fragments:
        assert fragment in line
    return line


@pytest.fixture
def broken_app_dir(tmp_path: Path) -> Path:
    app_dir = tmp_path / "brokenapp"
    app_dir.mkdir()
    (app_dir / "broken_on_import.py").write_text(APP_RAISING_ON_IMPORT)
    return app_dir


@pytest.fixture
def no_server_may_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a server was started")

    for command in (check, serve):
        monkeypatch.setattr(command, "running_stack", refuse)
    yield
    assert not process.LIVE


def stack_rows(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines() if line.strip()}


# --- in-process ---------------------------------------------------------------------------


def test_stacks_lists_the_seed_stacks_as_available(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stacks"]) == 0
    rows = stack_rows(capsys.readouterr().out)
    for name in SEED_STACKS:
        assert " available " in rows[name], rows[name]


def test_check_gunicorn_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--stack", "gunicorn"]) == 0
    captured = capsys.readouterr()
    assert "checking gunicorn with seed-flask ..." in captured.out
    row = stack_rows(captured.out)["gunicorn"]
    assert " seed-flask " in row
    assert " pass " in row
    assert "workers=" in row
    assert captured.err == ""
    assert not process.LIVE


def test_check_a_wsgi_only_stack_with_an_asgi_app_is_a_skip(
    capsys: pytest.CaptureFixture[str], no_server_may_start: None
) -> None:
    assert cli.main(["check", "--stack", "bjoern", "--app", "seed-fastapi"]) == 0
    row = stack_rows(capsys.readouterr().out)["bjoern"]
    assert " skip " in row
    assert "serves WSGI apps only" in row


@pytest.mark.parametrize(
    ("argv", "code", "fragments"),
    [
        (["check", "--stack", "nope"], 2, ["unknown stack 'nope'", "`serverbench stacks`"]),
        (["check", "--stack", "gunicorn,nope"], 2, ["unknown stack 'nope'"]),
        (["serve", "--stack", "nope"], 2, ["unknown stack 'nope'"]),
        (["serve", "--no-config"], 2, ["serve needs a stack", "--stack gunicorn"]),
        (["serve", "--stack", "gunicorn,uvicorn"], 2, ["names 2 stacks and serve runs one"]),
        (["check", "--stack", "gunicorn", "--app", "nope"], 2, ["unknown app 'nope'", "--app"]),
        (["check", "--stack", "bjoern", "--set", "workers=2"], 2, ["no selected stack has"]),
        (
            ["check", "--stack", "gunicorn", "--app", "m:a", "--app-dir", "/no/such/dir"],
            2,
            ["--app-dir '/no/such/dir' is not a directory"],
        ),
    ],
)
def test_bad_input_is_one_error_line(
    capsys: pytest.CaptureFixture[str],
    no_server_may_start: None,
    argv: list[str],
    code: int,
    fragments: list[str],
) -> None:
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, *fragments)
    assert "checking" not in captured.out


def test_app_raising_on_import_is_one_error_line_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], no_server_may_start: None, broken_app_dir: Path
) -> None:
    argv = ["check", "--stack", "gunicorn", "--app", "broken_on_import:app"]
    assert cli.main([*argv, "--app-dir", str(broken_app_dir)]) == 1
    captured = capsys.readouterr()
    assert_one_error_line(
        captured.err,
        "cannot load broken_on_import:app: RuntimeError: cannot reach the database",
        "--app-dir",
    )
    assert "checking" not in captured.out


@pytest.fixture
def serve_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stacks `serve` would start; it is stopped with an error before any server starts."""
    started: list[str] = []

    def record(stack: Any, ctx: Any, **kwargs: Any) -> Any:
        started.append(stack.name)
        raise StackStartError("recorded; this test starts no server")

    monkeypatch.setattr(serve, "running_stack", record)
    return started


@pytest.mark.parametrize(
    ("stacks", "argv", "started", "note"),
    [
        (
            '["bjoern", "gunicorn"]',
            [],
            "bjoern",
            "the first of the project's stacks (bjoern, gunicorn)",
        ),
        ('["bjoern", "gunicorn"]', ["--stack", "gunicorn"], "gunicorn", None),
        ('["gunicorn"]', [], "gunicorn", None),
    ],
)
def test_serve_takes_the_project_files_first_stack_and_says_so_when_it_names_more(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    serve_starts: list[str],
    stacks: str,
    argv: list[str],
    started: str,
    note: str | None,
) -> None:
    (tmp_path / "serverbench.toml").write_text(f"stacks = {stacks}\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["serve", *argv, "--out", str(tmp_path / "serve")]) == 1
    assert serve_starts == [started]
    err = capsys.readouterr().err
    if note is None:
        assert_one_error_line(err, "recorded")
    else:
        assert err.startswith(f"serve: starting {started}, {note}; --stack NAME starts another\n")


# --- as a command -------------------------------------------------------------------------


def test_stacks_command() -> None:
    done = run_cli("stacks")
    assert done.returncode == 0, done.stderr
    rows = stack_rows(done.stdout)
    for name in SEED_STACKS:
        assert " available " in rows[name], rows[name]


def test_unknown_stack_command() -> None:
    done = run_cli("check", "--stack", "nope")
    assert done.returncode == 2
    assert_one_error_line(done.stderr, "unknown stack 'nope'", "`serverbench stacks` lists them")
    assert done.stdout == ""


def test_unknown_app_command() -> None:
    done = run_cli("check", "--stack", "gunicorn", "--app", "nope")
    assert done.returncode == 2
    assert_one_error_line(done.stderr, "unknown app 'nope'", "module:attribute")
    assert done.stdout == ""


def test_app_raising_on_import_command(tmp_path: Path, broken_app_dir: Path) -> None:
    done = run_cli(
        "check", "--stack", "gunicorn", "--app", "broken_on_import:app", cwd=broken_app_dir
    )
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "RuntimeError: cannot reach the database")
    assert "checking" not in done.stdout


def test_bad_setting_value_via_subprocess() -> None:
    # refused before any stack starts, not one FAIL row per stack
    done = run_cli("check", "--stack", "gunicorn", "--set", "workers=x")
    assert done.returncode == 2
    assert done.stderr.startswith("error: --set gunicorn.workers=x: expected a whole number")
    assert "checking" not in done.stdout


def test_check_skip_command() -> None:
    done = run_cli("check", "--stack", "bjoern", "--app", "seed-fastapi")
    assert done.returncode == 0, done.stderr
    assert " skip " in stack_rows(done.stdout)["bjoern"]
    assert "checking" not in done.stdout


@pytest.mark.integration
@pytest.mark.parametrize("chosen", ["flag", "project"])
def test_serve_runs_until_sigterm_and_leaves_nothing(tmp_path: Path, chosen: str) -> None:
    out = tmp_path / "serve"
    # the stack by --stack, or from the project file as `run` takes it
    (tmp_path / "serverbench.toml").write_text('stacks = ["bjoern", "gunicorn"]\n')
    flag = ["--stack", "bjoern"] if chosen == "flag" else []
    serving = subprocess.Popen(
        [sys.executable, "-m", "serverbench", "serve", *flag, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert serving.stdout is not None
        first = serving.stdout.readline()
        assert first.startswith("bjoern serving seed-flask at http://127.0.0.1:"), first
        url = first.split(" at ", 1)[1].strip()
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
        servers = psutil.Process(serving.pid).children(recursive=True)
        assert servers
        serving.send_signal(signal.SIGTERM)
        _, stderr = serving.communicate(timeout=20)
    finally:
        if serving.poll() is None:
            serving.kill()
            serving.wait()
    assert serving.returncode == 130
    assert "interrupted; stopping everything serverbench started" in stderr
    assert ("serve: starting bjoern, the first of the project's stacks" in stderr) == (
        chosen == "project"
    )
    _, alive = psutil.wait_procs(servers, timeout=3)
    assert not alive
    assert (out / "bjoern.log").exists()


def test_every_command_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse formats help text with %: a stray "%" in one option's help breaks --help
    names = [command.__name__.rsplit(".", 1)[-1] for command in COMMANDS]
    for name in names:
        with pytest.raises(SystemExit) as exited:
            cli.main([name, "--help"])
        assert exited.value.code == 0, name
        assert capsys.readouterr().out.startswith("usage: serverbench"), name
