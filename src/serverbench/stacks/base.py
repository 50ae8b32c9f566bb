"""What a stack plugin is: typed settings in, a launch plan out. A plugin never spawns.

A stack is a server with its settings and, for topologies, the other parts around it (nginx
in front, supervisord managing instances). `Stack.plan()` turns a `StackContext` into a
`LaunchPlan`: the components to start in order, the files they need, and where each one is
ready. `lifecycle.py` is the only place that acts on a plan.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from serverbench.apps.registry import App, Interface
from serverbench.errors import UsageError
from serverbench.stacks.interpreter import Interpreter

SettingValue = int | str | bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpEndpoint:
    host: str  # a name or an address; IPv6 without brackets, as sockets take it
    port: int

    def __str__(self) -> str:
        # as URLs and nginx's listen write it
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnixEndpoint:
    path: str

    def __str__(self) -> str:
        return f"unix:{self.path}"


Endpoint = TcpEndpoint | UnixEndpoint


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneratedFile:
    path: Path
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    """One process to start (it may fork workers of its own)."""

    name: str
    argv: tuple[str, ...]
    ready: tuple[Endpoint, ...]  # every endpoint must accept a connection before the next starts
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    files: tuple[GeneratedFile, ...] = ()
    stop_signal: signal.Signals = signal.SIGTERM
    pinned: bool = True  # run on the server CPUs


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchPlan:
    components: tuple[Component, ...]  # start order; stopped in reverse
    front: TcpEndpoint  # where clients (wrk, the verifier) connect
    settings: Mapping[str, SettingValue]  # resolved: what actually ran
    notes: tuple[str, ...] = ()  # facts a reader needs, e.g. the WSGI-to-ASGI adapter used


@dataclass(frozen=True, slots=True, kw_only=True)
class StackContext:
    app: App
    host: str
    port: int
    run_dir: Path  # this stack's own folder: configs, sockets, logs
    server_cpu_count: int  # CPUs the stack may use: worker defaults follow it
    ports: Callable[[], int]  # more ports for a topology's internal backends
    overrides: Mapping[str, str] = field(default_factory=dict)
    interpreter: Interpreter  # what the servers run with: serverbench's own or the app's
    env: Mapping[str, str] = field(default_factory=dict)  # the user's --env / config env

    @property
    def python(self) -> str:
        return self.interpreter.executable

    @property
    def front(self) -> TcpEndpoint:
        return TcpEndpoint(host=self.host, port=self.port)


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """A setting a user may override with `--set NAME=VALUE` (or `--set STACK.NAME=VALUE`)."""

    name: str
    kind: type[int] | type[str] | type[bool]
    default: Callable[[StackContext], SettingValue]
    help: str
    minimum: int | None = None
    choices: tuple[str, ...] = ()
    source: str = ""  # where the default comes from (vendor docs), shown in the report


def count(
    name: str,
    default: int | Callable[[StackContext], SettingValue],
    help: str,
    source: str,
    *,
    minimum: int = 1,
) -> Setting:
    """A whole-number setting; `default` is a number or computed from the context."""
    return Setting(
        name=name,
        kind=int,
        minimum=minimum,
        default=default if callable(default) else _fixed(default),
        help=help,
        source=source,
    )


def choice(name: str, choices: tuple[str, ...], default: str, help: str, source: str) -> Setting:
    return Setting(
        name=name, kind=str, choices=choices, default=_fixed(default), help=help, source=source
    )


def _fixed(value: SettingValue) -> Callable[[StackContext], SettingValue]:
    return lambda ctx: value


class Stack(Protocol):
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `serverbench stacks`
    model: ClassVar[str]  # how the server works, for the report's analysis
    variant_of: ClassVar[str | None]  # the bare stack a topology puts a proxy in front of
    keeps_alive: ClassVar[bool]  # whether it keeps client connections open between requests
    interfaces: ClassVar[frozenset[Interface]]
    packages: ClassVar[tuple[str, ...]]  # distributions whose versions a result records
    settings: ClassVar[tuple[Setting, ...]]

    def unavailable_reason(self, python: Interpreter) -> str | None:
        """None when usable with `python` here; otherwise why not and how to fix it."""

    def plan(self, ctx: StackContext) -> LaunchPlan:
        """The processes that serve ctx.app on ctx.front. Must not spawn anything."""


def interface_mismatch(stack: Stack, app: App) -> str | None:
    """None when the stack speaks the app's interface; otherwise a sentence saying why not."""
    if app.interface in stack.interfaces:
        return None
    served = "/".join(sorted(stack.interfaces)).upper()
    return f"{stack.name} serves {served} apps only; {app.name} is {app.interface.upper()}"


def backlog_default(ctx: StackContext) -> int:
    return 2048


def resolve_settings(stack: Stack, ctx: StackContext) -> dict[str, SettingValue]:
    """Defaults from the context, overridden by the user's values, validated."""
    known = {setting.name: setting for setting in stack.settings}
    unknown = sorted(set(ctx.overrides) - set(known))
    if unknown:
        names = ", ".join(known) or "none"
        raise UsageError(
            f"stack {stack.name} has no setting {unknown[0]!r}; its settings are: {names}"
        )
    resolved: dict[str, SettingValue] = {}
    for setting in stack.settings:
        raw = ctx.overrides.get(setting.name)
        resolved[setting.name] = (
            setting.default(ctx) if raw is None else _parse(stack.name, setting, raw)
        )
    return resolved


def _parse(stack_name: str, setting: Setting, raw: str) -> SettingValue:
    where = f"{stack_name}.{setting.name}={raw}"
    if setting.kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{where}: expected true or false")
    if setting.kind is int:
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"{where}: expected a whole number") from None
        if setting.minimum is not None and value < setting.minimum:
            raise UsageError(f"{where}: must be at least {setting.minimum}")
        return value
    if setting.choices and raw not in setting.choices:
        raise UsageError(f"{where}: expected one of {', '.join(setting.choices)}")
    return raw


def missing_tool_reason(tool: str, package: str) -> str | None:
    if shutil.which(tool) is None:
        return f"{tool} is not on PATH; install it: apt-get install {package}"
    return None


def app_env(ctx: StackContext) -> dict[str, str]:
    """Environment every server process of the stack gets, so a user's app imports and is set up."""
    env: dict[str, str] = {**ctx.env, "PYTHONUNBUFFERED": "1"}
    path = [p for p in (ctx.app.search_path, ctx.interpreter.server_pythonpath()) if p]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    return env


WSGI_AS_ASGI = "serverbench.shims.wsgi_as_asgi:app"


def asgi_target(ctx: StackContext, env: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """The import string an ASGI server loads, wrapping a WSGI app in a2wsgi when needed."""
    if ctx.app.interface == "asgi":
        return ctx.app.import_string, ()
    env["SERVERBENCH_WSGI_APP"] = ctx.app.import_string
    adapter = f"a2wsgi.WSGIMiddleware (a2wsgi {ctx.interpreter.version_of('a2wsgi') or '?'})"
    return WSGI_AS_ASGI, (f"WSGI app served through {adapter}",)


def workers_per_cpu(ctx: StackContext) -> int:
    return max(1, ctx.server_cpu_count)


UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL


def unix_socket(ctx: StackContext, name: str) -> UnixEndpoint:
    """A unix socket in the stack's run folder; its path must fit in sockaddr_un."""
    # absolute: nginx and the backend must name the same file whatever their working folder
    path = str((ctx.run_dir / name).absolute())
    if len(path.encode()) > UNIX_PATH_MAX:
        raise UsageError(
            f"unix socket path {path} is {len(path.encode())} bytes, longer than the "
            f"{UNIX_PATH_MAX} a socket address holds; use a shorter output folder (--out)"
        )
    return UnixEndpoint(path=path)


def venv_tool(ctx: StackContext, tool: str) -> str:
    """A console script installed next to the stack's Python (for servers with no `-m`)."""
    return ctx.interpreter.tool(tool)
