"""Pure tests of apps (resolving --app and its options) and of app_probe.detect_interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from flask import Flask

from serverbench.apps.importer import detect_interface
from serverbench.apps.registry import (
    BUILTIN_APPS,
    SEED_MSISDN,
    App,
    ExpectedResponse,
    UserAppOptions,
    resolve_app,
)
from serverbench.errors import UsageError
from serverbench.plan.model import app_from_record, app_record


def test_builtin_apps_resolve_by_name() -> None:
    flask_app = resolve_app("seed-flask")
    assert flask_app is BUILTIN_APPS["seed-flask"]
    assert flask_app.interface == "wsgi"
    assert flask_app.import_string == "serverbench.apps.builtin.flask_app:app"
    assert flask_app.load_path == f"/api/v2/{SEED_MSISDN}"
    assert flask_app.builtin
    assert flask_app.search_path is None
    fastapi_app = resolve_app("seed-fastapi")
    assert fastapi_app.interface == "asgi"
    assert fastapi_app.expected.json_content_type


def test_builtin_source_file_exists_and_user_app_has_none(tmp_path: Path) -> None:
    for app in BUILTIN_APPS.values():
        assert app.source_file is not None
        assert app.source_file.is_file(), app.source_file
    user = resolve_app("mod:app", UserAppOptions(app_dir=str(tmp_path)))
    assert user.source_file is None


def test_user_app_defaults_to_wsgi_at_root_in_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = resolve_app("myproject.wsgi:application")
    assert app == App(
        name="myproject.wsgi:application",
        import_string="myproject.wsgi:application",
        interface="wsgi",
        path_template="/",
        expected=ExpectedResponse(status=200),
        search_path=str(tmp_path),
    )
    assert app.load_path == "/"


def test_user_app_with_every_option(tmp_path: Path) -> None:
    options = UserAppOptions(
        interface="asgi",
        path="/users/{msisdn}/status",
        app_dir=str(tmp_path),
        expect_status=201,
        expect_json='{"id": "{msisdn}", "tags": ["{msisdn}", 1]}',
        expect_regex=r"\d+",
    )
    app = resolve_app("pkg.main:app", options)
    assert app.interface == "asgi"
    assert app.path_for("42") == "/users/42/status"
    assert app.load_path == f"/users/{SEED_MSISDN}/status"
    assert app.search_path == str(tmp_path.resolve())
    assert app.expected == ExpectedResponse(
        status=201,
        json_body={"id": "{msisdn}", "tags": ["{msisdn}", 1]},
        body_regex=r"\d+",
    )
    assert not app.builtin


def test_relative_app_dir_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path)
    app = resolve_app("m:a", UserAppOptions(app_dir="src"))
    assert app.search_path == str(tmp_path / "src")


@pytest.mark.parametrize(
    ("spec", "options", "fragment"),
    [
        ("nope", UserAppOptions(), "unknown app 'nope'; use seed-flask, seed-fastapi, a workload"),
        ("seed_flask", UserAppOptions(), "unknown app"),
        ("module", UserAppOptions(), "module:attribute"),
        ("module:", UserAppOptions(), "module:attribute"),
        (":app", UserAppOptions(), "module:attribute"),
        ("my-module:app", UserAppOptions(), "module:attribute"),
        ("mod:app()", UserAppOptions(), "module:attribute"),
        ("1mod:app", UserAppOptions(), "module:attribute"),
        ("mod:app", UserAppOptions(interface="rsgi"), "use --interface wsgi or asgi"),
        ("mod:app", UserAppOptions(path="health"), "must start with '/'; for example --path"),
        ("mod:app", UserAppOptions(expect_json="{status: ok}"), "--expect-json is not valid JSON"),
        ("mod:app", UserAppOptions(expect_json=""), "quote it for the shell"),
        ("mod:app", UserAppOptions(expect_regex="(unclosed"), "--expect-regex is not a valid"),
        ("mod:app", UserAppOptions(expect_status=99), "--expect-status 99 is not an HTTP status"),
        ("mod:app", UserAppOptions(expect_status=600), "(100-599)"),
        ("mod:app", UserAppOptions(app_dir="/no/such/dir"), "--app-dir '/no/such/dir' is not a"),
    ],
)
def test_bad_input_is_a_usage_error_saying_what_to_do(
    spec: str, options: UserAppOptions, fragment: str
) -> None:
    with pytest.raises(UsageError, match="; ") as raised:
        resolve_app(spec, options)
    message = str(raised.value)
    assert fragment in message
    assert "\n" not in message


def test_app_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "app.py"
    a_file.write_text("")
    with pytest.raises(UsageError, match="is not a directory"):
        resolve_app("app:app", UserAppOptions(app_dir=str(a_file)))


def test_body_for_fills_msisdn_everywhere_in_the_template() -> None:
    expected = ExpectedResponse(
        json_body={
            "msisdn": "{msisdn}",
            "nested": {"list": ["a{msisdn}b", 3, None, True], "n": 1.5},
            "{msisdn}": "keys stay",
        }
    )
    assert expected.body_for("555") == {
        "msisdn": "555",
        "nested": {"list": ["a555b", 3, None, True], "n": 1.5},
        "{msisdn}": "keys stay",
    }
    assert ExpectedResponse(json_body="{msisdn}").body_for("7") == "7"
    assert ExpectedResponse(json_body=None).body_for("7") is None
    assert BUILTIN_APPS["seed-flask"].expected.body_for("0123456789") == {
        "msisdn": "0123456789",
        "status": "ok",
    }


def test_body_for_does_not_change_the_template() -> None:
    expected = ExpectedResponse(json_body={"a": ["{msisdn}"]})
    expected.body_for("1")
    assert expected.json_body == {"a": ["{msisdn}"]}


@pytest.mark.parametrize("name", sorted(BUILTIN_APPS))
def test_builtin_app_round_trips_through_its_record(name: str) -> None:
    app = BUILTIN_APPS[name]
    record = app_record(app)
    assert record.load_path == app.load_path
    assert app_from_record(record) == app


def test_user_app_round_trips_through_its_record(tmp_path: Path) -> None:
    app = resolve_app(
        "pkg.app:make.app",
        UserAppOptions(
            interface="asgi",
            path="/x/{msisdn}",
            app_dir=str(tmp_path),
            expect_status=404,
            expect_json='[1, "{msisdn}"]',
            expect_regex="^x",
        ),
    )
    assert app_from_record(app_record(app)) == app


# --- detect_interface --------------------------------------------------------------------


def wsgi_function(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


async def asgi_function(scope: Any, receive: Any, send: Any) -> None:
    return None


class AsyncCallable:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        return None


class SyncWsgiCallable:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


class SyncAsgiLookalike:
    """Middleware style: a plain __call__ taking (scope, receive, send) that returns a coroutine."""

    def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        return asgi_function(scope, receive, send)


def one_argument(request: Any) -> None:
    return None


flask_app = Flask(__name__)
fastapi_app = FastAPI()


@pytest.mark.parametrize(
    ("obj", "interface"),
    [
        (wsgi_function, "wsgi"),
        (flask_app, "wsgi"),
        (SyncWsgiCallable(), "wsgi"),
        (asgi_function, "asgi"),
        (fastapi_app, "asgi"),
        (AsyncCallable(), "asgi"),
        (SyncAsgiLookalike(), "asgi"),
        (AsyncCallable().__call__, "asgi"),
        (one_argument, None),
        (42, None),
        ("module:app", None),
        (None, None),
        (object(), None),
    ],
    ids=lambda value: type(value).__name__,
)
def test_detect_interface(obj: Any, interface: str | None) -> None:
    assert detect_interface(obj) == interface
