"""Gunicorn with its sync worker: the seed report's pre-fork WSGI server.

Also the argv and settings every gunicorn stack shares (`gunicorn_variants`, `nginx_gunicorn`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from serverbench.apps.registry import Interface
from serverbench.stacks.base import (
    Component,
    LaunchPlan,
    Setting,
    SettingValue,
    StackContext,
    app_env,
    backlog_default,
    count,
    resolve_settings,
)
from serverbench.stacks.interpreter import Interpreter

DOCS = "https://docs.gunicorn.org/en/stable/design.html#how-many-workers"


def gunicorn_argv(ctx: StackContext, settings: Mapping[str, SettingValue], bind: str) -> list[str]:
    """The options every gunicorn stack shares (the worker class is added by each stack)."""
    return [
        ctx.python,
        "-m",
        "gunicorn",
        # gunicorn >= 25.1 otherwise creates $HOME/.gunicorn/gunicorn.ctl, shared by every instance
        "--no-control-socket",
        "--bind",
        bind,
        "--workers",
        str(settings["workers"]),
        "--backlog",
        str(settings["backlog"]),
        "--keep-alive",
        str(settings["keep_alive"]),
        "--log-level",
        "warning",
    ]


BACKLOG = count("backlog", backlog_default, "listen backlog", "gunicorn default 2048")
KEEP_ALIVE = count(
    "keep_alive",
    2,
    "seconds to keep an idle connection (ignored by the sync worker)",
    "gunicorn default",
    minimum=0,
)


def sync_workers_default(ctx: StackContext) -> int:
    return 2 * ctx.server_cpu_count + 1


def gunicorn_unavailable_reason(python: Interpreter) -> str | None:
    if python.missing("gunicorn"):
        return python.missing_module_reason("gunicorn", "gunicorn==27.0.1")
    return None


class Gunicorn:
    name: ClassVar[str] = "gunicorn"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = False
    summary: ClassVar[str] = "gunicorn, pre-fork sync workers"
    model: ClassVar[str] = (
        "pre-fork: a master process forks worker processes; each sync worker handles one request "
        "at a time and closes the connection after it (no keep-alive)"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("gunicorn",)
    settings: ClassVar[tuple[Setting, ...]] = (
        count(
            "workers",
            sync_workers_default,
            "worker processes",
            f"gunicorn docs: (2 x num_cores) + 1 ({DOCS})",
        ),
        count(
            "threads",
            1,
            "threads per worker (above 1 gunicorn switches to the gthread worker)",
            "gunicorn default",
        ),
        BACKLOG,
        KEEP_ALIVE,
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        return gunicorn_unavailable_reason(python)

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        argv = gunicorn_argv(ctx, settings, str(ctx.front))
        argv += ["--threads", str(settings["threads"]), ctx.app.import_string]
        return LaunchPlan(
            components=(
                Component(name="gunicorn", argv=tuple(argv), ready=(ctx.front,), env=app_env(ctx)),
            ),
            front=ctx.front,
            settings=settings,
        )
