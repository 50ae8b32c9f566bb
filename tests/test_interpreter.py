"""The servers' interpreter: what it has, the exact pip command for what it lacks, the shim path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serverbench.errors import UsageError
from serverbench.stacks.interpreter import own, probe


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return folder / "bin" / "python"


def test_own_interpreter_has_the_servers() -> None:
    python = own()
    assert python.own
    assert python.has_module("gunicorn")
    assert python.version_of("gunicorn") == "27.0.1"
    assert python.version_of("Uvicorn") is not None  # names compare as pip compares them
    assert python.server_pythonpath() is None


def test_bare_venv_lacks_them_and_says_the_exact_pip_command(bare_venv: Path) -> None:
    python = probe(str(bare_venv))
    assert not python.own
    assert python.missing("json", "gunicorn") == "gunicorn"
    reason = python.missing_module_reason("gunicorn", "gunicorn==27.0.1")
    assert reason.endswith(f"run: {bare_venv} -m pip install 'gunicorn==27.0.1'")
    assert python.versions(("gunicorn",)) == {}
    assert python.tool("uwsgi") == str(bare_venv.parent / "uwsgi")


def test_shims_import_in_another_interpreter_without_serverbench_dependencies(
    bare_venv: Path,
) -> None:
    python = probe(str(bare_venv))
    path = python.server_pythonpath()
    assert path is not None
    assert os.listdir(path) == ["serverbench"]
    done = subprocess.run(
        [
            str(bare_venv),
            "-c",
            "import serverbench.shims.loader as l, serverbench.apps.importer; "
            "print(l.load_object('json:dumps')([1]))",
        ],
        env={"PYTHONPATH": path, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1]"
    hidden = subprocess.run(
        [str(bare_venv), "-c", "import psutil"],
        env={"PYTHONPATH": path},
        capture_output=True,
        check=False,
    )
    assert hidden.returncode != 0  # serverbench's own dependencies stay out


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("/no/such/python", "no such file"),
        ("/usr", "is a folder"),
        ("/etc/hostname", "not executable|did not run"),
        ("/bin/true", "is not a Python"),
    ],
)
def test_bad_python_is_refused(given: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        probe(given)
