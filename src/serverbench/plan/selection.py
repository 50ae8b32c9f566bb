"""What the user picked: stacks by name (or "all"), per-stack setting overrides, the app."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from serverbench.apps.importer import inspect_app
from serverbench.apps.registry import DEFAULT_APP, App, UserAppOptions, resolve_app
from serverbench.errors import AppError, StackUnavailable, UsageError
from serverbench.plan.inputs import check_overrides
from serverbench.services.registry import get_service
from serverbench.stacks import SEED_STACKS, STACKS, get_stack, interpreter
from serverbench.stacks.base import Stack
from serverbench.stacks.interpreter import Interpreter
from serverbench.workloads.catalog import workload_settings


def select_stacks(
    names: Sequence[str] | None, *, default: Sequence[str] = SEED_STACKS
) -> list[Stack]:
    """Stacks in the order asked; "all" means every registered stack. Duplicates are dropped."""
    wanted: list[str] = []
    for name in names or default:
        for part in name.split(","):
            part = part.strip()
            if not part:
                continue
            expanded = list(STACKS) if part == "all" else [part]
            wanted.extend(item for item in expanded if item not in wanted)
    return [get_stack(name) for name in wanted]


def parse_overrides(
    pairs: Sequence[str], stacks: Sequence[Stack], *, server_cpus: int, many: bool = False
) -> dict[str, dict[str, str]]:
    """`--set NAME=VALUE` (every selected stack that has NAME) or `--set STACK.NAME=VALUE`.

    Every value is checked for every stack it applies to (plan/inputs.py), so a bad one is
    refused before anything starts rather than failing each job of that stack.
    """
    per_stack: dict[str, dict[str, str]] = {stack.name: {} for stack in stacks}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(
                f"--set {pair!r}: expected NAME=VALUE or STACK.NAME=VALUE, e.g. --set workers=4"
            )
        stack_name, dot, setting = key.rpartition(".")
        if dot:
            if stack_name not in per_stack:
                get_stack(stack_name)  # an unknown name is refused with the list of stacks
                raise UsageError(
                    f"--set {pair!r}: stack {stack_name!r} is not selected; add --stack {stack_name}"
                )
            targets = [stack_name]
        else:
            targets = [s.name for s in stacks if any(x.name == setting for x in s.settings)]
            if not targets:
                known = "; ".join(
                    f"{s.name}: {', '.join(x.name for x in s.settings)}" for s in stacks
                )
                raise UsageError(
                    f"--set {pair!r}: no selected stack has a setting {setting!r}; "
                    f"use one of their settings ({known})"
                )
        for target in targets:
            per_stack[target][setting] = value
    check_overrides(per_stack, stacks, server_cpus=server_cpus, many=many)
    return per_stack


def check_builtin_modules(app: App, python: Interpreter) -> None:
    """A built-in app whose framework or driver is missing is refused before anything starts
    (served, it would answer 500 to every request)."""
    missing = python.missing(*app.needs_modules)
    if missing is not None and app.extra is not None:
        raise AppError(
            f"the built-in app {app.name} cannot be served: "
            f"{python.missing_module_reason(missing, f'serverbench[{app.extra}]')}"
        )


def prepare_app(
    spec: str | None,
    options: UserAppOptions,
    python: Interpreter | None = None,
    env: Mapping[str, str] | None = None,
) -> App:
    """The app, imported and inspected; refused if a service it needs cannot run here."""
    app = resolve_app(spec or DEFAULT_APP, options)
    for name in app.services:
        reason = get_service(name).unavailable_reason()
        if reason is not None:
            raise StackUnavailable(f"app {app.name} needs {name}, which is unavailable: {reason}")
    workload_settings(app)  # refuses a bad $SERVERBENCH_DB_POOL_SIZE
    check_builtin_modules(app, python or interpreter.own())
    return inspect_app(app, interface_given=options.interface is not None, python=python, env=env)


def require_available(
    stacks: Sequence[Stack], names: Sequence[str] | None, python: Interpreter
) -> None:
    """A stack the user named that cannot run here stops the run; ones from "all" are skipped."""
    named = {part.strip() for name in names or [] for part in name.split(",")}
    for stack in stacks:
        reason = stack.unavailable_reason(python)
        if reason is not None and (names is None or stack.name in named):
            raise StackUnavailable(f"stack {stack.name} is unavailable: {reason}")
