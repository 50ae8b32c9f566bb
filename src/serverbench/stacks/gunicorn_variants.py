"""Gunicorn with its other worker classes: gthread, gevent, uvicorn-worker and native asgi.

Each stack is gunicorn's shared argv (`gunicorn.gunicorn_argv`) plus its worker class and the
options of that class. ASGI workers serve a WSGI app through a2wsgi (`base.asgi_target`).
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
    asgi_target,
    choice,
    count,
    resolve_settings,
    workers_per_cpu,
)
from serverbench.stacks.gunicorn import (
    BACKLOG,
    DOCS,
    KEEP_ALIVE,
    gunicorn_argv,
    gunicorn_unavailable_reason,
)
from serverbench.stacks.interpreter import Interpreter

SETTINGS_DOCS = "https://docs.gunicorn.org/en/stable/settings.html"


def _workers(source: str) -> Setting:
    return count("workers", workers_per_cpu, "worker processes", source)


def _plan(
    ctx: StackContext,
    settings: Mapping[str, SettingValue],
    worker_args: list[str],
    *,
    asgi: bool,
) -> LaunchPlan:
    env = app_env(ctx)
    target, adapter_notes = asgi_target(ctx, env) if asgi else (ctx.app.import_string, ())
    argv = [*gunicorn_argv(ctx, settings, str(ctx.front)), *worker_args, target]
    return LaunchPlan(
        components=(Component(name="gunicorn", argv=tuple(argv), ready=(ctx.front,), env=env),),
        front=ctx.front,
        settings=settings,
        notes=adapter_notes,
    )


class GunicornGthread:
    name: ClassVar[str] = "gunicorn-gthread"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "gunicorn, pre-fork gthread workers (thread pool, keep-alive)"
    model: ClassVar[str] = (
        "pre-fork: a master forks worker processes; each gthread worker runs a thread pool and a "
        "selector loop holding keep-alive connections; threads share the worker's GIL"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("gunicorn",)
    settings: ClassVar[tuple[Setting, ...]] = (
        _workers(f"gunicorn docs: one worker per core when threads carry the concurrency ({DOCS})"),
        count(
            "threads",
            lambda ctx: 4 * max(1, ctx.server_cpu_count),
            "threads per worker",
            f"gunicorn docs --threads: 2-4 x $(NUM_CORES), upper end ({SETTINGS_DOCS})",
        ),
        BACKLOG,
        KEEP_ALIVE,
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        return gunicorn_unavailable_reason(python)

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        worker_args = ["--worker-class", "gthread", "--threads", str(settings["threads"])]
        return _plan(ctx, settings, worker_args, asgi=False)


class GunicornGevent:
    name: ClassVar[str] = "gunicorn-gevent"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "gunicorn, pre-fork gevent workers (greenlets, keep-alive)"
    model: ClassVar[str] = (
        "pre-fork: a master forks worker processes; each gevent worker monkey-patches the "
        "standard library and runs every connection in a greenlet on one event loop; a "
        "CPU-bound handler blocks the other greenlets until it returns"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("gunicorn", "gevent", "greenlet")
    settings: ClassVar[tuple[Setting, ...]] = (
        _workers(f"gunicorn docs: async workers, few processes (one per core) ({DOCS})"),
        count(
            "worker_connections", 1000, "simultaneous clients per worker", "gunicorn default 1000"
        ),
        BACKLOG,
        KEEP_ALIVE,
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        missing = python.missing("gevent", "packaging")
        if missing:
            # gunicorn 27 imports packaging for -k gevent; gunicorn[gevent] brings both
            return python.missing_module_reason(missing, "gunicorn[gevent]==27.0.1")
        return gunicorn_unavailable_reason(python)

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        worker_args = [
            "--worker-class",
            "gevent",
            "--worker-connections",
            str(settings["worker_connections"]),
        ]
        return _plan(ctx, settings, worker_args, asgi=False)


class GunicornUvicorn:
    name: ClassVar[str] = "gunicorn-uvicorn"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "gunicorn managing uvicorn workers (uvicorn-worker package)"
    model: ClassVar[str] = (
        "pre-fork: gunicorn's master forks and supervises worker processes; each runs uvicorn's "
        "event loop (uvloop + httptools) multiplexing many connections; a WSGI app runs in a "
        "thread pool behind the a2wsgi adapter"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"asgi", "wsgi"})
    packages: ClassVar[tuple[str, ...]] = (
        "gunicorn",
        "uvicorn-worker",
        "uvicorn",
        "uvloop",
        "httptools",
        "a2wsgi",
    )
    settings: ClassVar[tuple[Setting, ...]] = (
        _workers(
            "uvicorn-worker README: gunicorn -w N -k uvicorn_worker.UvicornWorker, "
            "one async worker per core"
        ),
        BACKLOG,
        count(
            "keep_alive",
            5,
            "seconds to keep an idle connection (uvicorn's timeout_keep_alive)",
            "uvicorn default 5 (uvicorn-worker passes gunicorn's --keep-alive to it)",
            minimum=0,
        ),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        missing = python.missing("uvicorn_worker", "uvloop", "httptools", "a2wsgi")
        if missing:
            return python.missing_module_reason(
                missing, "uvicorn-worker", "uvicorn[standard]", "a2wsgi"
            )
        return gunicorn_unavailable_reason(python)

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        worker_args = ["--worker-class", "uvicorn_worker.UvicornWorker"]
        return _plan(ctx, settings, worker_args, asgi=True)


def _has_native_asgi_worker(python: Interpreter) -> bool:
    version = python.version_of("gunicorn") or "0"
    return int(version.partition(".")[0]) >= 27  # gunicorn.workers.gasgi came with 27


class GunicornAsgi:
    name: ClassVar[str] = "gunicorn-asgi"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "gunicorn 27's native ASGI worker (-k asgi)"
    model: ClassVar[str] = (
        "pre-fork: gunicorn's master forks worker processes; each runs gunicorn's own asyncio "
        "(uvloop) ASGI server multiplexing many connections; a WSGI app runs in a thread pool "
        "behind the a2wsgi adapter"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"asgi", "wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("gunicorn", "uvloop", "a2wsgi")
    settings: ClassVar[tuple[Setting, ...]] = (
        _workers(f"gunicorn docs: async workers, one process per core ({DOCS})"),
        BACKLOG,
        KEEP_ALIVE,
        choice(
            "loop",
            ("uvloop", "asyncio"),
            "uvloop",
            "--asgi-loop event loop",
            "gunicorn --asgi-loop auto picks uvloop when installed; made explicit",
        ),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        reason = gunicorn_unavailable_reason(python)
        if reason is not None:
            return reason
        if not _has_native_asgi_worker(python):
            return (
                "the installed gunicorn has no native asgi worker (gunicorn 27 has it); "
                f"run: {python.pip_install('gunicorn==27.0.1')}"
            )
        missing = python.missing("uvloop", "a2wsgi")
        if missing:
            return python.missing_module_reason(missing, "uvicorn[standard]", "a2wsgi")
        return None

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        worker_args = ["--worker-class", "asgi", "--asgi-loop", str(settings["loop"])]
        return _plan(ctx, settings, worker_args, asgi=True)
