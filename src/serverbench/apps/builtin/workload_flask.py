"""The workloads as a sync WSGI app (Flask), with psycopg 3 and a connection pool per process.

Endpoints: `/api/v2/<msisdn>` (the seed's JSON), `/db`, `/queries?queries=N`, `/fortunes`,
`/io-wait?ms=N` and `/payload?bytes=N`; see `spec` for what each answers. The pool is made on
the first database request of each process (after a pre-fork server has forked), with
`SERVERBENCH_DB_POOL_SIZE` connections (default: psycopg-pool's own, 4). `/io-wait` blocks its
thread in `time.sleep`, as a blocking client call would: a sync worker is held for the wait.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import TYPE_CHECKING

from flask import Flask, Response, request

from serverbench.workloads import spec

WORLD_QUERY = spec.WORLD_QUERY.format("%s")

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

app = Flask(__name__)
_pool: ConnectionPool | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _connections() -> ConnectionPool:
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        with _pool_lock:
            if _pool is None or _pool_pid != os.getpid():
                # imported here: the app without a database (io-wait, payload) starts faster
                from psycopg_pool import ConnectionPool

                size = spec.pool_size(os.environ)
                _pool = ConnectionPool(
                    os.environ["DATABASE_URL"],
                    min_size=size,
                    max_size=size,
                    # one transaction per statement, as TechEmpower's reads are
                    kwargs={"autocommit": True},
                    open=True,
                )
                _pool_pid = os.getpid()
    return _pool


def _json(body: bytes) -> Response:
    return Response(body, mimetype="application/json")


@app.get("/api/v2/<msisdn>")
def seed_json(msisdn: str) -> Response:
    return _json(spec.dumps({"msisdn": msisdn, "status": "ok"}))


@app.get("/db")
def single_query() -> Response:
    with _connections().connection() as connection:
        row = connection.execute(WORLD_QUERY, (random.randint(1, spec.WORLD_ROWS),)).fetchone()
    assert row is not None
    return _json(spec.dumps(spec.world_row(row[0], row[1])))


@app.get("/queries")
def multiple_queries() -> Response:
    count = spec.query_count(request.args.get("queries"))
    rows = []
    with _connections().connection() as connection:
        for _ in range(count):
            row = connection.execute(WORLD_QUERY, (random.randint(1, spec.WORLD_ROWS),)).fetchone()
            assert row is not None
            rows.append(spec.world_row(row[0], row[1]))
    return _json(spec.dumps(rows))


@app.get("/fortunes")
def fortunes() -> Response:
    with _connections().connection() as connection:
        rows = [(row[0], row[1]) for row in connection.execute(spec.FORTUNE_QUERY)]
    return Response(spec.fortunes_html(rows), mimetype="text/html")


@app.get("/io-wait")
def io_wait() -> Response:
    wait_ms = spec.io_wait_ms(request.args.get("ms"))
    time.sleep(wait_ms / 1000)
    return _json(spec.dumps({"io_wait_ms": wait_ms}))


@app.get("/payload")
def payload() -> Response:
    return _json(spec.payload_body(spec.payload_size(request.args.get("bytes"))))
