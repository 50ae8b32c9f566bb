"""Orchestration of `serverbench run`: the stack x app x profile x repeat matrix, measured.

For every round (one per repeat) the stack x app cells are shuffled; each job starts a fresh
stack, verifies it, primes and warms it up (discarded), measures with wrk while sampling every
process, verifies it again, and stops it. Every finished job is written to results.json at
once, so an interrupted run keeps what it measured and `--resume` continues from there. The
nginx-static ceiling is measured in the same rounds, as a reference.

With `--url` the one target is a server the user runs (see external.py): the same jobs, with
no stack to start, watch or stop.

A fault ends one job, never the run, and every wait is bounded: a stack that does not start,
dies, stops answering or answers wrongly is recorded as a failed run with the kind of fault
and its log tail, and the next job starts. Server processes that exit during the measurement
(a worker killed and respawned) are recorded with the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from serverbench import __version__
from serverbench.apps.importer import measure_in_process_cost
from serverbench.apps.registry import BUILTIN_APPS, App, app_to_dict
from serverbench.errors import (
    AppError,
    LoadGeneratorError,
    ServerbenchError,
    StackStartError,
    StackUnavailable,
    VerificationError,
)
from serverbench.load.wrk import (
    WrkMeasurement,
    WrkSettings,
    build_argv,
    lua_script_path,
    measurement_to_dict,
)
from serverbench.load.wrk_process import run_wrk
from serverbench.observe.environment import collect_environment, environment_to_dict
from serverbench.observe.host_limits import (
    CpuSplit,
    backlog_warnings,
    cpu_split_to_dict,
    time_wait_count,
    wait_for_time_wait_drain,
)
from serverbench.observe.kernel_counters import difference, read_counters
from serverbench.observe.sampler import Monitor, Usage, usage_to_dict
from serverbench.plan.profiles import Profile, profile_to_dict
from serverbench.results.store import RESULTS_NAME, SCHEMA_VERSION, Document, save
from serverbench.run.lifecycle import RunningStack, check_usable, running_stack, stack_context
from serverbench.run.progress import RunProgress
from serverbench.run.url_target import (
    EXTERNAL_NOTE,
    EXTERNAL_ROLE,
    EXTERNAL_STACK,
    parse_target_url,
    target_stack,
)
from serverbench.run.verify import Mismatch, verify
from serverbench.stacks import get_stack
from serverbench.stacks.base import package_versions

REFERENCE_STACK = "nginx-static"
PRIMER_CONNECTIONS = 8
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    round: int
    stack: str
    app: App
    profile: Profile
    role: str  # "stack", "reference" or "external"

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
    """The ceiling answers the seed's JSON; user apps are read against it on the seed path."""
    return next((app for app in apps if app.builtin), BUILTIN_APPS["seed-flask"])


def not_applicable(plan: RunPlan) -> list[dict[str, str]]:
    """Stack x app pairs that cannot run at all: the stack does not speak the app's interface."""
    pairs = []
    for name in plan.stack_names:
        interfaces = get_stack(name).interfaces
        for app in plan.apps:
            if app.interface not in interfaces:
                served = "/".join(sorted(interfaces)).upper()
                reason = f"{name} serves {served} apps only; {app.name} is {app.interface.upper()}"
                pairs.append({"stack": name, "app": app.name, "reason": reason})
    return pairs


def plan_jobs(plan: RunPlan) -> list[Job]:
    rng = random.Random(plan.order_seed)
    if plan.url is not None:
        cells = [(EXTERNAL_STACK, app, EXTERNAL_ROLE) for app in plan.apps]
    else:
        excluded = {(pair["stack"], pair["app"]) for pair in not_applicable(plan)}
        cells = [
            (stack, app, "stack")
            for stack in plan.stack_names
            for app in plan.apps
            if (stack, app.name) not in excluded
        ]
    if plan.references:
        cells.append((REFERENCE_STACK, reference_app(plan.apps), "reference"))
    jobs: list[Job] = []
    for round_number in range(1, plan.repeats + 1):
        order = list(cells)
        rng.shuffle(order)
        for stack, app, role in order:
            jobs.extend(
                Job(round=round_number, stack=stack, app=app, profile=p, role=role)
                for p in plan.profiles
            )
    return jobs


def split_usage(usage: Usage) -> dict[str, Any]:
    """The stack's components apart from the load generator's."""
    server = tuple(c for c in usage.components if c.name != "wrk")
    client = tuple(c for c in usage.components if c.name == "wrk")
    return {
        "server": usage_to_dict(dataclasses.replace(usage, components=server)),
        "client": usage_to_dict(dataclasses.replace(usage, components=client)),
    }


@contextlib.contextmanager
def harness_on(cpus: Sequence[int]) -> Iterator[None]:
    """Keep serverbench's own work (the sampler, the verifier) off the servers' CPUs."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def check_wrk_available() -> None:
    if shutil.which("wrk") is None:
        raise LoadGeneratorError(
            "wrk is not on PATH; install it: apt-get install wrk (or run scripts/setup)"
        )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_document(plan: RunPlan, command: Sequence[str]) -> Document:
    stacks: dict[str, Any] = {}
    apps = {app.name: app_to_dict(app) for app in plan.apps}
    if plan.url is not None:
        stacks[EXTERNAL_STACK] = {
            "summary": f"the server at {plan.url}",
            "model": EXTERNAL_NOTE,
            "interfaces": ["http"],
            "packages": {},
            "setting_sources": {},
            "unavailable": None,
            "url": plan.url,
        }
        apps = {name: {**app, "interface": "http", "url": plan.url} for name, app in apps.items()}
    for name in (*plan.stack_names, *((REFERENCE_STACK,) if plan.references else ())):
        stack = get_stack(name)
        stacks[name] = {
            "summary": stack.summary,
            "model": stack.model,
            "interfaces": sorted(stack.interfaces),
            "packages": package_versions(stack.packages),
            "setting_sources": {s.name: s.source for s in stack.settings},
            "unavailable": stack.unavailable_reason(),
        }
    max_connections = max(p.connections for p in plan.profiles)
    return {
        "schema_version": SCHEMA_VERSION,
        "serverbench_version": __version__,
        "status": "running",
        "created_at": now(),
        "updated_at": now(),
        "command": list(command),
        "environment": environment_to_dict(collect_environment()),
        "cpu_split": cpu_split_to_dict(plan.split),
        "host_warnings": backlog_warnings(max_connections),
        "plan": {
            "stacks": list(plan.stack_names),
            "apps": [app.name for app in plan.apps],
            "profiles": [profile_to_dict(p) for p in plan.profiles],
            "repeats": plan.repeats,
            "overrides": plan.overrides,
            "references": plan.references,
            "order_seed": plan.order_seed,
            "time_wait_threshold": plan.time_wait_threshold,
            "max_drain_s": plan.max_drain_s,
            "recovery_s": plan.recovery_s,
            "url": plan.url,
            "allow_remote": plan.allow_remote,
        },
        "apps": apps,
        "stacks": stacks,
        "not_applicable": not_applicable(plan),
        "references": {"app_cost": {}},
        "runs": [],
        "events": [],
    }


class Runner:
    def __init__(
        self,
        plan: RunPlan,
        document: Document,
        *,
        measure: Callable[..., WrkMeasurement] = run_wrk,
    ) -> None:
        self.plan = plan
        self.document = document
        self.path = plan.out_dir / RESULTS_NAME
        self.measure = measure  # the load driver: real wrk, or a fake one in fast tests

    def save(self) -> None:
        self.document["updated_at"] = now()
        save(self.document, self.path)

    def done_ids(self) -> set[str]:
        return {run["id"] for run in self.document["runs"]}

    def run(self) -> Document:
        jobs = [job for job in plan_jobs(self.plan) if job.id not in self.done_ids()]
        self.save()
        with harness_on(self.plan.split.client_cpus):
            return self._run(jobs)

    def _run(self, jobs: list[Job]) -> Document:
        try:
            with RunProgress(
                sum(j.planned_s for j in jobs) + 4 * len(self.plan.apps), len(jobs)
            ) as progress:
                self._measure_app_costs(progress)
                for job in jobs:
                    progress.begin(
                        f"{job.stack} · {job.app.name} · {job.profile.name} · round {job.round}/{self.plan.repeats}"
                    )
                    self._drain_time_wait(progress)
                    record = self._run_job(job, progress)
                    self.document["runs"].append(record)
                    self.save()
                    progress.finish(job.planned_s)
        except BaseException:
            self.document["status"] = "interrupted"
            self.save()
            raise
        self.document["status"] = "complete"
        self.save()
        return self.document

    def _measure_app_costs(self, progress: RunProgress) -> None:
        costs = self.document["references"]["app_cost"]
        if self.plan.url is not None:
            return  # the user's server runs an app serverbench cannot import
        for app in self.plan.apps:
            if app.name in costs:
                continue
            progress.note(f"measuring {app.name}'s own cost per request in-process")
            try:
                cost = measure_in_process_cost(app, duration_s=2.0)
            except AppError as error:
                costs[app.name] = {"error": str(error)}
            else:
                costs[app.name] = dataclasses.asdict(cost)
            self.save()

    def _drain_time_wait(self, progress: RunProgress) -> None:
        count = time_wait_count()
        if count <= self.plan.time_wait_threshold:
            return
        progress.note(f"waiting for {count} TIME_WAIT sockets to drain")
        waited = wait_for_time_wait_drain(self.plan.time_wait_threshold, self.plan.max_drain_s)
        self.document["events"].append(
            {
                "at": now(),
                "kind": "time_wait_pause",
                "time_wait_before": count,
                "time_wait_after": time_wait_count(),
                "waited_s": round(waited, 2),
            }
        )

    def _record(self, job: Job, status: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": job.id,
            "round": job.round,
            "stack": job.stack,
            "app": job.app.name,
            "profile": job.profile.name,
            "role": job.role,
            "status": status,
            "failure": None,
            **fields,
        }

    def _run_job(self, job: Job, progress: RunProgress) -> dict[str, Any]:
        started_at = now()
        try:
            if job.role == EXTERNAL_ROLE:
                return self._run_external(job, started_at)
            return self._run_stack(job, started_at)
        except StackUnavailable as error:
            return self._record(
                job, "skipped", failure={"kind": "unavailable", "message": str(error)}
            )
        except ServerbenchError as error:
            kind = FAILURE_KINDS.get(type(error), "error")
            progress.note(f"{job.stack} failed: {str(error).splitlines()[0]}")
            return self._record(
                job,
                "failed",
                started_at=started_at,
                finished_at=now(),
                failure={"kind": kind, "message": str(error)},
            )

    def _run_stack(self, job: Job, started_at: str) -> dict[str, Any]:
        stack = get_stack(job.stack)
        ctx = stack_context(
            job.app,
            run_dir=self._job_dir(job),
            server_cpu_count=len(self.plan.split.server_cpus),
            overrides=self.plan.overrides.get(job.stack, {}),
        )
        check_usable(stack, ctx)
        with running_stack(stack, ctx, cpus=self.plan.split.server_taskset()) as running:
            return self._measure(job, running, started_at)

    def _run_external(self, job: Job, started_at: str) -> dict[str, Any]:
        assert self.plan.url is not None
        target = parse_target_url(self.plan.url, allow_remote=self.plan.allow_remote)
        mismatch = verify(target.front, job.app)
        if mismatch is not None:
            raise VerificationError(
                f"{target.url} answered wrongly before the load: {mismatch}; check that your "
                "server is up, or the expected response (--expect-status/--expect-json/"
                "--expect-regex)"
            )
        return self._measure(job, target_stack(target), started_at)

    def _job_dir(self, job: Job) -> Path:
        return self.plan.out_dir / "logs" / job.id.replace("/", "-")

    def _wrk(
        self,
        job: Job,
        running: RunningStack,
        settings: WrkSettings,
        label: str,
        on_start: Callable[[int], None] | None = None,
    ) -> WrkMeasurement:
        return self.measure(
            settings,
            running.url + job.app.load_path,
            out_dir=self._job_dir(job),
            label=label,
            cpus=self.plan.split.client_taskset(),
            on_start=on_start,
        )

    def _post_verify(self, running: RunningStack, app: App) -> tuple[Mismatch | None, float]:
        """The answer after the load, and how many seconds the server took to give it.

        A server still busy with the load's leftovers gets up to plan.recovery_s.
        """
        started = time.monotonic()
        deadline = started + self.plan.recovery_s
        while True:
            mismatch = verify(running.front, app)
            if (
                mismatch is None
                or mismatch.answered
                or time.monotonic() >= deadline
                or running.exited() is not None
            ):
                return mismatch, time.monotonic() - started
            time.sleep(0.5)

    def _measure(self, job: Job, running: RunningStack, started_at: str) -> dict[str, Any]:
        profile = job.profile
        if profile.primer_s > 0:
            primer = WrkSettings(
                threads=1,
                connections=min(PRIMER_CONNECTIONS, profile.connections),
                duration_s=max(1.0, profile.primer_s),
                timeout_s=profile.timeout_s,
            )
            self._wrk(job, running, primer, "primer")
        shape = WrkSettings(
            threads=profile.threads,
            connections=profile.connections,
            duration_s=profile.duration_s,
            timeout_s=profile.timeout_s,
        )
        if profile.warmup_s > 0:
            self._wrk(
                job,
                running,
                dataclasses.replace(shape, duration_s=max(1.0, profile.warmup_s)),
                "warmup",
            )
        common: dict[str, Any] = {
            "started_at": started_at,
            "commands": running.commands(),
            "settings": dict(running.plan.settings),
            "notes": list(running.plan.notes),
            "cpus": {
                "server": self.plan.split.server_taskset(),
                "client": self.plan.split.client_taskset(),
            },
            "wrk_argv": list(
                build_argv(
                    shape,
                    running.url + job.app.load_path,
                    str(lua_script_path()),
                    self.plan.split.client_taskset(),
                )
            ),
        }
        if job.role == EXTERNAL_ROLE:
            common["url"] = self.plan.url
        monitors: list[Monitor] = []

        def watch(wrk_pid: int) -> None:
            # one sampler for the stack and wrk, started when wrk is: the measured window
            monitor = Monitor({**running.component_pids(), "wrk": wrk_pid})
            monitor.start()
            monitors.append(monitor)

        tree_before = process_tree(running)
        counters_before = read_counters()
        try:
            measurement = self._wrk(job, running, shape, "measure", on_start=watch)
        except LoadGeneratorError as error:
            return self._record(
                job,
                "failed",
                **common,
                finished_at=now(),
                failure=failure(running, "load", str(error)),
            )
        finally:
            usage = monitors[0].stop() if monitors else None
        tree_after = process_tree(running)
        kernel = difference(counters_before, read_counters())
        exits = [
            {"pid": pid, "process": name}
            for pid, name in tree_before.items()
            if pid not in tree_after
        ]
        starts = [pid for pid in tree_after if pid not in tree_before]
        died = running.exited()
        mismatch, recovery_s = self._post_verify(running, job.app) if died is None else (None, 0.0)
        died = running.exited()
        good = measurement.good_responses
        fields: dict[str, Any] = {
            **common,
            "finished_at": now(),
            "wrk": measurement_to_dict(measurement),
            "derived": {
                "good_responses": good,
                "requests_per_sec": measurement.requests_per_sec,
                "raw_requests_per_sec": measurement.raw_requests_per_sec,
                "transfer_bytes_per_sec": measurement.transfer_bytes_per_sec,
            },
            "usage": split_usage(usage) if usage else None,
            "post_verify": str(mismatch) if mismatch else None,
            # seconds until the server answered the verifier after the load: a slow recovery
            # from overload is a finding, not a failure
            "recovery_s": round(recovery_s, 2),
            # host-wide TCP counters over the window: connections the listen queue dropped
            "kernel": kernel,
            # a server process that exited while wrk ran, e.g. a killed worker its master replaced
            "process_exits": exits,
            "process_restarts": min(len(exits), len(starts)),
        }
        if died is not None:
            kind, message = "died", f"{job.stack} died during the measurement: {died}"
        elif mismatch is not None and not mismatch.answered:
            kind, message = (
                "unresponsive",
                f"{job.stack} stopped answering: {good} good responses in the measurement, "
                f"then no answer for {self.plan.recovery_s:g} s after it ({mismatch})",
            )
        elif good == 0:
            kind, message = "no_good_responses", why_no_good_response(measurement, profile)
        elif mismatch is not None:
            kind, message = "wrong_response", f"answered wrongly after the load: {mismatch}"
        else:
            return self._record(job, "ok", **fields)
        return self._record(job, "failed", **fields, failure=failure(running, kind, message))


def why_no_good_response(measurement: WrkMeasurement, profile: Profile) -> str:
    """What the load got instead of a good response, in the terms a user can act on."""
    errors = measurement.socket_errors
    if measurement.requests == 0:
        return (
            "no response at all during the measurement (socket errors: connect "
            f"{errors.connect}, read {errors.read}, write {errors.write})"
        )
    if errors.timeout >= measurement.requests:
        return (
            f"all {measurement.requests:,} responses arrived, but each after wrk's "
            f"{profile.timeout_s:g} s timeout, so none counts: the server could not keep up "
            "with this load (a longer --timeout measures how late they were)"
        )
    return (
        f"{measurement.requests:,} responses, none good: {measurement.non_2xx_3xx:,} with a "
        f"4xx/5xx status and {errors.timeout:,} after the {profile.timeout_s:g} s timeout"
    )


FAILURE_KINDS: dict[type[ServerbenchError], str] = {
    StackStartError: "start",
    VerificationError: "verify",
}


def failure(running: RunningStack, kind: str, message: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "message": message,
        "log_tail": {process.name: process.tail() for process in running.processes},
    }


def process_tree(running: RunningStack) -> dict[int, str]:
    """pid -> "component: process name" for every live process of the stack."""
    return {
        pid: f"{process.name}: {name}"
        for process in running.processes
        for pid, name in process.live_tree().items()
    }
