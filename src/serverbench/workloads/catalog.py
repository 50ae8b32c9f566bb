"""The built-in workloads: what each one requests, needs and exercises, in two variants each.

Every workload is served by both workload apps (one Flask, one FastAPI) at its own path, so a
mix of workloads is served by one app. `db-flask`, `io-wait-fastapi`, ... name a workload in
one variant; `db` names both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from serverbench.errors import UsageError
from serverbench.workloads import spec


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    name: str
    path: str  # what wrk requests (and the verifier checks)
    exercises: str  # one line for the README and the report
    services: tuple[str, ...] = ()
    # the app's own cost in-process is a CPU limit only when the request never waits
    cpu_bound: bool = True
    # nginx-static answers the seed's JSON: a ceiling only for the same small JSON answer
    same_work_as_ceiling: bool = False
    needs_modules: tuple[str, ...] = ()  # beyond the variant's framework


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    name: str
    interface: str
    import_string: str
    model: str  # how it waits, for the report's sync-vs-async comparison
    needs_modules: tuple[str, ...]  # its framework


VARIANTS: dict[str, Variant] = {
    "flask": Variant(
        name="flask",
        interface="wsgi",
        import_string="serverbench.apps.builtin.workload_flask:app",
        needs_modules=("flask",),
        model="sync (Flask, psycopg 3 pool, time.sleep): a request holds its thread while it waits",
    ),
    "fastapi": Variant(
        name="fastapi",
        interface="asgi",
        import_string="serverbench.apps.builtin.workload_fastapi:app",
        needs_modules=("fastapi",),
        model=(
            "async (FastAPI, psycopg 3 async pool, asyncio.sleep): the loop serves others "
            "while it waits"
        ),
    ),
}

WORKLOADS: dict[str, Workload] = {
    "json": Workload(
        name="json",
        path="/api/v2/1234567890",
        exercises="the seed's small JSON answer: HTTP overhead only",
        same_work_as_ceiling=True,
    ),
    "db": Workload(
        name="db",
        path="/db",
        exercises="one row by random id from PostgreSQL (TechEmpower's single query)",
        services=("postgres",),
        needs_modules=("psycopg", "psycopg_pool"),
        cpu_bound=False,
    ),
    "queries": Workload(
        name="queries",
        path=f"/queries?queries={spec.DEFAULT_QUERIES}",
        exercises=(
            f"{spec.DEFAULT_QUERIES} rows, one query each, on one pooled connection "
            "(TechEmpower's multiple queries)"
        ),
        services=("postgres",),
        needs_modules=("psycopg", "psycopg_pool"),
        cpu_bound=False,
    ),
    "fortunes": Workload(
        name="fortunes",
        path="/fortunes",
        exercises=(
            "all rows of a table, one added, sorted, rendered through an escaping Jinja2 "
            "template (TechEmpower's fortunes)"
        ),
        services=("postgres",),
        needs_modules=("psycopg", "psycopg_pool", "jinja2"),
        cpu_bound=False,
    ),
    "io-wait": Workload(
        name="io-wait",
        path=f"/io-wait?ms={spec.DEFAULT_IO_WAIT_MS}",
        exercises=(
            f"a {spec.DEFAULT_IO_WAIT_MS} ms wait on I/O per request: how many requests a "
            "worker can have waiting"
        ),
        cpu_bound=False,
    ),
    "payload": Workload(
        name="payload",
        path=f"/payload?bytes={spec.DEFAULT_PAYLOAD_BYTES}",
        exercises=(
            "a JSON document of a chosen size (--path /payload?bytes=1048576), serialized "
            "per request"
        ),
    ),
}


def app_name(workload: str, variant: str) -> str:
    return f"{workload}-{variant}"


def split_name(name: str) -> tuple[Workload, Variant] | None:
    """The workload and variant an app name like "io-wait-fastapi" names, if any."""
    stem, _, variant = name.rpartition("-")
    if stem in WORKLOADS and variant in VARIANTS:
        return WORKLOADS[stem], VARIANTS[variant]
    return None


def expand(name: str) -> list[str]:
    """A workload's shorthand ("db") means both variants; any other name stands for itself."""
    if name in WORKLOADS:
        return [app_name(name, variant) for variant in VARIANTS]
    return [name]


def app_settings(workload: str, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """The workload app's own settings with their sources, recorded like a stack's."""
    if workload not in WORKLOADS or not WORKLOADS[workload].services:
        return []
    raw = environ.get(spec.POOL_SIZE_ENV)
    try:
        size = spec.pool_size(environ)
    except ValueError:
        size = 0
    if size < 1:
        raise UsageError(
            f"${spec.POOL_SIZE_ENV}={raw!r} is not a whole number of 1 or more; set it to the "
            "connections each server process should pool, for example 4, or unset it"
        )
    source = (
        f"${spec.POOL_SIZE_ENV}"
        if raw is not None
        else "psycopg-pool default: ConnectionPool and AsyncConnectionPool min_size=4"
    )
    return [
        {
            "name": "db_pool_size",
            "value": size,
            "source": f"{source}; one pool per server process, shared by its threads or tasks",
        }
    ]


class _NamedApp(Protocol):
    @property
    def workload(self) -> str | None: ...

    @property
    def builtin(self) -> bool: ...


def builtin_workload(app: _NamedApp) -> Workload | None:
    """The catalog's workload a built-in app runs (None for the seed apps and yours)."""
    return WORKLOADS.get(app.workload or "") if app.builtin else None


def workload_settings(app: _NamedApp) -> list[dict[str, Any]]:
    workload = builtin_workload(app)
    return app_settings(workload.name, os.environ) if workload is not None else []
