"""The project's own benchmark set-up: `[tool.serverbench]` in pyproject.toml, or serverbench.toml.

A project keeps beside its code what `serverbench run` would otherwise need as flags: its apps
(with path and expected answer), stacks, profiles, repeats, stack settings, SLO, the Python its
servers run on and their environment. `find_config` looks in the current folder and its parents,
nearest first, as ruff and pytest do: in each folder serverbench.toml wins over pyproject.toml, and
a pyproject.toml without a `[tool.serverbench]` table is passed over. Relative paths in the file
(`python`, `app_dir`, `out`) are relative to the file's folder, so a run works from any
subfolder. Flags given on the command line override the file (the command merges).

serverbench.toml holds the same keys at its top level; a file holding only `[profiles.NAME]`
tables (the older `--config` file) is a valid configuration too.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serverbench.errors import UsageError
from serverbench.plan.server_env import check_key, masked
from serverbench.plan.slo import Slo as LatencyObjective

if TYPE_CHECKING:
    from serverbench.results.model import ConfigRecord

PYPROJECT = "pyproject.toml"
OWN_FILE = "serverbench.toml"
_SLO_KEY = re.compile(r"^p(\d+(?:\.\d+)?)_ms$")


@dataclass(frozen=True, slots=True, kw_only=True)
class AppEntry:
    """One app to serve; a field left None falls back to the file's top level, then to the CLI's default."""

    spec: str
    path: str | None = None
    interface: str | None = None
    expect_status: int | None = None
    expect_json: str | None = None  # JSON text, as --expect-json takes it
    expect_regex: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Slo:
    """The service level a capacity search holds a stack to (`serverbench capacity`, the default
    run's search) unless --slo / --max-errors say otherwise: one latency percentile's limit and
    an error-rate ceiling, either of them left to serverbench's default when not given."""

    latency_ms: dict[str, float] = field(default_factory=dict)  # at most one: "99" -> 100.0
    error_rate_pct: float | None = None

    def objective(self) -> LatencyObjective | None:
        """The latency limit as --slo gives it, or None when the file sets none."""
        return next(
            (
                LatencyObjective(percentile=float(key), limit_us=limit_ms * 1_000)
                for key, limit_ms in self.latency_ms.items()
            ),
            None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectConfig:
    source: Path | None = None  # None: no file was found
    apps: tuple[AppEntry, ...] = ()
    app_dir: str | None = None
    defaults: AppEntry = AppEntry(spec="")  # top-level path/interface/expect_* for every app
    stacks: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    profile_tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    repeats: int | None = None
    settings: tuple[str, ...] = ()  # "[STACK.]NAME=VALUE", as --set takes them
    python: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    slo: Slo | None = None
    out: str | None = None

    def app_entry(self, entry: AppEntry) -> AppEntry:
        """The entry with the top-level defaults filled in where it sets nothing of its own."""
        d = self.defaults
        return AppEntry(
            spec=entry.spec,
            path=entry.path if entry.path is not None else d.path,
            interface=entry.interface if entry.interface is not None else d.interface,
            expect_status=entry.expect_status
            if entry.expect_status is not None
            else d.expect_status,
            expect_json=entry.expect_json if entry.expect_json is not None else d.expect_json,
            expect_regex=entry.expect_regex if entry.expect_regex is not None else d.expect_regex,
        )

    def where(self, key: str) -> str:
        """The key's place in this file, as a setting's source is recorded."""
        table = " [tool.serverbench]" if self.source and self.source.name == PYPROJECT else ""
        return f"{self.source}{table} {key}"

    def to_record(self) -> ConfigRecord | None:
        """What results.json records: the file and what it set, environment values masked."""
        # imported here: the results model records these very classes
        from serverbench.results.model import ConfigRecord

        if self.source is None:
            return None
        return ConfigRecord(
            source=str(self.source),
            apps=tuple(self.app_entry(a) for a in self.apps),
            app_dir=self.app_dir,
            stacks=self.stacks,
            profiles=self.profiles,
            profile_tables={k: dict(v) for k, v in self.profile_tables.items()},
            repeats=self.repeats,
            settings=self.settings,
            python=self.python,
            env=masked(self.env),
            slo=self.slo,
            out=self.out,
        )


def find_config(start: Path) -> Path | None:
    """The nearest serverbench.toml, or pyproject.toml with [tool.serverbench], from start upwards."""
    for folder in (start.resolve(), *start.resolve().parents):
        own = folder / OWN_FILE
        if own.is_file():
            return own
        pyproject = folder / PYPROJECT
        if pyproject.is_file() and "serverbench" in _read_toml(pyproject).get("tool", {}):
            return pyproject
    return None


def load_config(path: Path) -> ProjectConfig:
    """The configuration in path: a pyproject.toml's [tool.serverbench], or a whole serverbench.toml."""
    data = _read_toml(path)
    if path.name == PYPROJECT:
        table = data.get("tool", {}).get("serverbench")
        if table is None:
            raise UsageError(
                f"{path} has no [tool.serverbench] table; add one (`serverbench init` writes it) "
                "or name another file"
            )
        where = f"{path} [tool.serverbench]"
    else:
        table, where = data, str(path)
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table")
    return _parse(table, path, where)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"config file {path} is not valid TOML: {error}; fix it") from None
    except OSError as error:
        raise UsageError(f"config file {path} cannot be read: {error.strerror}") from None


_APP_KEYS = ("path", "interface", "expect_status", "expect_json", "expect_regex")
_TOP_KEYS: tuple[str, ...] = (
    "app",
    "apps",
    "app_dir",
    *_APP_KEYS,
    "stacks",
    "profiles",
    "profile",
    "repeats",
)
_TOP_KEYS += ("set", "python", "env", "slo", "out")


def _parse(table: dict[str, Any], path: Path, where: str) -> ProjectConfig:
    unknown = sorted(set(table) - set(_TOP_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(_TOP_KEYS)}")
    base = path.parent.resolve()
    if "app" in table and "apps" in table:
        raise UsageError(f"{where}: give either app or apps, not both")
    raw_apps = table.get("apps", [table["app"]] if "app" in table else [])
    if not isinstance(raw_apps, list):
        raise UsageError(f'{where}: apps must be a list, e.g. apps = ["mysite.wsgi:application"]')
    profile_tables, profile_names = _profiles(table, where)
    repeats = table.get("repeats")
    if repeats is not None and (not _is_int(repeats) or repeats < 1):
        raise UsageError(f"{where}: repeats must be a whole number of at least 1")
    return ProjectConfig(
        source=path.resolve(),
        apps=tuple(_app(item, f"{where} apps[{i}]") for i, item in enumerate(raw_apps)),
        app_dir=_path(table, "app_dir", base, where),
        defaults=_app_fields(table, "", where),
        stacks=_names(table, "stacks", where),
        profiles=profile_names,
        profile_tables=profile_tables,
        repeats=repeats,
        settings=_settings(table.get("set", {}), where),
        python=_path(table, "python", base, where),
        env=_env(table.get("env", {}), where),
        slo=_slo(table["slo"], where) if "slo" in table else None,
        out=_path(table, "out", base, where),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _app(item: Any, where: str) -> AppEntry:
    if isinstance(item, str):
        return AppEntry(spec=item)
    if not isinstance(item, dict) or not isinstance(item.get("app"), str):
        raise UsageError(
            f'{where}: an app is "module:attr" or a table with app = "module:attr" and '
            "optionally " + ", ".join(_APP_KEYS)
        )
    unknown = sorted(set(item) - {"app", *_APP_KEYS})
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; known: app, {', '.join(_APP_KEYS)}")
    return _app_fields(item, item["app"], where)


def _app_fields(table: Mapping[str, Any], spec: str, where: str) -> AppEntry:
    for key in ("path", "interface", "expect_regex"):
        if key in table and not isinstance(table[key], str):
            raise UsageError(f"{where}: {key} must be a string")
    status = table.get("expect_status")
    if status is not None and not _is_int(status):
        raise UsageError(f"{where}: expect_status must be a whole number, e.g. 200")
    expect_json = table.get("expect_json")
    return AppEntry(
        spec=spec,
        path=table.get("path"),
        interface=table.get("interface"),
        expect_status=status,
        # a string is JSON text as on the command line; a table or array is the value itself
        expect_json=None
        if expect_json is None
        else expect_json
        if isinstance(expect_json, str)
        else json.dumps(expect_json),
        expect_regex=table.get("expect_regex"),
    )


def _names(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f'{where}: {key} must be a list of names, e.g. {key} = ["a", "b"]')
    return tuple(value)


def _profiles(
    table: Mapping[str, Any], where: str
) -> tuple[dict[str, Mapping[str, Any]], tuple[str, ...]]:
    """`profiles` is a list of names to run, or a table of profile definitions (the old form)."""
    if "profile" in table and "profiles" in table and isinstance(table["profiles"], list):
        raise UsageError(f"{where}: give either profile or profiles, not both")
    value = table.get("profiles")
    if isinstance(value, dict):
        for name, definition in value.items():
            if not isinstance(definition, dict):
                raise UsageError(f"{where}: [profiles.{name}] must be a table")
        names = _names(table, "profile", where)
        return dict(value), names
    names = _names(table, "profiles" if "profiles" in table else "profile", where)
    return {}, names


def _settings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, dict):
        raise UsageError(f'{where}: set must be a table, e.g. set = {{ "gunicorn.workers" = 4 }}')
    pairs: list[str] = []
    for key, item in value.items():
        if isinstance(item, dict):  # [set.gunicorn] workers = 4, written as a nested table
            pairs.extend(f"{key}.{name}={_setting_text(v)}" for name, v in item.items())
        else:
            pairs.append(f"{key}={_setting_text(item)}")
    return tuple(pairs)


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _path(table: Mapping[str, Any], key: str, base: Path, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: {key} must be a path")
    path = Path(value).expanduser()
    # not resolved: a venv's python is often a symlink, and the venv is found by its own path
    return str(path if path.is_absolute() else base / path)


def _env(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise UsageError(
            f'{where}: env must be a table, e.g. env = {{ DJANGO_SETTINGS_MODULE = "mysite.settings" }}'
        )
    env = {}
    for key, item in value.items():
        check_key(key, source=f"{where} env")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise UsageError(f"{where}: env {key} must be a string")
        env[key] = str(item)
    return env


def _slo(value: Any, where: str) -> Slo:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: slo must be a table, e.g. slo = {{ p99_ms = 100 }}")
    latency: dict[str, float] = {}
    error_rate: float | None = None
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise UsageError(f"{where}: slo {key} must be a number, e.g. slo = {{ p99_ms = 100 }}")
        if item <= 0 and key != "error_rate_pct":
            raise UsageError(f"{where}: slo {key} must be positive, e.g. slo = {{ p99_ms = 100 }}")
        match = _SLO_KEY.match(key)
        if match and 0 < float(match.group(1)) < 100:
            latency[match.group(1)] = float(item)
        elif key == "error_rate_pct" and 0 <= item < 100:
            error_rate = float(item)
        else:
            raise UsageError(
                f"{where}: slo key {key!r} = {item!r} is not understood; use pNN_ms (p50_ms, "
                "p99_ms, p99.9_ms) for latency and error_rate_pct (0 up to below 100) for errors"
            )
    if len(latency) > 1:
        named = " and ".join(f"p{key}_ms" for key in latency)
        raise UsageError(
            f"{where}: slo names {named}; a capacity search holds one latency percentile, "
            "so keep one, e.g. slo = { p99_ms = 100 }"
        )
    return Slo(latency_ms=latency, error_rate_pct=error_rate)
