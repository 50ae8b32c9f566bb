"""Does a workload's answer prove its work was done? One check per endpoint, from `spec`.

`/db` and `/queries` rows must carry the number stored with their id (only a read from the
database knows it), `/fortunes` must be the exact page with the request-time fortune, sorted
and escaped, `/payload` the exact document of the asked size, and `/io-wait` must have taken at
least the wait. A check returns None when the answer is right, else (expected, got).
"""

from __future__ import annotations

import json
from typing import Any

from serverbench.workloads import spec

Problem = tuple[str, str]  # (what was expected, what came)


def _rows_problem(rows: Any) -> Problem | None:
    for row in rows:
        if not isinstance(row, dict) or set(row) != {"id", "randomNumber"}:
            return "a row {id, randomNumber}", json.dumps(row)[:120]
        row_id, number = row["id"], row["randomNumber"]
        if not (isinstance(row_id, int) and 1 <= row_id <= spec.WORLD_ROWS):
            return f"an id in 1..{spec.WORLD_ROWS}", repr(row_id)
        if number != spec.world_random_number(row_id):
            stored = spec.world_random_number(row_id)
            return f"randomNumber {stored} for id {row_id} (the stored row)", repr(number)
    return None


def _parsed(body: bytes) -> tuple[Any, Problem | None]:
    try:
        return json.loads(body), None
    except ValueError:
        return None, ("a JSON body", repr(body[:120]))


def check(path: str, *, body: bytes, content_type: str, elapsed_s: float) -> Problem | None:
    """What is wrong with this answer to GET `path` (status 200 assumed), or None."""
    endpoint, query = spec.path_query(path)
    if endpoint == "/fortunes":
        if "text/html" not in content_type:
            return "Content-Type text/html", repr(content_type)
        want = spec.fortunes_html(list(spec.FORTUNES)).encode()
        return (
            None if body == want else (f"the fortunes page ({len(want)} bytes)", repr(body[:120]))
        )
    if "json" not in content_type.lower():
        return "a JSON Content-Type", repr(content_type)
    document, problem = _parsed(body)
    if problem is not None:
        return problem
    if endpoint == "/db":
        return _rows_problem([document])
    if endpoint == "/queries":
        count = spec.query_count(spec.query_value(query, "queries"))
        if not isinstance(document, list) or len(document) != count:
            return f"a list of {count} rows", json.dumps(document)[:120]
        return _rows_problem(document)
    if endpoint == "/io-wait":
        wait_ms = spec.io_wait_ms(spec.query_value(query, "ms"))
        if document != {"io_wait_ms": wait_ms}:
            return f'{{"io_wait_ms": {wait_ms}}}', json.dumps(document)[:120]
        if elapsed_s < wait_ms / 1000:
            return f"an answer after at least {wait_ms} ms", f"one after {elapsed_s * 1000:.1f} ms"
        return None
    if endpoint == "/payload":
        size = spec.payload_size(spec.query_value(query, "bytes"))
        if body != spec.payload_body(size):
            return f"the {size}-byte payload document", f"{len(body)} bytes"
        return None
    if endpoint.startswith("/api/v2/"):
        want_json = {"msisdn": endpoint.removeprefix("/api/v2/"), "status": "ok"}
        return None if document == want_json else (json.dumps(want_json), repr(body[:120]))
    return "a path of a built-in workload", repr(path)
