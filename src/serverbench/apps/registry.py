"""The workload axis: which app is served, where to send load, and what a correct answer is.

Built-in apps are the seed report's Flask app and its FastAPI twin, and the workloads (a
database, an I/O wait, payloads; see `serverbench.workloads.catalog`) in a Flask and a FastAPI
variant each, whose answers are checked by `serverbench.workloads.checks`; a user's own app is
named by an import string and may ask for services (`--service postgres`). Expected bodies are compared as parsed JSON (Flask ends its body with a
newline, FastAPI does not), with "{msisdn}" in the template replaced by the requested value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from serverbench.errors import UsageError
from serverbench.services.registry import SERVICE_NAMES
from serverbench.workloads import catalog
from serverbench.workloads.spec import path_query

Interface = Literal["wsgi", "asgi"]
INTERFACES: tuple[Interface, ...] = ("wsgi", "asgi")

SEED_MSISDN = "1234567890"  # the number the seed report loaded with wrk
SEED_PATH = "/api/v2/{msisdn}"
SEED_BODY: dict[str, Any] = {"msisdn": "{msisdn}", "status": "ok"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectedResponse:
    status: int = 200
    json_body: Any = None  # a JSON value; "{msisdn}" inside strings is replaced per request
    body_regex: str | None = None
    json_content_type: bool = False

    def body_for(self, msisdn: str) -> Any:
        return _fill(self.json_body, msisdn)


@dataclass(frozen=True, slots=True, kw_only=True)
class App:
    name: str
    import_string: str
    interface: Interface
    path_template: str
    expected: ExpectedResponse
    search_path: str | None = None  # prepended to PYTHONPATH of every server process
    builtin: bool = False
    services: tuple[str, ...] = ()  # started before the stack, stopped after it
    # apps doing the same work in another style share it: "seed", or a built-in workload of
    # serverbench.workloads.catalog, whose answers are checked by its rules
    workload: str | None = None
    # a built-in app's imports, and the serverbench extra that installs them
    needs_modules: tuple[str, ...] = ()
    extra: str | None = None

    def path_for(self, msisdn: str) -> str:
        return self.path_template.replace("{msisdn}", msisdn)

    @property
    def load_path(self) -> str:
        """The one path wrk requests, as the seed did."""
        return self.path_for(SEED_MSISDN)

    @property
    def source_file(self) -> Path | None:
        if not self.builtin:
            return None
        module = self.import_string.partition(":")[0]
        return Path(__file__).parent.parent / (
            module.removeprefix("serverbench.").replace(".", "/") + ".py"
        )


def _fill(template: Any, msisdn: str) -> Any:
    if isinstance(template, str):
        return template.replace("{msisdn}", msisdn)
    if isinstance(template, list):
        return [_fill(item, msisdn) for item in template]
    if isinstance(template, dict):
        return {key: _fill(value, msisdn) for key, value in template.items()}
    return template


_SEED_EXPECTED = ExpectedResponse(status=200, json_body=SEED_BODY, json_content_type=True)

BUILTIN_APPS: dict[str, App] = {
    "seed-flask": App(
        name="seed-flask",
        import_string="serverbench.apps.builtin.flask_app:app",
        interface="wsgi",
        path_template=SEED_PATH,
        expected=_SEED_EXPECTED,
        builtin=True,
        workload="seed",
        needs_modules=("flask",),
        extra="seed",
    ),
    "seed-fastapi": App(
        name="seed-fastapi",
        import_string="serverbench.apps.builtin.fastapi_app:app",
        interface="asgi",
        path_template=SEED_PATH,
        expected=_SEED_EXPECTED,
        builtin=True,
        workload="seed",
        needs_modules=("fastapi",),
        extra="seed",
    ),
}


def _workload_apps() -> dict[str, App]:
    apps: dict[str, App] = {}
    for workload in catalog.WORKLOADS.values():
        for variant in catalog.VARIANTS.values():
            name = catalog.app_name(workload.name, variant.name)
            apps[name] = App(
                name=name,
                import_string=variant.import_string,
                interface="wsgi" if variant.interface == "wsgi" else "asgi",
                path_template=SEED_PATH if workload.name == "json" else workload.path,
                expected=ExpectedResponse(status=200),
                builtin=True,
                services=workload.services,
                workload=workload.name,
                needs_modules=variant.needs_modules + workload.needs_modules,
                extra="workloads",
            )
    return apps


BUILTIN_APPS.update(_workload_apps())
DEFAULT_APP = "seed-flask"


def expand_app_names(specs: list[str]) -> list[str]:
    """`--app db` means db-flask and db-fastapi; `--app db,io-wait` works too."""
    names: list[str] = []
    for spec in specs:
        for part in spec.split(","):
            names.extend(name for name in catalog.expand(part.strip()) if name not in names)
    return names


_IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class UserAppOptions:
    interface: str | None = None
    path: str | None = None
    app_dir: str | None = None
    expect_status: int = 200
    expect_json: str | None = None
    expect_regex: str | None = None
    services: tuple[str, ...] = ()


def _with_path(app: App, path: str) -> App:
    """A built-in workload loading another path of its own endpoint (`/io-wait?ms=50`)."""
    if (
        app.workload not in catalog.WORKLOADS
        or path_query(path)[0] != path_query(app.path_template)[0]
    ):
        raise UsageError(
            f"--path {path!r} does not fit the built-in app {app.name}; give a path of its "
            f"endpoint, for example --path {app.path_template}, or use your own app"
        )
    return replace(app, path_template=path)


def _check_services(names: tuple[str, ...]) -> None:
    for name in names:
        if name not in SERVICE_NAMES:
            raise UsageError(f"unknown service {name!r}; use one of {', '.join(SERVICE_NAMES)}")


def resolve_app(spec: str, options: UserAppOptions | None = None) -> App:
    """A built-in app by name, or the user's app from "module:attr" and the options.

    Only the shape of the input is checked here; whether the app imports and speaks the
    interface is checked by `app_probe.inspect_app`, before any server starts.
    """
    options = options or UserAppOptions()
    _check_services(options.services)
    if spec in BUILTIN_APPS:
        app = BUILTIN_APPS[spec]
        if options.path is not None:
            app = _with_path(app, options.path)
        extra = tuple(name for name in options.services if name not in app.services)
        return replace(app, services=app.services + extra) if extra else app
    if not _IMPORT_STRING.match(spec):
        names = f"seed-flask, seed-fastapi, a workload ({', '.join(catalog.WORKLOADS)}) as "
        names += "NAME-flask or NAME-fastapi (NAME alone: both)"
        raise UsageError(
            f"unknown app {spec!r}; use {names}, or your own as module:attribute "
            "(for example --app myproject.wsgi:application)"
        )
    if options.interface is not None and options.interface not in INTERFACES:
        raise UsageError(f"unknown interface {options.interface!r}; use --interface wsgi or asgi")
    path = options.path or "/"
    if not path.startswith("/"):
        raise UsageError(f"--path {path!r} must start with '/'; for example --path /health")
    json_body: Any = None
    if options.expect_json is not None:
        try:
            json_body = json.loads(options.expect_json)
        except json.JSONDecodeError as error:
            raise UsageError(
                f"--expect-json is not valid JSON ({error.msg} at column {error.colno}); "
                'quote it for the shell, for example --expect-json \'{"status": "ok"}\''
            ) from None
    if options.expect_regex is not None:
        try:
            re.compile(options.expect_regex)
        except re.error as error:
            raise UsageError(
                f"--expect-regex is not a valid regular expression ({error}); fix it, and quote "
                'it for the shell, for example --expect-regex \'"status": ?"ok"\''
            ) from None
    if not 100 <= options.expect_status <= 599:
        raise UsageError(
            f"--expect-status {options.expect_status} is not an HTTP status (100-599); "
            "give the status your app answers, for example --expect-status 200"
        )
    app_dir = options.app_dir
    if app_dir is not None and not Path(app_dir).is_dir():
        raise UsageError(
            f"--app-dir {app_dir!r} is not a directory; give the folder your app imports from"
        )
    return App(
        name=spec,
        import_string=spec,
        interface="asgi" if options.interface == "asgi" else "wsgi",
        path_template=path,
        expected=ExpectedResponse(
            status=options.expect_status, json_body=json_body, body_regex=options.expect_regex
        ),
        search_path=str(Path(app_dir).resolve()) if app_dir else str(Path.cwd()),
        services=options.services,
    )
