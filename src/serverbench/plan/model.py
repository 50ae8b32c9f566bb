"""The plan of a run: what it measures (stacks x apps x profiles x repeats) as jobs, and how the
plan and its apps are written into results.json and read back to resume it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from serverbench.apps.registry import BUILTIN_APPS, App
from serverbench.observe.host_limits import CpuSplit
from serverbench.plan.profiles import Profile
from serverbench.plan.server_env import masked, unmasked
from serverbench.results.inference import PrecisionGoal
from serverbench.results.model import (
    AppRecord,
    ConfigRecord,
    NotApplicable,
    PlanRecord,
    Role,
    SettingRecord,
)
from serverbench.stacks import get_stack
from serverbench.stacks.base import interface_mismatch
from serverbench.stacks.interpreter import Interpreter, own, probe
from serverbench.workloads.catalog import builtin_workload, workload_settings

REFERENCE_STACK = "nginx-static"
EXTERNAL_STACK = "url"  # the stack name a --url target's runs are recorded under
STARTUP_ESTIMATE_S = 2.0
# A server may need a while after an overload to answer again (its accept queue full of the
# load's dead connections, the verifier's SYNs backing off); one that answers nothing for this
# long after the measurement has stopped answering.
RECOVERY_S = 60.0
# Every job listens on a fresh port, so the TIME_WAIT sockets of earlier jobs never collide with
# its connections (and tcp_tw_reuse covers loopback); only a large pile-up costs the kernel
# anything, so the runner pauses when many remain, as TechEmpower does, at a higher mark.
TIME_WAIT_THRESHOLD = 30000


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    stack_names: tuple[str, ...]
    apps: tuple[App, ...]
    profiles: tuple[Profile, ...]
    repeats: int
    overrides: dict[str, dict[str, str]]
    split: CpuSplit
    out_dir: Path
    references: bool = True
    time_wait_threshold: int = TIME_WAIT_THRESHOLD
    max_drain_s: float = 60.0
    order_seed: int = 0
    recovery_s: float = RECOVERY_S  # how long a server may take to answer again after the load
    url: str | None = None  # the user's own server (run --url): no stacks are started
    allow_remote: bool = False
    # --precision: after `repeats` rounds, more rounds for the cells not yet precise enough
    precision: PrecisionGoal | None = None
    python: str | None = None  # the app's interpreter (--python); None: serverbench's own
    env: Mapping[str, str] = field(default_factory=dict)  # for every server process (--env)
    config: ConfigRecord | None = None  # the project configuration used, as recorded

    @property
    def interpreter(self) -> Interpreter:
        return probe(self.python) if self.python else own()


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    round: int
    stack: str
    app: App
    profile: Profile
    role: Role

    @property
    def id(self) -> str:
        return f"{self.round}/{self.stack}/{self.app.name}/{self.profile.name}"

    @property
    def planned_s(self) -> float:
        return (
            STARTUP_ESTIMATE_S
            + self.profile.primer_s
            + self.profile.warmup_s
            + self.profile.duration_s
        )


def reference_app(apps: Sequence[App]) -> App:
    """The ceiling answers the seed's JSON; user apps are read against it on the seed path,
    and a built-in workload other than json is not compared with it (it is other work)."""

    def same_work(app: App) -> bool:
        workload = builtin_workload(app)
        return app.builtin and (workload is None or workload.same_work_as_ceiling)

    return next((app for app in apps if same_work(app)), BUILTIN_APPS["seed-flask"])


def not_applicable(plan: RunPlan) -> list[NotApplicable]:
    """Stack x app pairs that cannot run at all: the stack does not speak the app's interface."""
    pairs = []
    for name in plan.stack_names:
        for app in plan.apps:
            reason = interface_mismatch(get_stack(name), app)
            if reason is not None:
                pairs.append(NotApplicable(stack=name, app=app.name, reason=reason))
    return pairs


def plan_jobs(plan: RunPlan) -> list[Job]:
    """Every job of the plan: each round runs every stack x app cell in a new shuffled order.

    The nginx-static ceiling runs in the first round only: it is a reference for the order of
    magnitude (about 10x the seed's Python stacks here), not a figure the run compares, and
    its two further repeats were 4 of the default run's 24 jobs."""
    rng = random.Random(plan.order_seed)
    cells: list[tuple[str, App, Role]]
    if plan.url is not None:
        cells = [(EXTERNAL_STACK, app, "external") for app in plan.apps]
    else:
        excluded = {(pair.stack, pair.app) for pair in not_applicable(plan)}
        cells = [
            (stack, app, "stack")
            for stack in plan.stack_names
            for app in plan.apps
            if (stack, app.name) not in excluded
        ]
    reference: tuple[str, App, Role] = (REFERENCE_STACK, reference_app(plan.apps), "reference")
    jobs: list[Job] = []
    for round_number in range(1, plan.repeats + 1):
        order = [*cells, reference] if plan.references and round_number == 1 else list(cells)
        rng.shuffle(order)
        for stack, app, role in order:
            jobs.extend(
                Job(round=round_number, stack=stack, app=app, profile=p, role=role)
                for p in plan.profiles
            )
    return jobs


def plan_record(plan: RunPlan) -> PlanRecord:
    return PlanRecord(
        stacks=plan.stack_names,
        apps=tuple(app.name for app in plan.apps),
        profiles=plan.profiles,
        repeats=plan.repeats,
        overrides=plan.overrides,
        references=plan.references,
        order_seed=plan.order_seed,
        time_wait_threshold=plan.time_wait_threshold,
        max_drain_s=plan.max_drain_s,
        recovery_s=plan.recovery_s,
        url=plan.url,
        allow_remote=plan.allow_remote,
        precision=plan.precision,
        python=plan.python,
        python_version=plan.interpreter.version,
        # values of secret-looking keys are never written
        env=masked(plan.env),
        config=plan.config,
    )


def plan_from_record(
    record: PlanRecord, apps: tuple[App, ...], split: CpuSplit, out_dir: Path
) -> RunPlan:
    return RunPlan(
        stack_names=record.stacks,
        apps=apps,
        profiles=record.profiles,
        repeats=record.repeats,
        overrides={stack: dict(values) for stack, values in record.overrides.items()},
        split=split,
        out_dir=out_dir,
        references=record.references,
        time_wait_threshold=record.time_wait_threshold,
        max_drain_s=record.max_drain_s,
        recovery_s=record.recovery_s,
        order_seed=record.order_seed,
        url=record.url,
        allow_remote=record.allow_remote,
        precision=record.precision,
        python=record.python,
        env=unmasked(record.env),
        config=record.config,
    )


def app_record(app: App, url: str | None = None) -> AppRecord:
    return AppRecord(
        name=app.name,
        import_string=app.import_string,
        interface="http" if url is not None else app.interface,
        path_template=app.path_template,
        load_path=app.load_path,
        expected=app.expected,
        builtin=app.builtin,
        search_path=app.search_path,
        workload=app.workload,
        url=url,
        services=app.services,
        settings=tuple(SettingRecord(**setting) for setting in workload_settings(app)),
    )


def app_from_record(record: AppRecord) -> App:
    # what a built-in app needs installed is the registry's, not the results file's
    known = BUILTIN_APPS.get(record.name) if record.builtin else None
    return App(
        name=record.name,
        import_string=record.import_string,
        interface="asgi" if record.interface == "asgi" else "wsgi",
        path_template=record.path_template,
        expected=record.expected,
        builtin=record.builtin,
        search_path=record.search_path,
        workload=record.workload,
        services=record.services,
        needs_modules=known.needs_modules if known else (),
        extra=known.extra if known else None,
    )
