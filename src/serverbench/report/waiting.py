"""How many requests a stack can have waiting at once, from its model and settings.

A request that waits on I/O holds whatever runs it: a sync worker process, a thread, a
greenlet, or (in an async app on an event loop) only a suspended coroutine. The count of those
bounds an I/O-bound workload by Little's law: with W requests waiting at most and each waiting
t seconds, no stack can exceed W / t requests per second, whatever its CPU. The report uses it
to explain a workload's results by the server's model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from serverbench.workloads import spec

A2WSGI_THREADS = 10  # a2wsgi.WSGIMiddleware(workers=10), the adapter's default


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiting:
    requests: int | None  # None: no fixed bound; each waiting request is a coroutine
    how: str  # e.g. "3 workers x 1 request (sync workers)"

    def ceiling_per_sec(self, wait_s: float) -> float | None:
        """Little's law: the most requests per second with every one waiting `wait_s`."""
        if self.requests is None or wait_s <= 0:
            return None
        return self.requests / wait_s


def _count(settings: Mapping[str, object], name: str, default: int = 1) -> int:
    value = settings.get(name, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def waiting_capacity(
    stack: str, interface: str, settings: Mapping[str, object], *, machine_cpus: int = 1
) -> Waiting | None:
    """The stack's bound on waiting requests for an app of `interface`; None if unknown."""
    workers = _count(settings, "workers")

    def per_worker(each: int, what: str) -> Waiting:
        plural = "s" if workers != 1 else ""
        return Waiting(requests=workers * each, how=f"{workers} worker{plural} x {each} {what}")

    loop = Waiting(
        requests=None,
        how="an event loop per worker: a waiting request is a suspended coroutine, no thread",
    )
    if interface == "asgi" and stack in (
        "uvicorn",
        "granian",
        "hypercorn",
        "gunicorn-uvicorn",
        "gunicorn-asgi",
    ):
        return loop
    if stack == "gunicorn":
        return per_worker(1, "request (sync workers)")
    if stack == "nginx-gunicorn":
        return per_worker(_count(settings, "threads"), "request(s) (sync workers behind nginx)")
    if stack == "gunicorn-gthread":
        return per_worker(_count(settings, "threads"), "threads")
    if stack == "gunicorn-gevent":
        return per_worker(
            _count(settings, "worker_connections", 1000),
            "greenlets (gevent patches time.sleep and sockets, so waits yield)",
        )
    if stack in ("uvicorn", "gunicorn-uvicorn", "gunicorn-asgi"):
        return per_worker(A2WSGI_THREADS, "threads of the a2wsgi adapter")
    if stack == "granian":
        return per_worker(_count(settings, "blocking_threads", 4), "blocking threads")
    if stack == "hypercorn":
        threads = min(32, machine_cpus + 4)
        return per_worker(threads, "threads of asyncio's default executor (min(32, CPUs + 4))")
    if stack == "bjoern":
        processes = _count(settings, "processes")
        return Waiting(
            requests=processes, how=f"{_plural(processes, 'single-threaded process')}, 1 each"
        )
    if stack == "nginx-bjoern":
        instances = _count(settings, "instances")
        return Waiting(
            requests=instances, how=f"{_plural(instances, 'single-threaded bjoern')}, 1 each"
        )
    if stack == "waitress":
        threads = _count(settings, "threads", 4)
        return Waiting(requests=threads, how=f"1 process x {threads} threads")
    if stack == "uwsgi":
        processes = _count(settings, "processes")
        return Waiting(requests=processes, how=f"{_plural(processes, 'process')}, 1 request each")
    return None


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 'es' if noun.endswith('s') else 's'}"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def model_sentence(
    *,
    stack: str,
    interface: str,
    settings: Mapping[str, object],
    workload: str,
    load_path: str,
    rps: float,
    connections: int,
    machine_cpus: int = 1,
) -> str | None:
    """Why an I/O-bound workload got its throughput on this stack, from the stack's model."""
    if workload not in ("io-wait", "db", "queries", "fortunes"):
        return None
    waiting = waiting_capacity(stack, interface, settings, machine_cpus=machine_cpus)
    if waiting is None:
        return None
    if workload == "io-wait":
        wait_ms = spec.io_wait_ms(spec.query_value(spec.path_query(load_path)[1], "ms"))
        wait_s = wait_ms / 1000
        bound = waiting.ceiling_per_sec(wait_s)
        if bound is not None and waiting.requests is not None:
            return (
                f"Model for {workload}: {stack} can have {_plural(waiting.requests, 'request')} "
                f"waiting at once ({waiting.how}); each waits {wait_ms} ms, so by Little's law it "
                f"cannot exceed {_rate(bound)} req/s whatever its CPU; it served {_rate(rps)} "
                f"({rps / bound * 100:.0f} % of that bound)."
            )
        by_connections = connections / wait_s if wait_s > 0 else None
        limit = (
            f"; with {connections:,} connections each waiting {wait_ms} ms the load itself "
            f"allows at most {_rate(by_connections)} req/s"
            if by_connections
            else ""
        )
        return (
            f"Model for {workload}: {stack} runs this app on {waiting.how}, so waiting "
            f"requests are bounded by the connections and the CPU, not by a worker count"
            f"{limit}; it served {_rate(rps)} req/s."
        )
    if waiting.requests is not None:
        return (
            f"Model for {workload}: {stack} can have {_plural(waiting.requests, 'request')} in "
            f"progress at once ({waiting.how}); each holds its worker while it waits on PostgreSQL, so "
            "the database round trips, not the CPU alone, set the pace."
        )
    return (
        f"Model for {workload}: {stack} runs this app on {waiting.how}: while one request "
        "waits on PostgreSQL the loop serves others, up to the pool's connections per worker."
    )
