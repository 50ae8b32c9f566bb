"""granian, hypercorn, waitress, uwsgi and the gunicorn worker classes: argv, and for real."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import psutil
import pytest

from serverbench.apps.registry import BUILTIN_APPS, App
from serverbench.run.host import LOCAL
from serverbench.run.lifecycle import running_stack
from serverbench.run.verify import verify
from serverbench.stacks import STACKS, get_stack
from serverbench.stacks.base import WSGI_AS_ASGI, Component, LaunchPlan, StackContext
from serverbench.stacks.interpreter import own
from tests.conftest import assert_stopped

PY = "/opt/venv/bin/python"
FLASK = BUILTIN_APPS["seed-flask"]
FASTAPI = BUILTIN_APPS["seed-fastapi"]
FLASK_TARGET = "serverbench.apps.builtin.flask_app:app"
FASTAPI_TARGET = "serverbench.apps.builtin.fastapi_app:app"
SERVER_CPU = str(min(os.sched_getaffinity(0)))

NEW_STACKS = (
    "granian",
    "hypercorn",
    "waitress",
    "uwsgi",
    "gunicorn-gthread",
    "gunicorn-gevent",
    "gunicorn-uvicorn",
    "gunicorn-asgi",
)
GUNICORN_COMMON = (
    PY,
    "-m",
    "gunicorn",
    "--no-control-socket",
    "--bind",
    "127.0.0.1:8123",
)


def context(
    app: App = FLASK, *, cpus: int = 2, overrides: Mapping[str, str] | None = None
) -> StackContext:
    return StackContext(
        app=app,
        host="127.0.0.1",
        port=8123,
        run_dir=Path("/tmp/sb-more"),
        ports=LOCAL.free_port,
        server_cpu_count=cpus,
        overrides=overrides or {},
        interpreter=replace(own(), executable=PY),
    )


def plan_of(
    name: str, app: App = FLASK, *, cpus: int = 2, overrides: Mapping[str, str] | None = None
) -> tuple[LaunchPlan, Component]:
    plan = get_stack(name).plan(context(app, cpus=cpus, overrides=overrides))
    (component,) = plan.components
    assert component.ready == (plan.front,)
    assert component.pinned
    return plan, component


def test_every_new_stack_is_registered_with_documented_settings() -> None:
    for name in NEW_STACKS:
        assert name in STACKS
        stack = get_stack(name)
        assert stack.name == name
        assert stack.summary
        assert stack.model
        assert stack.packages
        for setting in stack.settings:
            assert setting.source, (name, setting.name)


def test_granian_wsgi_sets_blocking_threads() -> None:
    plan, component = plan_of("granian", FLASK)
    assert component.argv == (
        PY,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--workers",
        "2",
        "--backlog",
        "1024",
        "--blocking-threads",
        "4",
        "--no-access-log",
        "--log-level",
        "warning",
        FLASK_TARGET,
    )
    assert dict(plan.settings) == {"workers": 2, "blocking_threads": 4, "backlog": 1024}


def test_granian_asgi_leaves_blocking_threads_out() -> None:
    plan, component = plan_of("granian", FASTAPI, overrides={"blocking_threads": "8"})
    assert component.argv[3:5] == ("--interface", "asgi")
    assert "--blocking-threads" not in component.argv
    assert component.argv[-1] == FASTAPI_TARGET
    assert plan.settings["blocking_threads"] == 1


@pytest.mark.parametrize(("app", "prefixed"), [(FLASK, "wsgi:"), (FASTAPI, "asgi:")])
def test_hypercorn_names_the_interface(app: App, prefixed: str) -> None:
    plan, component = plan_of("hypercorn", app, cpus=1)
    assert component.argv == (
        PY,
        "-m",
        "hypercorn",
        "--bind",
        "127.0.0.1:8123",
        "--workers",
        "1",
        "--worker-class",
        "uvloop",
        "--backlog",
        "2048",
        "--keep-alive",
        "5",
        "--log-level",
        "warning",
        prefixed + app.import_string,
    )
    assert "SERVERBENCH_WSGI_APP" not in component.env
    assert bool(plan.notes) == (app is FLASK)


def test_waitress() -> None:
    plan, component = plan_of("waitress")
    assert component.argv == (
        PY,
        "-m",
        "waitress",
        "--listen=127.0.0.1:8123",
        "--threads=4",
        "--connection-limit=100",
        "--backlog=1024",
        FLASK_TARGET,
    )
    assert component.name == "waitress"
    assert any("connection_limit" in note for note in plan.notes)


def test_uwsgi_uses_the_keepalive_http_router() -> None:
    plan, component = plan_of("uwsgi")
    assert component.argv == (
        "/opt/venv/bin/uwsgi",
        "--master",
        "--die-on-term",
        "--need-app",
        "--strict",
        "--single-interpreter",
        "--disable-logging",
        "--http",
        "127.0.0.1:8123",
        "--http-keepalive",
        "--processes",
        "2",
        "--listen",
        "1024",
        "--module",
        FLASK_TARGET,
    )
    assert "--http-socket" not in component.argv
    assert "--http11-socket" not in component.argv
    assert dict(plan.settings) == {"processes": 2, "listen": 1024}


def test_gunicorn_gthread() -> None:
    plan, component = plan_of("gunicorn-gthread", cpus=1)
    assert dict(plan.settings) == {"workers": 1, "threads": 4, "backlog": 2048, "keep_alive": 2}
    assert component.argv == (
        *GUNICORN_COMMON,
        "--workers",
        "1",
        "--backlog",
        "2048",
        "--keep-alive",
        "2",
        "--log-level",
        "warning",
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        FLASK_TARGET,
    )


def test_gunicorn_gevent() -> None:
    _, component = plan_of("gunicorn-gevent")
    assert component.argv[6:] == (
        "--workers",
        "2",
        "--backlog",
        "2048",
        "--keep-alive",
        "2",
        "--log-level",
        "warning",
        "--worker-class",
        "gevent",
        "--worker-connections",
        "1000",
        FLASK_TARGET,
    )


def test_gunicorn_uvicorn_wraps_a_wsgi_app_in_a2wsgi() -> None:
    plan, component = plan_of("gunicorn-uvicorn", FLASK)
    assert component.argv[6:] == (
        "--workers",
        "2",
        "--backlog",
        "2048",
        "--keep-alive",
        "5",
        "--log-level",
        "warning",
        "--worker-class",
        "uvicorn_worker.UvicornWorker",
        WSGI_AS_ASGI,
    )
    assert component.env["SERVERBENCH_WSGI_APP"] == FLASK_TARGET
    assert plan.notes == (
        f"WSGI app served through a2wsgi.WSGIMiddleware (a2wsgi {metadata.version('a2wsgi')})",
    )


def test_gunicorn_asgi_loads_an_asgi_app_directly() -> None:
    plan, component = plan_of("gunicorn-asgi", FASTAPI)
    assert component.argv[6:] == (
        "--workers",
        "2",
        "--backlog",
        "2048",
        "--keep-alive",
        "2",
        "--log-level",
        "warning",
        "--worker-class",
        "asgi",
        "--asgi-loop",
        "uvloop",
        FASTAPI_TARGET,
    )
    assert plan.notes == ()


# --- for real ------------------------------------------------------------------------------

CASES = [
    (name, app)
    for name in NEW_STACKS
    for app in (FLASK, FASTAPI)
    if app.interface in get_stack(name).interfaces
]


@pytest.mark.integration
@pytest.mark.parametrize(("name", "app"), CASES, ids=[f"{n}-{a.name}" for n, a in CASES])
def test_stack_serves_and_stops_clean(tmp_path: Path, name: str, app: App) -> None:
    stack = get_stack(name)
    assert stack.unavailable_reason(own()) is None
    ctx = StackContext(
        interpreter=own(),
        app=app,
        host="127.0.0.1",
        port=LOCAL.free_port(),
        run_dir=tmp_path / "run",
        ports=LOCAL.free_port,
        server_cpu_count=1,
    )
    with running_stack(stack, ctx, cpus=SERVER_CPU, ready_timeout_s=20) as running:
        assert verify(running.front, app, requests=3) is None
        (server,) = running.processes
        tree = [psutil.Process(pid) for pid in server.tree_pids()]
        for member in tree:
            assert member.cpu_affinity() == [int(SERVER_CPU)]
    assert_stopped(tree, [ctx.port])
