"""Hypercorn: an asyncio ASGI server (uvloop worker) that also serves WSGI apps natively."""

from __future__ import annotations

from typing import ClassVar

from serverbench.apps.registry import Interface
from serverbench.stacks.base import (
    Component,
    LaunchPlan,
    Setting,
    StackContext,
    app_env,
    backlog_default,
    choice,
    count,
    resolve_settings,
    workers_per_cpu,
)
from serverbench.stacks.interpreter import Interpreter


class Hypercorn:
    name: ClassVar[str] = "hypercorn"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "hypercorn with the uvloop worker; WSGI apps served natively"
    model: ClassVar[str] = (
        "event loop: each worker process runs one uvloop loop multiplexing many connections "
        "(pure-Python h11 parsing); a WSGI app is served natively, each request on a thread "
        "of the loop's executor"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"asgi", "wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("hypercorn", "uvloop", "h11")
    settings: ClassVar[tuple[Setting, ...]] = (
        count(
            "workers",
            workers_per_cpu,
            "worker processes",
            "hypercorn docs: -w, one worker per core",
        ),
        choice(
            "worker_class",
            ("uvloop", "asyncio"),
            "uvloop",
            "-k worker class (event loop)",
            "hypercorn docs: -k uvloop (hypercorn[uvloop]) for speed",
        ),
        count(
            "backlog",
            backlog_default,
            "listen backlog",
            "hypercorn's default 100 is below the load's connection count; "
            "2048 as gunicorn and uvicorn",
        ),
        count("keep_alive", 5, "--keep-alive seconds", "hypercorn default", minimum=0),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        missing = python.missing("hypercorn", "uvloop")
        if missing:
            return python.missing_module_reason(missing, "hypercorn[uvloop]")
        return None

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        argv = (
            ctx.python,
            "-m",
            "hypercorn",
            "--bind",
            str(ctx.front),
            "--workers",
            str(settings["workers"]),
            "--worker-class",
            str(settings["worker_class"]),
            "--backlog",
            str(settings["backlog"]),
            "--keep-alive",
            str(settings["keep_alive"]),
            "--log-level",
            "warning",
            # the "wsgi:"/"asgi:" prefix tells hypercorn the interface instead of guessing it
            f"{ctx.app.interface}:{ctx.app.import_string}",
        )
        notes = (
            ("WSGI app served natively by hypercorn (no adapter)",)
            if ctx.app.interface == "wsgi"
            else ()
        )
        return LaunchPlan(
            components=(
                Component(name="hypercorn", argv=argv, ready=(ctx.front,), env=app_env(ctx)),
            ),
            front=ctx.front,
            settings=settings,
            notes=notes,
        )
