"""The project's configuration merged with the command line: a flag given wins over the file.

`serverbench run` (and check, serve, stacks) read `[tool.serverbench]` from the nearest
pyproject.toml, or a serverbench.toml, unless `--config FILE` names one or `--no-config` skips
it. Without a file every value comes from the flags and the built-in defaults, as before.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serverbench.apps.registry import DEFAULT_APP, UserAppOptions, expand_app_names
from serverbench.plan.config import AppEntry, ProjectConfig, find_config, load_config
from serverbench.plan.selection import parse_overrides
from serverbench.plan.server_env import parse_env_pairs
from serverbench.results.model import ConfigRecord
from serverbench.stacks.base import Stack
from serverbench.stacks.interpreter import Interpreter, own, probe

DEFAULT_EXPECT_STATUS = 200


def add_project_options(
    parser: argparse.ArgumentParser, *, env: bool = True, python: bool = True
) -> None:
    group = parser.add_argument_group("project")
    group.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file: a pyproject.toml with [tool.serverbench], a serverbench.toml, "
        "or a TOML file of [profiles.NAME] tables (default: the nearest pyproject.toml with "
        "[tool.serverbench] or serverbench.toml, from this folder up)",
    )
    group.add_argument(
        "--no-config", action="store_true", help="ignore any configuration file; flags only"
    )
    if python:
        group.add_argument(
            "--python",
            metavar="PATH",
            help="the interpreter the servers run with: your app's virtualenv python, with the "
            "servers installed there (default: serverbench's own)",
        )
    if env:
        group.add_argument(
            "--env",
            action="append",
            default=[],
            metavar="KEY[=VALUE]",
            help="environment variable for the server processes (repeatable); KEY alone passes "
            "this shell's value; values of secret-looking keys are never recorded",
        )


def project_config(args: argparse.Namespace) -> ProjectConfig:
    if getattr(args, "no_config", False):
        return ProjectConfig()
    if getattr(args, "config", None):
        return load_config(Path(args.config))
    found = find_config(Path.cwd())
    return load_config(found) if found else ProjectConfig()


@dataclass(frozen=True, slots=True, kw_only=True)
class AppChoice:
    spec: str
    options: UserAppOptions


@dataclass(frozen=True, slots=True, kw_only=True)
class Project:
    """What a command runs: the flags where given, else the file, else the defaults."""

    config: ProjectConfig
    apps: tuple[AppChoice, ...]
    stacks: tuple[str, ...] | None  # None: the command's default
    profiles: tuple[str, ...] | None
    repeats: int | None
    file_settings: tuple[str, ...]  # "[STACK.]NAME=VALUE" from the configuration
    flag_settings: tuple[str, ...]  # from --set: applied after the file's, so they win
    python: str | None
    env: Mapping[str, str]

    def overrides(
        self, stacks: Sequence[Stack], *, server_cpus: int, many: bool = False
    ) -> dict[str, dict[str, str]]:
        """Per-stack settings; the file's that no selected stack has are left out, not refused."""
        names = {stack.name: {s.name for s in stack.settings} for stack in stacks}
        applicable = []
        for pair in self.file_settings:
            stack, dot, setting = pair.partition("=")[0].rpartition(".")
            # a typo in a selected stack's setting is still refused, by that stack
            known = stack in names if dot else any(setting in n for n in names.values())
            if known:
                applicable.append(pair)
        return parse_overrides(
            [*applicable, *self.flag_settings], stacks, server_cpus=server_cpus, many=many
        )

    def interpreter(self) -> Interpreter:
        return probe(self.python) if self.python else own()

    def record(self) -> ConfigRecord | None:
        return self.config.to_record()


def _pick(flag: Any, entry: Any) -> Any:
    return flag if flag is not None else entry


def _options(args: argparse.Namespace, entry: AppEntry, app_dir: str | None) -> UserAppOptions:
    status = _pick(getattr(args, "expect_status", None), entry.expect_status)
    return UserAppOptions(
        interface=_pick(getattr(args, "interface", None), entry.interface),
        path=_pick(getattr(args, "path", None), entry.path),
        app_dir=_pick(getattr(args, "app_dir", None), app_dir),
        expect_status=DEFAULT_EXPECT_STATUS if status is None else status,
        expect_json=_pick(getattr(args, "expect_json", None), entry.expect_json),
        expect_regex=_pick(getattr(args, "expect_regex", None), entry.expect_regex),
    )


def resolve(args: argparse.Namespace) -> Project:
    config = project_config(args)
    # a project's apps import from its own folder, wherever below it the command runs
    app_dir = config.app_dir or (str(config.source.parent) if config.source else None)
    flag_apps = getattr(args, "app", None)
    if isinstance(flag_apps, str):
        flag_apps = [flag_apps]
    if flag_apps:
        entries = [AppEntry(spec=spec) for spec in expand_app_names(flag_apps)]
    else:
        entries = list(config.apps) or [AppEntry(spec=DEFAULT_APP)]
    apps = tuple(
        AppChoice(spec=e.spec, options=_options(args, config.app_entry(e), app_dir))
        for e in entries
    )
    flag_stacks = getattr(args, "stack", None)
    if isinstance(flag_stacks, str):
        flag_stacks = [flag_stacks]
    return Project(
        config=config,
        apps=apps,
        stacks=tuple(flag_stacks) if flag_stacks else (config.stacks or None),
        profiles=tuple(getattr(args, "profile", None) or ()) or (config.profiles or None),
        repeats=_pick(getattr(args, "repeats", None), config.repeats),
        file_settings=config.settings,
        flag_settings=tuple(getattr(args, "set", None) or ()),
        python=getattr(args, "python", None) or config.python,
        env={**config.env, **parse_env_pairs(getattr(args, "env", None) or [])},
    )
