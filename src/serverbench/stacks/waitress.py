"""waitress: a pure-Python WSGI server, one process with a thread pool."""

from __future__ import annotations

from typing import ClassVar

from serverbench.apps.registry import Interface
from serverbench.stacks.base import (
    Component,
    LaunchPlan,
    Setting,
    StackContext,
    app_env,
    count,
    resolve_settings,
)
from serverbench.stacks.interpreter import Interpreter


class Waitress:
    name: ClassVar[str] = "waitress"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "waitress, pure-Python WSGI server (one process, thread pool)"
    model: ClassVar[str] = (
        "one process: an asyncore-style loop accepts and parses connections and hands requests "
        "to a pool of threads, all under one GIL, so it uses at most about one CPU"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("waitress",)
    settings: ClassVar[tuple[Setting, ...]] = (
        count("threads", 4, "threads running the app", "waitress default 4"),
        count(
            "connection_limit",
            100,
            "open connections waitress accepts; the rest wait in the backlog",
            "waitress default 100",
        ),
        count("backlog", 1024, "listen backlog", "waitress default 1024"),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        if python.missing("waitress"):
            return python.missing_module_reason("waitress", "waitress")
        return None

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        argv = (
            ctx.python,
            "-m",
            "waitress",
            f"--listen={ctx.front}",
            f"--threads={settings['threads']}",
            f"--connection-limit={settings['connection_limit']}",
            f"--backlog={settings['backlog']}",
            ctx.app.import_string,
        )
        return LaunchPlan(
            components=(
                Component(name="waitress", argv=argv, ready=(ctx.front,), env=app_env(ctx)),
            ),
            front=ctx.front,
            settings=settings,
            notes=(
                "single process: one GIL for all threads",
                f"accepts at most {settings['connection_limit']} connections at once "
                "(connection_limit); more clients wait in the listen backlog",
            ),
        )
