"""Is a stack up, and does it answer correctly? Readiness and response verification.

Ready means the endpoint accepts a connection; correct means, for several random msisdns,
status as expected, a JSON Content-Type when expected, and a body equal to the expected one as
parsed JSON (or matching the expected regex); a built-in workload's body must prove its work
(rows from the database, the exact page, the wait taken). Nothing here spawns or stops a process.
"""

from __future__ import annotations

import http.client
import json
import math
import random
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from serverbench.apps.registry import SEED_MSISDN, App
from serverbench.stacks.base import Endpoint, TcpEndpoint, UnixEndpoint
from serverbench.workloads.catalog import builtin_workload
from serverbench.workloads.checks import check as workload_check


def accepts_connection(endpoint: Endpoint, timeout_s: float = 0.5) -> bool:
    try:
        if isinstance(endpoint, UnixEndpoint):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout_s)
                sock.connect(endpoint.path)
        else:
            with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout_s):
                pass
    except OSError:
        return False
    return True


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout_s: float,
    interval_s: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    deadline = clock() + timeout_s
    while True:
        if condition():
            return True
        if clock() >= deadline:
            return False
        sleep(interval_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mismatch:
    path: str
    expected: str
    got: str
    answered: bool = True  # False: no HTTP response at all (refused, reset, timed out)

    def __str__(self) -> str:
        return f"GET {self.path}: expected {self.expected}, got {self.got}"


def random_msisdn(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789") for _ in range(10))


def check_once(
    endpoint: TcpEndpoint, app: App, msisdn: str, timeout_s: float, path: str | None = None
) -> Mismatch | None:
    """One GET of the app's path for `msisdn` (or of `path`, one of a mix), checked."""
    path = path or app.path_for(msisdn)
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout_s)
    started = time.monotonic()
    try:
        connection.request("GET", path, headers={"Host": str(endpoint)})
        response = connection.getresponse()
        body = response.read()
        elapsed_s = time.monotonic() - started
        content_type = response.getheader("Content-Type", "")
    except (OSError, http.client.HTTPException) as error:
        return Mismatch(
            path=path,
            expected="an HTTP response",
            got=f"{type(error).__name__}: {error}",
            answered=False,
        )
    finally:
        connection.close()
    return check_response(
        app,
        msisdn,
        status=response.status,
        content_type=content_type,
        body=body,
        path=path,
        elapsed_s=elapsed_s,
    )


def check_response(
    app: App,
    msisdn: str,
    *,
    status: int,
    content_type: str,
    body: bytes,
    path: str | None = None,
    elapsed_s: float | None = None,
) -> Mismatch | None:
    """The checks of `check_once` on an answer already received (e.g. one a load engine kept)
    for `path`, by default `app.path_for(msisdn)`; `elapsed_s` None: how long it took is
    unknown, and not checked."""
    path = path or app.path_for(msisdn)
    expected = app.expected
    if status != expected.status:
        return Mismatch(
            path=path,
            expected=f"status {expected.status}",
            got=f"status {status}: {_short(body)}",
        )
    if builtin_workload(app) is not None:
        # a built-in workload: the body must prove the work was done (see workloads.checks)
        problem = workload_check(
            path,
            body=body,
            content_type=content_type,
            elapsed_s=math.inf if elapsed_s is None else elapsed_s,
        )
        return None if problem is None else Mismatch(path=path, expected=problem[0], got=problem[1])
    if expected.json_content_type and "json" not in content_type.lower():
        return Mismatch(path=path, expected="a JSON Content-Type", got=repr(content_type))
    if expected.json_body is not None:
        want = expected.body_for(msisdn)
        try:
            got = json.loads(body)
        except ValueError:
            return Mismatch(path=path, expected=json.dumps(want), got=_short(body))
        if got != want:
            return Mismatch(path=path, expected=json.dumps(want), got=json.dumps(got))
    if expected.body_regex is not None and not re.search(
        expected.body_regex, body.decode(errors="replace")
    ):
        return Mismatch(
            path=path, expected=f"a body matching /{expected.body_regex}/", got=_short(body)
        )
    return None


def verify(
    endpoint: TcpEndpoint,
    app: App,
    *,
    requests: int = 5,
    timeout_s: float = 5.0,
    seed: int | None = None,
    mix_paths: Sequence[str] = (),
) -> Mismatch | None:
    """The first mismatch over `requests` random msisdns (plus the load path), then over each
    path of a request mix, or None."""
    rng = random.Random(seed)
    msisdns = [SEED_MSISDN, *(random_msisdn(rng) for _ in range(requests))]
    paths_seen = "{msisdn}" in app.path_template
    for msisdn in msisdns if paths_seen else msisdns[:2]:
        mismatch = check_once(endpoint, app, msisdn, timeout_s)
        if mismatch is not None:
            return mismatch
    for path in mix_paths:
        mismatch = check_once(endpoint, app, SEED_MSISDN, timeout_s, path=path)
        if mismatch is not None:
            return mismatch
    return None


def _short(body: bytes, limit: int = 200) -> str:
    text = body.decode(errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
