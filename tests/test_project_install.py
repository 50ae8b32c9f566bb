"""serverbench in someone else's project: a light install, `init`, and a run with no flags.

Each test builds fresh virtualenvs outside this repository, installs serverbench from a wheel of
this checkout, creates a Django project with django-admin, and benchmarks it the way its README
says:

1. serverbench with its gunicorn and uvicorn extras installed in the app's own virtualenv:
   `serverbench init`, then `serverbench run --profile smoke`, no other flag.
2. serverbench alone in its own virtualenv, the app and its servers in another:
   `serverbench init`, then `serverbench run --profile smoke --python <the app's python>`.

The package index is asked once per module: the wheel and every wheel both projects need are
gathered into a wheelhouse, and the virtualenvs install from it alone (`--no-index`). Each run
keeps init's configuration but for `repeats = 1`, as a user trying it out would set it: one
round shows the same as three, in a third of the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def sh(
    *argv: str | Path, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


APP_REQUIREMENTS = ("django", "gunicorn==27.0.1", "uvicorn[standard]", "a2wsgi")


@dataclass(frozen=True, slots=True, kw_only=True)
class Wheelhouse:
    folder: Path
    serverbench: Path  # the wheel of this checkout

    def venv(self, folder: Path, *requirements: str) -> Path:
        """A fresh virtualenv with `requirements` installed from the wheelhouse alone, by this
        environment's pip (`--python`): seeding each virtualenv with a pip of its own would cost
        more than its whole install, and serverbench never runs pip."""
        sh(sys.executable, "-m", "venv", "--without-pip", folder)
        python = folder / "bin" / "python"
        pip: list[str | Path] = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "-q",
            "--no-index",
        ]
        sh(*pip, "--find-links", self.folder, *requirements)
        return python


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    folder = tmp_path_factory.mktemp("wheelhouse")
    # no build isolation: setuptools is already in this venv, so no index is needed to build
    pip_wheel: list[str | Path] = [sys.executable, "-m", "pip", "wheel", "-q", "-w", folder]
    sh(*pip_wheel, "--no-deps", "--no-build-isolation", REPO)
    (built,) = folder.glob("serverbench-*.whl")
    # every requirement of both tests, resolved together once
    sh(
        *pip_wheel,
        "--prefer-binary",
        f"serverbench[gunicorn,uvicorn] @ {built.as_uri()}",
        *APP_REQUIREMENTS,
    )
    return Wheelhouse(folder=folder, serverbench=built)


def django_project(root: Path, django_admin: Path) -> Path:
    project = root / "mysite"
    project.mkdir()
    sh(django_admin, "startproject", "mysite", project)
    return project


def one_repeat(config: Path) -> None:
    text = config.read_text()
    assert "repeats = 3\n" in text
    config.write_text(text.replace("repeats = 3\n", "repeats = 1\n"))


def results(project: Path) -> dict[str, Any]:
    (path,) = (project / "serverbench-results").glob("*/results.json")
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def assert_measured_both_interfaces(document: dict[str, Any]) -> None:
    measured = {(r["stack"], r["app"]) for r in document["runs"] if r["status"] == "ok"}
    assert ("gunicorn", "mysite.wsgi:application") in measured
    assert ("uvicorn", "mysite.wsgi:application") in measured
    assert ("uvicorn", "mysite.asgi:application") in measured
    assert document["plan"]["env"] == {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    assert document["plan"]["repeats"] == 1  # the configuration's, with no flag


def test_installed_in_the_apps_virtualenv_init_and_run_need_no_flags(
    tmp_path: Path, wheelhouse: Wheelhouse
) -> None:
    python = wheelhouse.venv(
        tmp_path / "venv",
        f"serverbench[gunicorn,uvicorn] @ {wheelhouse.serverbench.as_uri()}",
        "django",
    )
    bin_dir = python.parent
    assert (
        sh(python, "-c", "import importlib.util as u; print(u.find_spec('bjoern'))").stdout.strip()
        == "None"
    )
    project = django_project(tmp_path, bin_dir / "django-admin")
    (project / "pyproject.toml").write_text('[project]\nname = "mysite"\nversion = "0"\n')
    init = sh(bin_dir / "serverbench", "init", cwd=project)
    assert "mysite.wsgi:application, mysite.asgi:application" in init.stdout
    assert "[tool.serverbench]" in (project / "pyproject.toml").read_text()
    one_repeat(project / "pyproject.toml")
    run = sh(bin_dir / "serverbench", "run", "--profile", "smoke", cwd=project)
    assert "report:" in run.stdout
    document = results(project)
    assert_measured_both_interfaces(document)
    assert document["plan"]["config"]["source"] == str(project / "pyproject.toml")
    assert document["plan"]["python"] is None  # serverbench's own interpreter is the app's
    stacks = sh(bin_dir / "serverbench", "stacks", "--json", cwd=project)
    listed = {s["stack"]: s for s in json.loads(stacks.stdout)["stacks"]}
    assert listed["gunicorn"]["available"]
    assert not listed["bjoern"]["available"]
    assert listed["bjoern"]["extra"] == "bjoern"


def test_own_virtualenv_and_python_pointing_at_the_apps(
    tmp_path: Path, wheelhouse: Wheelhouse
) -> None:
    tool = wheelhouse.venv(tmp_path / "tool", str(wheelhouse.serverbench)).parent / "serverbench"
    app_python = wheelhouse.venv(tmp_path / "app", *APP_REQUIREMENTS)
    # the light install has no server, and the app's virtualenv has no serverbench
    assert sh(tool.parent / "python", "-c", "import gunicorn", check=False).returncode != 0
    assert sh(app_python, "-c", "import serverbench", check=False).returncode != 0
    project = django_project(tmp_path, app_python.parent / "django-admin")
    sh(tool, "init", cwd=project)
    one_repeat(project / "serverbench.toml")
    run = sh(tool, "run", "--profile", "smoke", "--python", app_python, cwd=project)
    assert "report:" in run.stdout
    document = results(project)
    assert_measured_both_interfaces(document)
    assert document["plan"]["python"] == str(app_python)
    version = sh(app_python, "-c", "import gunicorn; print(gunicorn.__version__)").stdout.strip()
    assert document["stacks"]["gunicorn"]["packages"] == {"gunicorn": version}
    missing = sh(
        tool,
        "run",
        "--profile",
        "smoke",
        "--python",
        app_python,
        "--stack",
        "waitress",
        cwd=project,
        check=False,
    )
    assert missing.returncode == 1
    assert f"run: {app_python} -m pip install 'waitress'" in missing.stderr
