"""The workloads' answers: exact bytes shared by both apps, and checks that catch fakes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import MutableMapping
from typing import Any

import pytest

from serverbench.apps.importer import asgi_get_scope
from serverbench.workloads import checks, spec


def test_world_numbers_are_a_permutation_of_the_ids() -> None:
    numbers = {spec.world_random_number(row_id) for row_id in range(1, spec.WORLD_ROWS + 1)}
    assert numbers == set(range(1, spec.WORLD_ROWS + 1))


@pytest.mark.parametrize(
    ("raw", "count"), [(None, 1), ("20", 20), ("0", 1), ("501", 500), ("foo", 1), ("-3", 1)]
)
def test_query_count_follows_techempower(raw: str | None, count: int) -> None:
    assert spec.query_count(raw) == count


@pytest.mark.parametrize("size", [64, 100, 1024, 10_000, 1024 * 1024])
def test_payload_is_exactly_the_asked_size(size: int) -> None:
    body = spec.payload_body(size)
    assert len(body) == size
    assert json.loads(body)["bytes"] == size


def test_fortunes_page_adds_sorts_and_escapes() -> None:
    html = spec.fortunes_html(list(spec.FORTUNES))
    assert "<td>0</td><td>Additional fortune added at request time.</td>" in html
    assert "&lt;script&gt;alert(&#34;This should not be displayed" in html
    assert "<script>" not in html
    assert html.index("A bad random") < html.index("A computer program") < html.index("フレーム")


def test_setup_sql_holds_every_row() -> None:
    sql = spec.setup_sql()
    assert "generate_series(1, 10000)" in sql
    assert "(2, 'A computer scientist is someone who fixes things that aren''t broken.')" in sql


def _check(path: str, body: bytes, content_type: str = "application/json", elapsed_s: float = 1.0):
    return checks.check(path, body=body, content_type=content_type, elapsed_s=elapsed_s)


def test_db_rows_must_be_the_stored_ones() -> None:
    assert _check("/db", spec.dumps(spec.world_row(7, spec.world_random_number(7)))) is None
    made_up = _check("/db", b'{"id":7,"randomNumber":1}')
    assert made_up is not None
    assert "the stored row" in made_up[0]
    assert _check("/db", b'{"id":0,"randomNumber":1}') is not None
    rows = [spec.world_row(i, spec.world_random_number(i)) for i in range(1, 21)]
    assert _check("/queries?queries=20", spec.dumps(rows)) is None
    assert "a list of 20 rows" in str(_check("/queries?queries=20", spec.dumps(rows[:19])))


def test_fortunes_must_be_the_exact_page() -> None:
    page = spec.fortunes_html(list(spec.FORTUNES)).encode()
    assert _check("/fortunes", page, "text/html; charset=utf-8") is None
    assert _check("/fortunes", page.replace(b"&lt;", b"<"), "text/html") is not None
    assert _check("/fortunes", page, "application/json") is not None


def test_io_wait_must_take_the_wait() -> None:
    body = b'{"io_wait_ms":10}'
    assert _check("/io-wait?ms=10", body, elapsed_s=0.0105) is None
    assert "at least 10 ms" in str(_check("/io-wait?ms=10", body, elapsed_s=0.002))


def test_payload_and_seed_json() -> None:
    assert _check("/payload?bytes=2048", spec.payload_body(2048)) is None
    assert _check("/payload?bytes=2048", spec.payload_body(2049)) is not None
    assert _check("/api/v2/123", b'{"msisdn":"123","status":"ok"}') is None
    assert _check("/api/v2/123", b'{"msisdn":"124","status":"ok"}') is not None


# --- both apps in-process, for the endpoints that need no database -----------------------

NO_DATABASE = ["/api/v2/1234567890", "/io-wait?ms=5", "/payload?bytes=5000", "/payload"]


def _flask(path: str) -> tuple[bytes, str]:
    from serverbench.apps.builtin.workload_flask import app

    response = app.test_client().get(path)
    assert response.status_code == 200
    return response.data, response.headers["Content-Type"]


def _fastapi(path: str) -> tuple[bytes, str]:
    from serverbench.apps.builtin.workload_fastapi import app

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    asyncio.run(app(asgi_get_scope(path), receive, send))
    assert sent[0]["status"] == 200
    headers = dict(sent[0]["headers"])
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return body, headers[b"content-type"].decode()


@pytest.mark.parametrize("path", NO_DATABASE)
def test_flask_and_fastapi_answer_the_same_checked_bytes(path: str) -> None:
    started = time.monotonic()
    flask_body, flask_type = _flask(path)
    elapsed_s = time.monotonic() - started
    fastapi_body, fastapi_type = _fastapi(path)
    assert flask_body == fastapi_body
    assert flask_type == fastapi_type
    assert checks.check(path, body=flask_body, content_type=flask_type, elapsed_s=elapsed_s) is None
