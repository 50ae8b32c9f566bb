"""uWSGI in HTTP router mode (`--http` + `--http-keepalive`) with pre-forked Python workers.

Why the router and not a worker socket speaking HTTP: with `--http11-socket` each sync worker
holds one keep-alive connection for as long as the client keeps it, so with N workers only N
clients are served and the rest starve (wrk still prints a throughput, from N connections);
`--http-socket` answers HTTP/1.1 without `Connection: close` and then closes, so wrk counts a
read error for every request. The `--http` router is an extra event-driven process that keeps
client connections alive and passes each request to a free worker over the uwsgi protocol:
every client is served, no request looks like an error, at the cost of one more hop. uWSGI's
docs give the same advice: `--http` when clients reach uWSGI directly.
"""

from __future__ import annotations

from pathlib import Path
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
    venv_tool,
    workers_per_cpu,
)
from serverbench.stacks.interpreter import Interpreter

THINGS_TO_KNOW = "https://uwsgi-docs.readthedocs.io/en/latest/ThingsToKnow.html"


class Uwsgi:
    name: ClassVar[str] = "uwsgi"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "uWSGI, pre-fork workers behind its keep-alive HTTP router (--http)"
    model: ClassVar[str] = (
        "pre-fork plus router: a master forks sync worker processes and one HTTP router process; "
        "the router (event loop, C) keeps the client connections alive and forwards each request "
        "to a free worker over the uwsgi protocol on a local socket. Chosen over --http11-socket "
        "(only one client per worker is served, the rest starve) and --http-socket (closes every "
        "connection without Connection: close, so wrk counts a read error per request)"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("uWSGI",)
    settings: ClassVar[tuple[Setting, ...]] = (
        count(
            "processes",
            workers_per_cpu,
            "worker processes (the HTTP router is one more)",
            "uWSGI docs: no magic number; start with one process per core",
        ),
        count(
            "listen",
            1024,
            "listen backlog of uWSGI's sockets (needs net.core.somaxconn >= it)",
            "uWSGI's default 100 is too small under load; 1024 as its docs suggest",
        ),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        if not Path(python.tool("uwsgi")).exists():
            return (
                f"the uwsgi program is not installed next to {python.executable}; run: "
                f"{python.pip_install('uwsgi')} (it compiles: needs gcc and the Python headers)"
            )
        return None

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        argv = (
            venv_tool(ctx, "uwsgi"),
            # SIGTERM means "brutally reload" before uWSGI 2.1 without --die-on-term
            "--master",
            "--die-on-term",
            "--need-app",
            "--strict",
            "--single-interpreter",
            "--disable-logging",
            "--http",
            str(ctx.front),
            "--http-keepalive",
            "--processes",
            str(settings["processes"]),
            "--listen",
            str(settings["listen"]),
            "--module",
            ctx.app.import_string,
        )
        return LaunchPlan(
            components=(Component(name="uwsgi", argv=argv, ready=(ctx.front,), env=app_env(ctx)),),
            front=ctx.front,
            settings=settings,
            notes=(
                "--http router with --http-keepalive: client keep-alive, one extra router "
                "process (--http11-socket would starve all but one client per worker, "
                "--http-socket closes every connection and wrk counts read errors)",
            ),
        )
