"""The workloads as an async ASGI app (FastAPI), with psycopg 3's async pool, one per loop.

The same endpoints and bytes as `workload_flask`, and the same driver and pool library in their
async form, so that a difference between the two apps is the sync or async model, not the
driver (asyncpg's pool, for one, sends a reset query each time a connection is released).
The pool is made on the first database request of each process and event loop, with
`SERVERBENCH_DB_POOL_SIZE` connections (default: psycopg-pool's own, 4). `/io-wait` awaits
`asyncio.sleep`, as an awaited client call would: the loop serves other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import TYPE_CHECKING, Annotated

from fastapi import FastAPI, Query, Response
from fastapi.responses import HTMLResponse

from serverbench.workloads import spec

WORLD_QUERY = spec.WORLD_QUERY.format("%s")

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

app = FastAPI()
_pools: dict[tuple[int, int], asyncio.Future[AsyncConnectionPool]] = {}


async def _open_pool() -> AsyncConnectionPool:
    # imported here: the app without a database (io-wait, payload) starts faster
    from psycopg_pool import AsyncConnectionPool

    size = spec.pool_size(os.environ)
    pool = AsyncConnectionPool(
        os.environ["DATABASE_URL"],
        min_size=size,
        max_size=size,
        # one transaction per statement, as TechEmpower's reads are
        kwargs={"autocommit": True},
        open=False,
    )
    await pool.open()
    return pool


async def _connections() -> AsyncConnectionPool:
    # one pool per process and loop, opened once even when the first requests arrive together
    key = (os.getpid(), id(asyncio.get_running_loop()))
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = asyncio.ensure_future(_open_pool())
    return await pool


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


@app.get("/api/v2/{msisdn}")
async def seed_json(msisdn: str) -> Response:
    return _json(spec.dumps({"msisdn": msisdn, "status": "ok"}))


@app.get("/db")
async def single_query() -> Response:
    async with (await _connections()).connection() as connection:
        cursor = await connection.execute(WORLD_QUERY, (random.randint(1, spec.WORLD_ROWS),))
        row = await cursor.fetchone()
    assert row is not None
    return _json(spec.dumps(spec.world_row(row[0], row[1])))


@app.get("/queries")
async def multiple_queries(queries: str | None = None) -> Response:
    count = spec.query_count(queries)
    rows = []
    async with (await _connections()).connection() as connection:
        for _ in range(count):
            cursor = await connection.execute(WORLD_QUERY, (random.randint(1, spec.WORLD_ROWS),))
            row = await cursor.fetchone()
            assert row is not None
            rows.append(spec.world_row(row[0], row[1]))
    return _json(spec.dumps(rows))


@app.get("/fortunes")
async def fortunes() -> HTMLResponse:
    async with (await _connections()).connection() as connection:
        cursor = await connection.execute(spec.FORTUNE_QUERY)
        rows = [(row[0], row[1]) for row in await cursor.fetchall()]
    return HTMLResponse(spec.fortunes_html(rows))


@app.get("/io-wait")
async def io_wait(ms: str | None = None) -> Response:
    wait_ms = spec.io_wait_ms(ms)
    await asyncio.sleep(wait_ms / 1000)
    return _json(spec.dumps({"io_wait_ms": wait_ms}))


@app.get("/payload")
async def payload(size: Annotated[str | None, Query(alias="bytes")] = None) -> Response:
    return _json(spec.payload_body(spec.payload_size(size)))
