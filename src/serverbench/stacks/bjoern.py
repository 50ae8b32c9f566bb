"""bjoern: the seed report's C WSGI server on libev; one process, or N sharing the port."""

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

INSTALL_HINT = "needs libev: apt-get install libev-dev"


def bjoern_argv(ctx: StackContext, port: int, processes: int, backlog: int) -> tuple[str, ...]:
    return (
        ctx.python,
        "-m",
        "serverbench.shims.bjoern_serve",
        ctx.app.import_string,
        ctx.host,
        str(port),
        "--processes",
        str(processes),
        "--backlog",
        str(backlog),
    )


class Bjoern:
    name: ClassVar[str] = "bjoern"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "bjoern, single-threaded C WSGI server (N processes via SO_REUSEPORT)"
    model: ClassVar[str] = (
        "C server on a libev event loop, single-threaded: one process serves every connection "
        "with keep-alive; more processes share the port with SO_REUSEPORT and the kernel "
        "spreads connections between them"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("bjoern",)
    settings: ClassVar[tuple[Setting, ...]] = (
        count(
            "processes",
            1,
            "processes sharing the port with SO_REUSEPORT",
            "the seed report ran one bjoern process",
        ),
        count("backlog", 1024, "listen backlog", "bjoern default 1024"),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        if python.missing("bjoern"):
            return (
                python.missing_module_reason("bjoern", "bjoern") + f" (it compiles: {INSTALL_HINT})"
            )
        return None

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        argv = bjoern_argv(ctx, ctx.port, int(settings["processes"]), int(settings["backlog"]))
        return LaunchPlan(
            components=(Component(name="bjoern", argv=argv, ready=(ctx.front,), env=app_env(ctx)),),
            front=ctx.front,
            settings=settings,
        )
