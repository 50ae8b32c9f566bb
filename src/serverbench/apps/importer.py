"""What an app is once imported: its interface, and its own cost per request in-process.

The parent side runs `python -m serverbench.apps.importer` in a child process, so that a user's
app is imported with the same interpreter and PYTHONPATH as the servers will use, and so that
whatever it does at import time stays out of serverbench. The in-process cost (calling the
app directly in a loop, no server, no socket) is the most any server on one core could reach
with this app: a reference line for every stack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from serverbench.apps.registry import App, Interface
from serverbench.errors import AppError
from serverbench.run import guardian

if TYPE_CHECKING:  # this module also runs inside the app's interpreter: standard library only
    from serverbench.stacks.interpreter import Interpreter

_PROBE_TIMEOUT_S = 60.0
# the child prints this once the app is imported, so a timeout can say which part was slow
_IMPORTED = "serverbench-probe: imported"


def detect_interface(obj: Any) -> Interface | None:
    """WSGI apps take (environ, start_response); ASGI apps are async and take (scope, receive, send)."""
    if not callable(obj):
        return None
    target = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else type(obj).__call__
    if inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(obj):
        return "asgi"
    try:
        parameters = [
            p
            for p in inspect.signature(obj).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return None
    if len(parameters) == 3:
        return "asgi"
    if len(parameters) == 2:
        return "wsgi"
    return None


def probe_env(
    app: App, python: Interpreter | None = None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The servers' environment: the user's variables, the app's folder and, for another
    interpreter, the path to serverbench's shims."""
    merged = {**os.environ, **(env or {})}
    shims = python.server_pythonpath() if python else None
    path = [app.search_path, shims, merged.get("PYTHONPATH")]
    if any(path):
        merged["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    return merged


def _run_probe(
    app: App, *args: str, python: Interpreter | None, env: Mapping[str, str] | None
) -> dict[str, Any]:
    command = [python.executable if python else sys.executable, "-m", "serverbench.apps.importer"]
    command += args
    child = subprocess.Popen(
        command,
        env=probe_env(app, python, env),
        cwd=app.search_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **guardian.popen_options(),
    )
    guardian.adopt(child.pid)
    try:
        stdout, stderr = child.communicate(timeout=_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired as expired:
        child.kill()
        child.communicate()
        so_far = expired.stdout or b""
        if _IMPORTED in (so_far.decode(errors="replace") if isinstance(so_far, bytes) else so_far):
            raise AppError(
                f"calling {app.import_string} in-process took more than "
                f"{_PROBE_TIMEOUT_S:.0f} s (it imported fine: its requests are slow)"
            ) from None
        raise AppError(
            f"importing {app.import_string} took more than {_PROBE_TIMEOUT_S:.0f} s; "
            "an app must import quickly and without waiting on input"
        ) from None
    lines = [line for line in stdout.strip().splitlines() if line != _IMPORTED]
    if not lines:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        raise AppError(f"probing {app.import_string} failed:\n{tail}\nfix the app and try again")
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except ValueError:
        raise AppError(
            f"probing {app.import_string} printed no result (last line: {lines[-1][:200]!r}); "
            "make sure the app writes nothing to stdout when Python exits (atexit handlers)"
        ) from None
    return result


def inspect_app(
    app: App,
    *,
    interface_given: bool,
    python: Interpreter | None = None,
    env: Mapping[str, str] | None = None,
) -> App:
    """The app with its real interface; AppError if it does not import or is no WSGI/ASGI app.

    It is imported the way the servers will import it: with their interpreter and environment.
    """
    if app.builtin:
        return app
    report = _run_probe(app, "inspect", app.import_string, python=python, env=env)
    if not report["ok"]:
        raise AppError(
            f"cannot load {app.import_string}: {report['error']}; "
            "check the module name, the attribute, and --app-dir (the folder it imports from)"
        )
    detected: Interface | None = report["interface"]
    if detected is None:
        raise AppError(
            f"{app.import_string} is neither a WSGI app (environ, start_response) nor an ASGI app "
            "(async scope, receive, send); point --app at the application object"
        )
    if interface_given and detected != app.interface:
        raise AppError(
            f"{app.import_string} looks like a {detected.upper()} app, not {app.interface.upper()}; "
            f"use --interface {detected}"
        )
    return dataclasses.replace(app, interface=detected)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InProcessCost:
    calls: int
    seconds: float
    per_call_us: float
    calls_per_sec: float
    status: int


def measure_in_process_cost(
    app: App,
    *,
    duration_s: float = 2.0,
    python: Interpreter | None = None,
    env: Mapping[str, str] | None = None,
) -> InProcessCost:
    report = _run_probe(
        app,
        "cost",
        app.import_string,
        app.interface,
        app.load_path,
        str(duration_s),
        python=python,
        env=env,
    )
    if not report["ok"]:
        raise AppError(f"calling {app.import_string} in-process failed: {report['error']}")
    return InProcessCost(
        calls=report["calls"],
        seconds=report["seconds"],
        per_call_us=report["seconds"] / report["calls"] * 1e6,
        calls_per_sec=report["calls"] / report["seconds"],
        status=report["status"],
    )


# --- child side -------------------------------------------------------------------------


def _wsgi_caller(app: Any, path: str) -> Callable[[], int]:
    environ_base = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path.partition("?")[0],
        "QUERY_STRING": path.partition("?")[2],
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }

    def call() -> int:
        import io

        status_holder: list[str] = []
        environ = dict(environ_base, **{"wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr})

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_holder.append(status)
            return lambda data: None

        body = app(environ, start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return int(status_holder[0].split()[0])

    return call


def asgi_get_scope(path: str) -> dict[str, Any]:
    """The ASGI scope of `GET path` (with its query string) from a local client."""
    target, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def _asgi_caller(app: Any, path: str) -> Callable[[], Any]:
    scope = asgi_get_scope(path)

    async def call() -> int:
        status = 0

        received = False

        async def receive() -> dict[str, Any]:
            # the request once; asked again (Django listens for a disconnect while it answers),
            # a client that stays connected until the response is sent
            nonlocal received
            if received:
                await asyncio.Event().wait()
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(dict(scope), receive, send)
        return status

    return call


def _batch(*, call_s: float) -> int:
    # calls between clock reads: 100 for an app that answers in under 50 ms (the fastest of a
    # few calls, so a busy machine does not decide), 1 for a slower one, so a slow app's
    # measurement ends near its duration instead of 100 slow calls later
    return 100 if call_s < 0.05 else 1


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _cost(import_string: str, interface: str, path: str, duration_s: float) -> dict[str, Any]:
    from serverbench.shims.loader import load_object

    app = load_object(import_string)
    print(_IMPORTED, flush=True)
    if interface == "wsgi":
        call = _wsgi_caller(app, path)
        status = call()  # the first call pays for lazy set-up: time the next ones
        batch = _batch(call_s=min(_timed(call) for _ in range(3)))
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < duration_s:
            for _ in range(batch):
                call()
            calls += batch
        return {
            "ok": True,
            "calls": calls,
            "seconds": time.perf_counter() - started,
            "status": status,
        }

    async_call = _asgi_caller(app, path)

    async def loop() -> dict[str, Any]:
        status = await async_call()  # the first call pays for lazy set-up: time the next ones
        times = []
        for _ in range(3):
            started = time.perf_counter()
            await async_call()
            times.append(time.perf_counter() - started)
        batch = _batch(call_s=min(times))
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < duration_s:
            for _ in range(batch):
                await async_call()
            calls += batch
        return {
            "ok": True,
            "calls": calls,
            "seconds": time.perf_counter() - started,
            "status": status,
        }

    return asyncio.run(loop())


def _main(argv: list[str]) -> dict[str, Any]:
    sys.path.insert(0, os.getcwd())
    from serverbench.shims.loader import load_object

    try:
        if argv[0] == "inspect":
            return {"ok": True, "interface": detect_interface(load_object(argv[1]))}
        return _cost(argv[1], argv[2], argv[3], float(argv[4]))
    except Exception as error:  # the user's app may raise anything; report it, don't crash
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}


if __name__ == "__main__":
    # on a line of its own, whatever the app wrote to stdout without a newline
    print("\n" + json.dumps(_main(sys.argv[1:])))
