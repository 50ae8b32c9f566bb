"""The results document a run starts from: the machine, the plan, and every stack and app it
names, as the typed records of `serverbench.results.model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from serverbench import __version__
from serverbench.observe.doctor import diagnose, read_host_facts, warnings_of
from serverbench.observe.environment import collect_environment
from serverbench.plan.model import (
    EXTERNAL_STACK,
    REFERENCE_STACK,
    RunPlan,
    app_record,
    not_applicable,
    plan_record,
)
from serverbench.results.model import ResultsDocument, StackRecord
from serverbench.results.store import SCHEMA_VERSION
from serverbench.run.url_target import EXTERNAL_NOTE
from serverbench.stacks import get_stack
from serverbench.stacks.interpreter import Interpreter

DOCTOR_SAMPLE_S = 0.5  # watching steal and busy processes before the run


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def stack_record(name: str, python: Interpreter) -> StackRecord:
    """A stack as the run will use it: versions and availability in the servers' interpreter."""
    stack = get_stack(name)
    return StackRecord(
        summary=stack.summary,
        model=stack.model,
        interfaces=tuple(sorted(stack.interfaces)),
        packages={name: version for name, version in python.versions(stack.packages).items()},
        setting_sources={s.name: s.source for s in stack.settings},
        unavailable=stack.unavailable_reason(python),
        variant_of=stack.variant_of,
        keeps_alive=stack.keeps_alive,
    )


def new_document(plan: RunPlan, command: Sequence[str]) -> ResultsDocument:
    stacks: dict[str, StackRecord] = {}
    if plan.url is not None:
        stacks[EXTERNAL_STACK] = StackRecord(
            summary=f"the server at {plan.url}",
            model=EXTERNAL_NOTE,
            interfaces=("http",),
            packages={},
            setting_sources={},
            url=plan.url,
        )
    for name in (*plan.stack_names, *((REFERENCE_STACK,) if plan.references else ())):
        stacks[name] = stack_record(name, plan.interpreter)
    max_connections = max(p.connections for p in plan.profiles)
    # the doctor's checks (`serverbench doctor`) for the heaviest profile, recorded and warned
    findings = diagnose(read_host_facts(DOCTOR_SAMPLE_S), max_connections)
    return ResultsDocument(
        schema_version=SCHEMA_VERSION,
        serverbench_version=__version__,
        status="running",
        created_at=now(),
        updated_at=now(),
        command=tuple(command),
        environment=collect_environment(),
        cpu_split=plan.split,
        host_warnings=warnings_of(findings),
        doctor=findings,
        plan=plan_record(plan),
        apps={app.name: app_record(app, plan.url) for app in plan.apps},
        stacks=stacks,
        not_applicable=not_applicable(plan),
    )
