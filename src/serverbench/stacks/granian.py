"""Granian: a Rust (hyper/tokio) HTTP server that serves WSGI and ASGI apps natively."""

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
    workers_per_cpu,
)
from serverbench.stacks.interpreter import Interpreter

README = "https://github.com/emmett-framework/granian#workers-and-threads"


class Granian:
    name: ClassVar[str] = "granian"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "granian, Rust HTTP server; WSGI and ASGI natively (--interface)"
    model: ClassVar[str] = (
        "Rust server: each worker process runs a tokio runtime doing the HTTP I/O and parsing "
        "outside the GIL, with its own SO_REUSEPORT socket; ASGI apps run on an asyncio loop "
        "in the worker, WSGI apps on a pool of blocking threads"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"asgi", "wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("granian",)
    settings: ClassVar[tuple[Setting, ...]] = (
        count(
            "workers",
            workers_per_cpu,
            "worker processes",
            f"granian README: workers matching the CPU cores are the best start ({README})",
        ),
        count(
            "blocking_threads",
            4,
            "WSGI only: threads per worker running the app (ASGI must stay at 1)",
            "granian's WSGI default is backpressure/2 = 256 threads per worker (it warns); "
            "its README says a no-I/O app gains nothing above a few; 1-4 measured best here",
        ),
        count(
            "backlog",
            1024,
            "listen backlog (per worker: each has its own socket)",
            "granian default 1024",
            minimum=128,
        ),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        if python.missing("granian"):
            return python.missing_module_reason("granian", "granian")
        return None

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        argv = [
            ctx.python,
            "-m",
            "granian",
            "--interface",
            ctx.app.interface,
            "--host",
            ctx.host,
            "--port",
            str(ctx.port),
            "--workers",
            str(settings["workers"]),
            "--backlog",
            str(settings["backlog"]),
        ]
        notes: tuple[str, ...] = ()
        if ctx.app.interface == "wsgi":
            argv += ["--blocking-threads", str(settings["blocking_threads"])]
        else:
            # granian rejects --blocking-threads above 1 for ASGI
            settings["blocking_threads"] = 1
            notes = ("blocking_threads applies to WSGI only; ASGI runs on the worker's loop",)
        argv += ["--no-access-log", "--log-level", "warning", ctx.app.import_string]
        return LaunchPlan(
            components=(
                Component(name="granian", argv=tuple(argv), ready=(ctx.front,), env=app_env(ctx)),
            ),
            front=ctx.front,
            settings=settings,
            notes=notes,
        )
