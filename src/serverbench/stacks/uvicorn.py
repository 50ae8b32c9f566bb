"""Uvicorn: the seed report's ASGI server, with uvloop and httptools (uvicorn[standard])."""

from __future__ import annotations

from typing import ClassVar

from serverbench.apps.registry import Interface
from serverbench.stacks.base import (
    Component,
    LaunchPlan,
    Setting,
    StackContext,
    app_env,
    asgi_target,
    backlog_default,
    choice,
    count,
    resolve_settings,
    workers_per_cpu,
)
from serverbench.stacks.interpreter import Interpreter


class Uvicorn:
    name: ClassVar[str] = "uvicorn"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "uvicorn with uvloop + httptools; WSGI apps through a2wsgi"
    model: ClassVar[str] = (
        "event loop: each worker process runs one asyncio (uvloop) loop that multiplexes many "
        "connections; a WSGI app runs in a thread pool behind the a2wsgi adapter"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"asgi", "wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("uvicorn", "uvloop", "httptools", "a2wsgi")
    settings: ClassVar[tuple[Setting, ...]] = (
        count(
            "workers",
            workers_per_cpu,
            "worker processes",
            "uvicorn docs: one worker per CPU core (--workers / WEB_CONCURRENCY)",
        ),
        count("backlog", backlog_default, "listen backlog", "uvicorn default 2048"),
        count("keep_alive", 5, "--timeout-keep-alive seconds", "uvicorn default", minimum=0),
        choice(
            "loop",
            ("uvloop", "asyncio"),
            "uvloop",
            "event loop (asyncio with --workers has a 44 ms Nagle floor, uvicorn#3149)",
            "uvicorn[standard]",
        ),
        choice("http", ("httptools", "h11"), "httptools", "HTTP parser", "uvicorn[standard]"),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        missing = python.missing("uvicorn", "uvloop", "httptools", "a2wsgi")
        if missing:
            return python.missing_module_reason(missing, "uvicorn[standard]", "a2wsgi")
        return None

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        env = app_env(ctx)
        target, notes = asgi_target(ctx, env)
        argv = (
            ctx.python,
            "-m",
            "uvicorn",
            "--host",
            ctx.host,
            "--port",
            str(ctx.port),
            "--workers",
            str(settings["workers"]),
            "--backlog",
            str(settings["backlog"]),
            "--timeout-keep-alive",
            str(settings["keep_alive"]),
            "--loop",
            str(settings["loop"]),
            "--http",
            str(settings["http"]),
            "--no-access-log",
            "--log-level",
            "warning",
            target,
        )
        return LaunchPlan(
            components=(Component(name="uvicorn", argv=argv, ready=(ctx.front,), env=env),),
            front=ctx.front,
            settings=settings,
            notes=notes,
        )
