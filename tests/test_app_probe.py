"""app_probe in real child processes: a user's app is imported and called away from serverbench."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from serverbench.apps.importer import inspect_app, measure_in_process_cost
from serverbench.apps.registry import BUILTIN_APPS, App, UserAppOptions, resolve_app
from serverbench.errors import AppError

if TYPE_CHECKING:
    from tests.conftest import TinyApp

USER_APPS = """\
import json


def wsgi_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"hello": "wsgi"}).encode()]


async def asgi_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


class Factory:
    app = staticmethod(wsgi_app)


settings = {"debug": True}
NUMBER = 42
print("import-time chatter on stdout")
"""


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    app_dir = tmp_path / "apps"
    app_dir.mkdir()
    (app_dir / "userapps.py").write_text(USER_APPS)
    (app_dir / "broken.py").write_text("import json\nraise RuntimeError('database is down')\n")
    # writes to stdout at import without a newline, or when the interpreter exits
    (app_dir / "chatty.py").write_text("import sys\nsys.stdout.write('loading...')\n" + USER_APPS)
    (app_dir / "byebye.py").write_text(
        "import atexit\natexit.register(lambda: print('bye'))\n" + USER_APPS
    )
    return app_dir


def user_app(spec: str, app_dir: Path, interface: str | None = None) -> App:
    return resolve_app(spec, UserAppOptions(app_dir=str(app_dir), interface=interface))


@pytest.mark.parametrize(
    ("spec", "interface"),
    [
        ("userapps:wsgi_app", "wsgi"),
        ("userapps:asgi_app", "asgi"),
        ("userapps:Factory.app", "wsgi"),
    ],
)
def test_detects_the_interface_of_an_app_that_imports(
    user_dir: Path, spec: str, interface: str
) -> None:
    app = user_app(spec, user_dir)
    inspected = inspect_app(app, interface_given=False)
    assert inspected.interface == interface
    assert inspected.import_string == spec
    assert inspected.search_path == app.search_path


def test_a_correct_interface_given_is_kept(user_dir: Path) -> None:
    app = user_app("userapps:asgi_app", user_dir, interface="asgi")
    assert inspect_app(app, interface_given=True).interface == "asgi"


def test_tiny_wsgi_app_fixture_is_a_wsgi_app(tiny_wsgi_app: TinyApp) -> None:
    app = user_app(tiny_wsgi_app.import_string, tiny_wsgi_app.app_dir)
    assert inspect_app(app, interface_given=False).interface == "wsgi"


def test_app_that_raises_on_import_names_the_exception(user_dir: Path) -> None:
    with pytest.raises(AppError) as raised:
        inspect_app(user_app("broken:app", user_dir), interface_given=False)
    message = str(raised.value)
    assert "cannot load broken:app: RuntimeError: database is down" in message
    assert "--app-dir" in message
    assert "\n" not in message


def test_missing_module_names_the_module(tmp_path: Path) -> None:
    with pytest.raises(AppError, match="ModuleNotFoundError: No module named 'nowhere_to_be'"):
        inspect_app(user_app("nowhere_to_be:app", tmp_path), interface_given=False)


def test_wrong_attribute_names_the_attribute(user_dir: Path) -> None:
    with pytest.raises(AppError, match=r"AttributeError: .*'application'"):
        inspect_app(user_app("userapps:application", user_dir), interface_given=False)


@pytest.mark.parametrize(
    ("spec", "given", "suggested"),
    [("userapps:wsgi_app", "asgi", "wsgi"), ("userapps:asgi_app", "wsgi", "asgi")],
)
def test_wrong_interface_given_suggests_the_right_one(
    user_dir: Path, spec: str, given: str, suggested: str
) -> None:
    with pytest.raises(AppError) as raised:
        inspect_app(user_app(spec, user_dir, interface=given), interface_given=True)
    message = str(raised.value)
    assert f"looks like a {suggested.upper()} app, not {given.upper()}" in message
    assert message.endswith(f"use --interface {suggested}")


@pytest.mark.parametrize("spec", ["userapps:settings", "userapps:NUMBER"])
def test_an_object_that_is_no_app_is_refused(user_dir: Path, spec: str) -> None:
    with pytest.raises(AppError, match=r"neither a WSGI app .* nor an ASGI app"):
        inspect_app(user_app(spec, user_dir), interface_given=False)


def test_builtin_apps_are_not_probed() -> None:
    app = BUILTIN_APPS["seed-fastapi"]
    assert inspect_app(app, interface_given=True) is app


@pytest.mark.parametrize("name", ["seed-flask", "seed-fastapi"])
def test_in_process_cost_of_the_seed_apps(name: str) -> None:
    cost = measure_in_process_cost(BUILTIN_APPS[name], duration_s=0.3)
    assert cost.status == 200
    assert cost.calls > 0
    assert cost.calls % 100 == 0
    assert cost.seconds >= 0.3
    assert cost.per_call_us == pytest.approx(cost.seconds / cost.calls * 1e6)
    assert cost.calls_per_sec == pytest.approx(cost.calls / cost.seconds)


def test_in_process_cost_of_a_user_app(tiny_wsgi_app: TinyApp) -> None:
    app = resolve_app(
        tiny_wsgi_app.import_string,
        UserAppOptions(app_dir=str(tiny_wsgi_app.app_dir), path=tiny_wsgi_app.path),
    )
    cost = measure_in_process_cost(app, duration_s=0.2)
    assert cost.status == 200
    assert cost.calls > 0


def test_in_process_cost_of_an_app_that_fails_to_import(user_dir: Path) -> None:
    with pytest.raises(AppError, match="in-process failed: RuntimeError: database is down"):
        measure_in_process_cost(user_app("broken:app", user_dir), duration_s=0.1)


def test_an_app_writing_to_stdout_at_import_is_still_probed(user_dir: Path) -> None:
    app = user_app("chatty:asgi_app", user_dir)
    assert inspect_app(app, interface_given=False).interface == "asgi"


def test_an_app_writing_to_stdout_at_exit_is_an_app_error(user_dir: Path) -> None:
    with pytest.raises(AppError, match=r"printed no result \(last line: 'bye'\); make sure"):
        inspect_app(user_app("byebye:wsgi_app", user_dir), interface_given=False)
