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
from collections.abc import Callable
from typing import Any

from serverbench.apps.registry import App, Interface
from serverbench.errors import AppError

_PROBE_TIMEOUT_S = 60.0


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


def probe_env(app: App) -> dict[str, str]:
    env = dict(os.environ)
    if app.search_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [app.search_path, env.get("PYTHONPATH")]))
    return env


def _run_probe(app: App, *args: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "serverbench.apps.importer", *args]
    try:
        done = subprocess.run(
            command,
            env=probe_env(app),
            cwd=app.search_path,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AppError(
            f"importing {app.import_string} took more than {_PROBE_TIMEOUT_S:.0f} s; "
            "an app must import quickly and without waiting on input"
        ) from None
    lines = done.stdout.strip().splitlines()
    if not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise AppError(f"probing {app.import_string} failed:\n{tail}\nfix the app and try again")
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except ValueError:
        raise AppError(
            f"probing {app.import_string} printed no result (last line: {lines[-1][:200]!r}); "
            "make sure the app writes nothing to stdout when Python exits (atexit handlers)"
        ) from None
    return result


def inspect_app(app: App, *, interface_given: bool) -> App:
    """The app with its real interface; AppError if it does not import or is no WSGI/ASGI app."""
    if app.builtin:
        return app
    report = _run_probe(app, "inspect", app.import_string)
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


def measure_in_process_cost(app: App, *, duration_s: float = 2.0) -> InProcessCost:
    report = _run_probe(
        app, "cost", app.import_string, app.interface, app.load_path, str(duration_s)
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


def _asgi_caller(app: Any, path: str) -> Callable[[], Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.partition("?")[0],
        "raw_path": path.partition("?")[0].encode(),
        "query_string": path.partition("?")[2].encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def call() -> int:
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(dict(scope), receive, send)
        return status

    return call


def _cost(import_string: str, interface: str, path: str, duration_s: float) -> dict[str, Any]:
    from serverbench.shims.loader import load_object

    app = load_object(import_string)
    if interface == "wsgi":
        call = _wsgi_caller(app, path)
        status = call()
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < duration_s:
            for _ in range(100):
                call()
            calls += 100
        return {
            "ok": True,
            "calls": calls,
            "seconds": time.perf_counter() - started,
            "status": status,
        }

    async_call = _asgi_caller(app, path)

    async def loop() -> dict[str, Any]:
        status = await async_call()
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < duration_s:
            for _ in range(100):
                await async_call()
            calls += 100
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
