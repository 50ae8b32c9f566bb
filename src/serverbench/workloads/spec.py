"""What each workload answers, byte for byte, shared by its Flask and FastAPI apps and the checks.

The database part is TechEmpower's: a `world` table of 10,000 rows and a `fortune` table of
12 messages (their schema and names, so their apps read the same). One change: `world`'s
numbers follow a fixed permutation of the ids instead of random values, so a check can tell a
row read from the database from one made up. Bodies are compact JSON, identical in both apps.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    import jinja2

WORLD_ROWS = 10_000
MAX_QUERIES = 500  # TechEmpower: ?queries= is clamped to 1..500, anything unparsable is 1
DEFAULT_QUERIES = 20
DEFAULT_IO_WAIT_MS = 10
MAX_IO_WAIT_MS = 10_000
POOL_SIZE_ENV = "SERVERBENCH_DB_POOL_SIZE"
POOL_SIZE_DEFAULT = 4  # psycopg-pool docs: ConnectionPool/AsyncConnectionPool(min_size=4)
DEFAULT_PAYLOAD_BYTES = 1024
MIN_PAYLOAD_BYTES = 64
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024

WORLD_QUERY = "SELECT id, randomnumber FROM world WHERE id = {}"  # {} = the driver's placeholder
FORTUNE_QUERY = "SELECT id, message FROM fortune"

# TechEmpower's twelve fortunes (config/create-postgres.sql), with their HTML and Unicode traps
FORTUNES: tuple[tuple[int, str], ...] = (
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. — Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "フレームワークのベンチマーク"),
)
EXTRA_FORTUNE = (0, "Additional fortune added at request time.")

FORTUNES_TEMPLATE = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "{% for id, message in fortunes %}<tr><td>{{ id }}</td><td>{{ message }}</td></tr>{% endfor %}"
    "</table></body></html>"
)


@functools.cache
def _template() -> jinja2.Template:
    # jinja2 is imported by the apps and the checks only, not by every serverbench command
    import jinja2

    return jinja2.Environment(autoescape=True).from_string(FORTUNES_TEMPLATE)


def world_random_number(row_id: int) -> int:
    """The number stored with `row_id`: 7919 is prime to 10,000, so this permutes 1..10,000."""
    return (row_id * 7919) % WORLD_ROWS + 1


def setup_sql() -> str:
    """The schema and data, run by the throwaway PostgreSQL before the stack starts."""
    fortunes = ",\n".join(
        f"({row_id}, '{message.replace(chr(39), chr(39) * 2)}')" for row_id, message in FORTUNES
    )
    return f"""CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL);
INSERT INTO world (id, randomnumber)
  SELECT id, (id * 7919) % {WORLD_ROWS} + 1 FROM generate_series(1, {WORLD_ROWS}) AS id;
CREATE TABLE fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL);
INSERT INTO fortune (id, message) VALUES
{fortunes};
ANALYZE;
"""


def pool_size(environ: Mapping[str, str]) -> int:
    """Connections in each server process's pool: $SERVERBENCH_DB_POOL_SIZE, else 4."""
    return int(environ.get(POOL_SIZE_ENV, POOL_SIZE_DEFAULT))


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def query_count(raw: str | None) -> int:
    """TechEmpower's rule for ?queries=: a number clamped to 1..500; missing or bad is 1."""
    try:
        count = int(raw) if raw is not None else 1
    except ValueError:
        return 1
    return min(max(count, 1), MAX_QUERIES)


def io_wait_ms(raw: str | None) -> int:
    try:
        value = int(raw) if raw is not None else DEFAULT_IO_WAIT_MS
    except ValueError:
        return DEFAULT_IO_WAIT_MS
    return min(max(value, 0), MAX_IO_WAIT_MS)


def payload_size(raw: str | None) -> int:
    try:
        value = int(raw) if raw is not None else DEFAULT_PAYLOAD_BYTES
    except ValueError:
        return DEFAULT_PAYLOAD_BYTES
    return min(max(value, MIN_PAYLOAD_BYTES), MAX_PAYLOAD_BYTES)


def world_row(row_id: int, number: int) -> dict[str, int]:
    return {"id": row_id, "randomNumber": number}


def fortunes_html(rows: list[tuple[int, str]]) -> str:
    """TechEmpower's fortunes: add one at request time, sort by message, render escaped."""
    rows.append(EXTRA_FORTUNE)
    rows.sort(key=lambda row: row[1])
    return _template().render(fortunes=rows)


@functools.lru_cache(maxsize=16)
def payload_object(size_bytes: int) -> dict[str, Any]:
    """A document of records whose compact JSON is exactly `size_bytes` long.

    Built once per size and serialized on every request: the serialization (and sending) is
    the per-request work that grows with the size, as when an app returns a large result.
    """
    document: dict[str, Any] = {"bytes": size_bytes, "items": [], "pad": ""}
    used = len(dumps(document))
    items: list[dict[str, Any]] = document["items"]
    while True:
        index = len(items)
        item = {"id": index, "name": f"item-{index:06d}", "value": (index * 7919) % 1000}
        extra = len(dumps(item)) + (1 if items else 0)
        if used + extra > size_bytes:
            break
        items.append(item)
        used += extra
    document["pad"] = "x" * (size_bytes - used)
    return document


def payload_body(size_bytes: int) -> bytes:
    return dumps(payload_object(size_bytes))


def path_query(path: str) -> tuple[str, str]:
    parts = urlsplit(path)
    return parts.path, parts.query


def query_value(query: str, name: str) -> str | None:
    values = parse_qs(query).get(name)
    return values[-1] if values else None
