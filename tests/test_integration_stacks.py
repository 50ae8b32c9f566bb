"""The seed stacks for real: start, verify, stop, and nothing left listening or running."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from serverbench.apps.importer import inspect_app
from serverbench.apps.registry import BUILTIN_APPS, App, UserAppOptions, resolve_app
from serverbench.run.host import LOCAL
from serverbench.run.lifecycle import running_stack
from serverbench.run.verify import verify, wait_until
from serverbench.stacks import get_stack
from serverbench.stacks.base import StackContext
from serverbench.stacks.interpreter import own
from tests.conftest import assert_stopped, listeners

if TYPE_CHECKING:
    from tests.conftest import TinyApp

pytestmark = pytest.mark.integration

SERVER_CPU = str(min(os.sched_getaffinity(0)))


def start_verify_stop(
    tmp_path: Path,
    stack_name: str,
    app: App,
    overrides: Mapping[str, str] | None = None,
    expected_processes: int | None = None,
) -> None:
    stack = get_stack(stack_name)
    assert stack.unavailable_reason(own()) is None
    ctx = StackContext(
        interpreter=own(),
        app=app,
        host="127.0.0.1",
        port=LOCAL.free_port(),
        run_dir=tmp_path / "run",
        ports=LOCAL.free_port,
        server_cpu_count=1,
        overrides=overrides or {},
    )
    with running_stack(stack, ctx, cpus=SERVER_CPU, ready_timeout_s=20) as running:
        assert running.exited() is None
        assert verify(running.front, app, requests=3) is None
        (server,) = running.processes
        if expected_processes is not None:
            # a master may accept before it has forked all its workers
            wait_until(lambda: len(server.tree_pids()) >= expected_processes, timeout_s=5)
        tree = [psutil.Process(pid) for pid in server.tree_pids()]
        if expected_processes is not None:
            assert len(tree) == expected_processes, [p.cmdline() for p in tree]
        for member in tree:
            assert member.cpu_affinity() == [int(SERVER_CPU)]
        assert listeners(ctx.port)
    assert_stopped(tree, [ctx.port])


def test_gunicorn_with_seed_flask(tmp_path: Path) -> None:
    # a master and 2 x 1 + 1 sync workers
    start_verify_stop(tmp_path, "gunicorn", BUILTIN_APPS["seed-flask"], expected_processes=4)


def test_uvicorn_with_seed_flask(tmp_path: Path) -> None:
    start_verify_stop(tmp_path, "uvicorn", BUILTIN_APPS["seed-flask"])


def test_uvicorn_with_seed_fastapi(tmp_path: Path) -> None:
    start_verify_stop(tmp_path, "uvicorn", BUILTIN_APPS["seed-fastapi"])


def test_bjoern_with_seed_flask(tmp_path: Path) -> None:
    start_verify_stop(tmp_path, "bjoern", BUILTIN_APPS["seed-flask"], expected_processes=1)


def test_bjoern_with_two_processes(tmp_path: Path) -> None:
    start_verify_stop(
        tmp_path,
        "bjoern",
        BUILTIN_APPS["seed-flask"],
        overrides={"processes": "2"},
        expected_processes=3,
    )


def test_uvicorn_with_a_users_wsgi_app(tmp_path: Path, tiny_wsgi_app: TinyApp) -> None:
    options = UserAppOptions(
        app_dir=str(tiny_wsgi_app.app_dir),
        path=tiny_wsgi_app.path,
        expect_json=tiny_wsgi_app.expect_json,
    )
    app = inspect_app(resolve_app(tiny_wsgi_app.import_string, options), interface_given=False)
    assert app.interface == "wsgi"
    start_verify_stop(tmp_path, "uvicorn", app)
