"""Pure tests of the stack plugins: plans (argv, env, settings), overrides and selection."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest

from serverbench.apps.registry import BUILTIN_APPS, App, UserAppOptions, resolve_app
from serverbench.errors import UsageError
from serverbench.plan.selection import parse_overrides, select_stacks
from serverbench.run.host import LOCAL
from serverbench.stacks import SEED_STACKS, STACKS, get_stack
from serverbench.stacks.base import (
    WSGI_AS_ASGI,
    Component,
    LaunchPlan,
    Stack,
    StackContext,
    TcpEndpoint,
)
from serverbench.stacks.interpreter import own

PY = "/opt/python/bin/python3"
FLASK = BUILTIN_APPS["seed-flask"]
FASTAPI = BUILTIN_APPS["seed-fastapi"]


def context(
    app: App = FLASK,
    *,
    cpus: int = 1,
    overrides: Mapping[str, str] | None = None,
    port: int = 8123,
) -> StackContext:
    return StackContext(
        app=app,
        host="127.0.0.1",
        port=port,
        run_dir=Path("/tmp/serverbench-test-run"),
        ports=LOCAL.free_port,
        server_cpu_count=cpus,
        overrides=overrides or {},
        interpreter=replace(own(), executable=PY),
    )


def only_component(plan: LaunchPlan) -> Component:
    assert len(plan.components) == 1
    return plan.components[0]


FRONT = TcpEndpoint(host="127.0.0.1", port=8123)


# --- exact plans --------------------------------------------------------------------------


def test_gunicorn_plan_with_seed_flask() -> None:
    plan = get_stack("gunicorn").plan(context(FLASK, cpus=1))
    component = only_component(plan)
    assert component.argv == (
        PY,
        "-m",
        "gunicorn",
        "--no-control-socket",
        "--bind",
        "127.0.0.1:8123",
        "--workers",
        "3",
        "--backlog",
        "2048",
        "--keep-alive",
        "2",
        "--log-level",
        "warning",
        "--threads",
        "1",
        "serverbench.apps.builtin.flask_app:app",
    )
    assert component.name == "gunicorn"
    assert component.ready == (FRONT,)
    assert dict(component.env) == {"PYTHONUNBUFFERED": "1"}
    assert component.stop_signal == signal.SIGTERM
    assert component.pinned
    assert component.files == ()
    assert plan.front == FRONT
    assert dict(plan.settings) == {"workers": 3, "threads": 1, "backlog": 2048, "keep_alive": 2}
    assert plan.notes == ()


def test_uvicorn_plan_with_seed_flask_goes_through_a2wsgi() -> None:
    plan = get_stack("uvicorn").plan(context(FLASK, cpus=1))
    component = only_component(plan)
    assert component.argv == (
        PY,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--workers",
        "1",
        "--backlog",
        "2048",
        "--timeout-keep-alive",
        "5",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "serverbench.shims.wsgi_as_asgi:app",
    )
    assert component.argv[-1] == WSGI_AS_ASGI
    assert dict(component.env) == {
        "PYTHONUNBUFFERED": "1",
        "SERVERBENCH_WSGI_APP": "serverbench.apps.builtin.flask_app:app",
    }
    assert plan.notes == (
        f"WSGI app served through a2wsgi.WSGIMiddleware (a2wsgi {metadata.version('a2wsgi')})",
    )
    assert dict(plan.settings) == {
        "workers": 1,
        "backlog": 2048,
        "keep_alive": 5,
        "loop": "uvloop",
        "http": "httptools",
    }


def test_uvicorn_plan_with_seed_fastapi_loads_the_app_directly() -> None:
    plan = get_stack("uvicorn").plan(context(FASTAPI, cpus=1))
    component = only_component(plan)
    assert component.argv == (
        PY,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--workers",
        "1",
        "--backlog",
        "2048",
        "--timeout-keep-alive",
        "5",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "serverbench.apps.builtin.fastapi_app:app",
    )
    assert dict(component.env) == {"PYTHONUNBUFFERED": "1"}
    assert plan.notes == ()


def test_bjoern_plan_with_seed_flask() -> None:
    plan = get_stack("bjoern").plan(context(FLASK, cpus=1))
    component = only_component(plan)
    assert component.argv == (
        PY,
        "-m",
        "serverbench.shims.bjoern_serve",
        "serverbench.apps.builtin.flask_app:app",
        "127.0.0.1",
        "8123",
        "--processes",
        "1",
        "--backlog",
        "1024",
    )
    assert component.ready == (FRONT,)
    assert dict(component.env) == {"PYTHONUNBUFFERED": "1"}
    assert dict(plan.settings) == {"processes": 1, "backlog": 1024}


def test_user_app_folder_is_on_the_pythonpath_of_every_server(tmp_path: Path) -> None:
    app = resolve_app("tiny_wsgi:application", UserAppOptions(app_dir=str(tmp_path)))
    for name in SEED_STACKS:
        component = only_component(get_stack(name).plan(context(app)))
        assert component.env["PYTHONPATH"] == str(tmp_path.resolve()), name
    uvicorn = only_component(get_stack("uvicorn").plan(context(app)))
    assert uvicorn.env["SERVERBENCH_WSGI_APP"] == "tiny_wsgi:application"


def test_plan_does_not_share_env_between_calls() -> None:
    uvicorn = get_stack("uvicorn")
    first = only_component(uvicorn.plan(context(FLASK)))
    second = only_component(uvicorn.plan(context(FASTAPI)))
    assert "SERVERBENCH_WSGI_APP" in first.env
    assert "SERVERBENCH_WSGI_APP" not in second.env


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "gunicorn_workers", "uvicorn_workers"),
    [(1, 3, 1), (2, 5, 2), (4, 9, 4), (0, 1, 1)],
)
def test_worker_defaults_follow_server_cpu_count(
    cpus: int, gunicorn_workers: int, uvicorn_workers: int
) -> None:
    ctx = context(FLASK, cpus=cpus)
    assert get_stack("gunicorn").plan(ctx).settings["workers"] == gunicorn_workers
    assert get_stack("uvicorn").plan(ctx).settings["workers"] == uvicorn_workers
    assert get_stack("bjoern").plan(ctx).settings["processes"] == 1


def test_overrides_reach_the_command_line() -> None:
    gunicorn = get_stack("gunicorn").plan(
        context(overrides={"workers": "4", "threads": "8", "keep_alive": "0"})
    )
    argv = only_component(gunicorn).argv
    assert argv[argv.index("--workers") + 1] == "4"
    assert argv[argv.index("--threads") + 1] == "8"
    assert argv[argv.index("--keep-alive") + 1] == "0"
    assert gunicorn.settings["workers"] == 4

    uvicorn = get_stack("uvicorn").plan(context(overrides={"loop": "asyncio", "http": "h11"}))
    argv = only_component(uvicorn).argv
    assert argv[argv.index("--loop") + 1] == "asyncio"
    assert argv[argv.index("--http") + 1] == "h11"

    bjoern = get_stack("bjoern").plan(context(overrides={"processes": "2", "backlog": "64"}))
    assert only_component(bjoern).argv[-4:] == ("--processes", "2", "--backlog", "64")


@pytest.mark.parametrize(
    ("stack", "overrides", "message"),
    [
        ("gunicorn", {"workers": "four"}, "gunicorn.workers=four: expected a whole number"),
        ("gunicorn", {"workers": ""}, "gunicorn.workers=: expected a whole number"),
        ("gunicorn", {"workers": "2.5"}, "expected a whole number"),
        ("gunicorn", {"workers": "0"}, "gunicorn.workers=0: must be at least 1"),
        ("gunicorn", {"keep_alive": "-1"}, "gunicorn.keep_alive=-1: must be at least 0"),
        ("bjoern", {"processes": "-3"}, "bjoern.processes=-3: must be at least 1"),
        ("uvicorn", {"loop": "trio"}, "uvicorn.loop=trio: expected one of uvloop, asyncio"),
        ("uvicorn", {"http": "h2"}, "expected one of httptools, h11"),
        ("bjoern", {"workers": "2"}, "stack bjoern has no setting 'workers'; its settings are: "),
    ],
)
def test_bad_setting_values_are_usage_errors(
    stack: str, overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError) as raised:
        get_stack(stack).plan(context(overrides=overrides))
    assert message in str(raised.value)


def test_parse_overrides_applies_a_bare_name_to_every_stack_that_has_it() -> None:
    stacks = select_stacks(list(SEED_STACKS))
    overrides = parse_overrides(
        ["workers=4", "bjoern.processes=2", "backlog=512"], stacks, server_cpus=1
    )
    assert overrides == {
        "gunicorn": {"workers": "4", "backlog": "512"},
        "uvicorn": {"workers": "4", "backlog": "512"},
        "bjoern": {"processes": "2", "backlog": "512"},
    }


def test_parse_overrides_later_values_win() -> None:
    stacks = select_stacks(["gunicorn"])
    assert parse_overrides(["workers=4", "gunicorn.workers=6"], stacks, server_cpus=1) == {
        "gunicorn": {"workers": "6"}
    }


def test_parse_overrides_with_nothing_to_set() -> None:
    assert parse_overrides([], select_stacks(["uvicorn", "bjoern"]), server_cpus=1) == {
        "uvicorn": {},
        "bjoern": {},
    }


def test_parsed_overrides_make_the_plan() -> None:
    stacks = select_stacks(["bjoern"])
    overrides = parse_overrides(["bjoern.processes=2"], stacks, server_cpus=1)
    plan = stacks[0].plan(context(overrides=overrides["bjoern"]))
    assert plan.settings["processes"] == 2


@pytest.mark.parametrize(
    ("pairs", "names", "message"),
    [
        (["workers"], ["gunicorn"], "--set 'workers': expected NAME=VALUE or STACK.NAME=VALUE"),
        (["=4"], ["gunicorn"], "expected NAME=VALUE"),
        (["nope=1"], ["gunicorn"], "--set 'nope=1': no selected stack has a setting 'nope'"),
        (["processes=2"], ["gunicorn", "uvicorn"], "no selected stack has a setting 'processes'"),
        (["bjoern.processes=2"], ["gunicorn"], "stack 'bjoern' is not selected; add --stack"),
        (["nope.workers=2"], ["gunicorn"], "unknown stack 'nope'; `serverbench stacks` lists"),
    ],
)
def test_parse_overrides_refuses(pairs: list[str], names: list[str], message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_overrides(pairs, select_stacks(names), server_cpus=1)
    assert message in str(raised.value)
    assert "; " in str(raised.value) or "e.g." in str(raised.value)


def test_unknown_setting_for_a_selected_stack_is_refused_up_front() -> None:
    stacks = select_stacks(["bjoern"])
    with pytest.raises(UsageError, match="stack bjoern has no setting 'threads'"):
        parse_overrides(["bjoern.threads=2"], stacks, server_cpus=1)
    # and still at plan time, for a plan built without the command line
    with pytest.raises(UsageError, match="stack bjoern has no setting 'threads'"):
        stacks[0].plan(context(overrides={"threads": "2"}))


# --- selection ----------------------------------------------------------------------------


def names(stacks: list[Stack]) -> list[str]:
    return [stack.name for stack in stacks]


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (None, list(SEED_STACKS)),
        ([], list(SEED_STACKS)),
        (["all"], list(STACKS)),
        (["bjoern"], ["bjoern"]),
        (["bjoern,gunicorn"], ["bjoern", "gunicorn"]),
        (["uvicorn", "bjoern, gunicorn"], ["uvicorn", "bjoern", "gunicorn"]),
        (["gunicorn,gunicorn", "gunicorn"], ["gunicorn"]),
        (["bjoern", "all"], ["bjoern", *(name for name in STACKS if name != "bjoern")]),
        (["all", "all,bjoern"], list(STACKS)),
        (["uvicorn,,"], ["uvicorn"]),
    ],
)
def test_select_stacks(asked: list[str] | None, expected: list[str]) -> None:
    assert names(select_stacks(asked)) == expected


def test_select_stacks_default_is_used_only_when_nothing_is_asked() -> None:
    assert names(select_stacks(None, default=["uvicorn"])) == ["uvicorn"]
    assert names(select_stacks(["bjoern"], default=["uvicorn"])) == ["bjoern"]


@pytest.mark.parametrize("asked", [["nope"], ["gunicorn,nope"], ["Gunicorn"], ["all,x"]])
def test_select_unknown_stack(asked: list[str]) -> None:
    with pytest.raises(UsageError) as raised:
        select_stacks(asked)
    message = str(raised.value)
    assert message.startswith("unknown stack ")
    assert f"`serverbench stacks` lists them ({', '.join(STACKS)})" in message


# --- parity: every registered stack is complete -------------------------------------------


@pytest.mark.parametrize("name", list(STACKS))
def test_every_stack_is_complete(name: str) -> None:
    stack = get_stack(name)
    assert stack.name == name
    assert stack.summary.strip()
    assert "\n" not in stack.summary
    assert stack.model.strip()
    assert stack.interfaces
    assert stack.interfaces <= {"wsgi", "asgi"}
    assert stack.settings
    setting_names = [setting.name for setting in stack.settings]
    assert len(setting_names) == len(set(setting_names))
    for setting in stack.settings:
        assert setting.source.strip(), f"{name}.{setting.name} has no source"
        assert setting.help.strip(), f"{name}.{setting.name} has no help"
        default = setting.default(context())
        assert isinstance(default, setting.kind), f"{name}.{setting.name}"
        if setting.choices:
            assert default in setting.choices
        if setting.minimum is not None:
            assert isinstance(default, int)
            assert default >= setting.minimum


@pytest.mark.parametrize("name", list(STACKS))
def test_every_stack_plans_every_interface_it_serves(name: str) -> None:
    stack = get_stack(name)
    for app in (FLASK, FASTAPI):
        if app.interface not in stack.interfaces:
            continue
        plan = stack.plan(context(app))
        assert plan.front == FRONT
        assert plan.components
        assert set(plan.settings) == {setting.name for setting in stack.settings}
        for component in plan.components:
            assert component.argv
            assert component.ready


def test_seed_stacks_are_registered_and_available_here() -> None:
    assert set(SEED_STACKS) <= set(STACKS)
    for name in SEED_STACKS:
        stack = get_stack(name)
        assert stack.packages
        assert stack.unavailable_reason(own()) is None, stack.name
