"""The inputs a run is refused for before anything starts, beyond the names themselves.

Owns the checks that turn a mistake into one `error:` line (exit 2) instead of a traceback
after the work, or a run whose every job fails: the results folder (`--out`), every `--set`
value for every selected stack (type, range, and a ceiling on process and thread counts
relative to the server CPUs, lifted with --allow-many-processes), an expected status that can
never count as good, and durations no benchmark needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from serverbench.errors import UsageError
from serverbench.stacks.base import Setting, Stack

# Settings that start processes or threads: past these, per server CPU, a server measures its
# own forking and memory pressure (gunicorn with 100,000 workers was still forking when measured)
PROCESSES_PER_CPU = 16
THREADS_PER_CPU = 256
PROCESS_SETTINGS = frozenset({"workers", "processes", "instances", "nginx_workers"})
THREAD_SETTINGS = frozenset({"threads", "blocking_threads"})
# any other whole number (backlog, keep-alive seconds, connection limits) stays in a C int
INT_MAX = 2**31 - 1
MAX_DURATION_S = 24 * 3600.0
GOOD_STATUSES = range(200, 400)  # wrk counts 4xx and 5xx as errors, 1xx is never final
PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")


def check_out_dir(out: Path) -> None:
    """`--out` must be a folder serverbench can create or write; refused otherwise."""
    out = out.absolute()
    where = f"--out {out}"
    for pseudo in PSEUDO_FILESYSTEMS:
        if out == Path(pseudo) or Path(pseudo) in out.parents:
            raise UsageError(f"{where}: {pseudo} is not a place for results; choose a folder")
    if out.exists() and not out.is_dir():
        raise UsageError(f"{where} is an existing file; choose a folder (new or existing)")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(
            f"{where}: {existing} is a file, so no folder can be made under it; choose another"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(
            f"{where}: {existing} is not writable for this user; choose a folder you can write"
        )


def check_expected_status(status: int | None) -> None:
    """None: not given (the default 200, or the project file's)."""
    if status is not None and status not in GOOD_STATUSES:
        raise UsageError(
            f"--expect-status {status}: only statuses 200-399 count as good responses (wrk "
            "counts 4xx and 5xx as errors), so every request would fail; expect a 2xx or 3xx"
        )


def check_duration(flag: str, seconds: float | None) -> None:
    if seconds is not None and not seconds <= MAX_DURATION_S:
        raise UsageError(
            f"{flag} {seconds:g}: more than {MAX_DURATION_S / 3600:g} hours per measurement; "
            "give seconds, e.g. 30"
        )


def _ceiling(setting: Setting, server_cpus: int) -> tuple[int, str] | None:
    if setting.name in PROCESS_SETTINGS:
        return PROCESSES_PER_CPU * server_cpus, f"{PROCESSES_PER_CPU} per server CPU"
    if setting.name in THREAD_SETTINGS:
        return THREADS_PER_CPU * server_cpus, f"{THREADS_PER_CPU} per server CPU"
    return None


def check_value(stack: Stack, setting: Setting, raw: str, *, server_cpus: int, many: bool) -> None:
    """One `--set` value for one stack: its type, its range, and the process/thread ceiling."""
    where = f"--set {stack.name}.{setting.name}={raw}"
    if setting.kind is bool:
        if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise UsageError(f"{where}: expected true or false")
        return
    if setting.kind is str:
        if setting.choices and raw not in setting.choices:
            raise UsageError(f"{where}: expected one of {', '.join(setting.choices)}")
        return
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{where}: expected a whole number, e.g. {setting.name}=4") from None
    if setting.minimum is not None and value < setting.minimum:
        raise UsageError(f"{where}: must be at least {setting.minimum}")
    if value > INT_MAX:
        raise UsageError(f"{where}: must be at most {INT_MAX:,}")
    ceiling = _ceiling(setting, server_cpus)
    if ceiling is not None and value > ceiling[0] and not many:
        limit, rule = ceiling
        raise UsageError(
            f"{where}: more than {limit} ({rule}, {server_cpus} server CPU"
            f"{'s' if server_cpus != 1 else ''}) would measure the server's own start-up and "
            "memory pressure; lower it, or add --allow-many-processes if you mean it"
        )


def check_overrides(
    overrides: Mapping[str, Mapping[str, str]],
    stacks: Sequence[Stack],
    *,
    server_cpus: int,
    many: bool = False,
) -> None:
    """Every override of every selected stack: a setting it has, with a value it takes."""
    by_name = {stack.name: stack for stack in stacks}
    for stack_name, values in overrides.items():
        stack = by_name[stack_name]
        known = {setting.name: setting for setting in stack.settings}
        for name, raw in values.items():
            if name not in known:
                raise UsageError(
                    f"--set {stack_name}.{name}={raw}: stack {stack_name} has no setting "
                    f"{name!r}; its settings are: {', '.join(known) or 'none'}"
                )
            check_value(stack, known[name], raw, server_cpus=server_cpus, many=many)
