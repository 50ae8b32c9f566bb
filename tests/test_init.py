"""`serverbench init`: the app found by reading a project, and the file written for it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from serverbench.cli import build_parser
from serverbench.commands import init
from serverbench.commands.options import capacity_targets
from serverbench.errors import UsageError
from serverbench.plan.config import ProjectConfig, load_config
from serverbench.plan.detect import detect

MANAGE = """#!/usr/bin/env python
import os, sys

def main():
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
"""


def django_project(root: Path) -> Path:
    (root / "mysite").mkdir(parents=True)
    (root / "manage.py").write_text(MANAGE)
    (root / "mysite" / "__init__.py").write_text("")
    (root / "mysite" / "settings.py").write_text("DEBUG = True\n")
    (root / "mysite" / "wsgi.py").write_text(
        "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n"
    )
    (root / "mysite" / "asgi.py").write_text(
        "from django.core.asgi import get_asgi_application\napplication = get_asgi_application()\n"
    )
    return root


def init_args(folder: Path, *, stdout: bool = False) -> argparse.Namespace:
    return argparse.Namespace(dir=str(folder), stdout=stdout)


def test_django_project_is_found_through_manage_py(tmp_path: Path) -> None:
    found = detect(django_project(tmp_path))
    assert [(a.spec, a.interface) for a in found.apps] == [
        ("mysite.wsgi:application", "wsgi"),
        ("mysite.asgi:application", "asgi"),
    ]
    assert found.env == {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    assert found.framework == "Django"


def test_flask_and_fastapi_apps_at_module_level(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "__init__.py").write_text("")
    (tmp_path / "web" / "api.py").write_text(
        "from fastapi import FastAPI\n\napi: FastAPI = FastAPI(title='x')\n"
    )
    (tmp_path / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    # a class merely named Flask, in a file that does not import flask, is no Flask app
    (tmp_path / "other.py").write_text("class Flask: ...\nthing = Flask()\n")
    # nor is anything inside a virtualenv
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "python").symlink_to("/usr/bin/python3")
    (venv / "lib.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    found = detect(tmp_path)
    assert sorted((a.spec, a.interface, a.framework) for a in found.apps) == [
        ("app:app", "wsgi", "Flask"),
        ("web.api:api", "asgi", "FastAPI"),
    ]
    assert found.python == ".venv/bin/python"


def test_init_appends_to_pyproject_and_the_result_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    django_project(tmp_path)
    original = '[project]\nname = "mysite"\n'
    (tmp_path / "pyproject.toml").write_text(original)
    assert init.run(init_args(tmp_path)) == 0
    text = (tmp_path / "pyproject.toml").read_text()
    assert text.startswith(original + "\n[tool.serverbench]\n")
    config = load_config(tmp_path / "pyproject.toml")
    assert [a.spec for a in config.apps] == ["mysite.wsgi:application", "mysite.asgi:application"]
    assert config.env == {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    assert config.stacks == ("gunicorn", "uvicorn")
    assert config.profiles == ("quick",)
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(UsageError, match=r"already has a \[tool\.serverbench\] table"):
        init.run(init_args(tmp_path))
    assert (tmp_path / "pyproject.toml").read_text() == text


def test_init_writes_serverbench_toml_without_pyproject(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("import fastapi\napp = fastapi.FastAPI()\n")
    assert init.run(init_args(tmp_path)) == 0
    config = load_config(tmp_path / "serverbench.toml")
    assert [a.spec for a in config.apps] == ["main:app"]
    assert config.stacks == ("uvicorn",)  # an ASGI app only: no gunicorn sync workers
    with pytest.raises(UsageError, match="already exists"):
        init.run(init_args(tmp_path))


def test_init_without_an_app_says_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init.run(init_args(tmp_path, stdout=True)) == 0
    out = capsys.readouterr().out
    assert "# note: no app was found" in out
    assert '# apps = ["mypackage.wsgi:application"]' in out
    assert not (tmp_path / "serverbench.toml").exists()


def test_the_slo_init_suggests_is_the_default_it_stands_for(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("import fastapi\napp = fastapi.FastAPI()\n")
    assert init.run(init_args(tmp_path)) == 0
    path = tmp_path / "serverbench.toml"
    text = path.read_text()
    assert "# slo = { p99_ms = 100, error_rate_pct = 0.1 }" in text
    assert load_config(path).slo is None  # commented out: the defaults apply
    path.write_text(text.replace("# slo = ", "slo = "))
    parser = build_parser()
    flagless = capacity_targets(parser.parse_args(["capacity"]), ProjectConfig())
    uncommented = capacity_targets(parser.parse_args(["capacity"]), load_config(path))
    assert (uncommented.slo, uncommented.max_error_rate) == (flagless.slo, flagless.max_error_rate)
    assert uncommented.sources["slo"] == f"{path.resolve()} slo"
