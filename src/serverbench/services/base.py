"""What a service plugin is: a context in, a `ServicePlan` out. A plugin never spawns.

A service is something an app needs beside its server, such as a throwaway PostgreSQL. Its
plan lists the commands to run to completion before it starts (initdb), the one long-running
process, the command that says it is ready, the commands that fill it (schema and data), the
environment the app receives (`DATABASE_URL`), and the folders to remove after the job.
`serverbench.run.services` is the only place that acts on a plan.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

SettingValue = int | str | bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceFile:
    path: Path
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """A command run to completion; a non-zero exit (or the timeout) fails the service."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceProcess:
    """The service's long-running process (it may fork processes of its own)."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    stop_signal: signal.Signals = signal.SIGTERM
    pinned: bool = True  # on the server CPUs: it serves the server, its CPU is part of the cost


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSetting:
    name: str
    value: SettingValue
    source: str  # where the value comes from, shown in the report like a stack's defaults


@dataclass(frozen=True, slots=True, kw_only=True)
class ServicePlan:
    name: str
    files: tuple[ServiceFile, ...]
    init: tuple[Step, ...]  # before the process starts
    process: ServiceProcess
    ready: Step  # run again and again until it exits 0
    setup: tuple[Step, ...]  # once ready, in order
    app_env: Mapping[str, str]  # what every server process of the stack receives
    settings: tuple[ServiceSetting, ...]
    remove_after: tuple[Path, ...]  # folders and files deleted once the process is stopped
    version: str = ""
    ready_timeout_s: float = 30.0
    secrets: tuple[str, ...] = ()  # values to mask wherever the plan is recorded or shown

    def masked(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceContext:
    run_dir: Path  # the job's folder; the service gets its own folder inside
    port: int
    password: str  # generated per job by the caller (a plan stays pure and repeatable)
    run_as: str | None  # the unprivileged user to run as when serverbench runs as root
    python: str  # the interpreter that runs serverbench's shims
    setup_sql: str = ""  # the app's schema and data, run once the service is ready
    database: str = "serverbench"  # what the app's DATABASE_URL names
    host: str = "127.0.0.1"


class Service(Protocol):
    name: ClassVar[str]
    summary: ClassVar[str]

    def unavailable_reason(self) -> str | None:
        """None when usable here; otherwise why not and how to fix it."""

    def default_run_as(self) -> str | None:
        """The unprivileged user to run as, when serverbench runs as root."""

    def plan(self, ctx: ServiceContext) -> ServicePlan:
        """Commands and files that bring the service up for one job. Must not spawn anything."""

    def leftovers(self, plan: ServicePlan) -> tuple[Step, ...]:
        """Commands that remove what a killed process left outside its folders (read, not run)."""
