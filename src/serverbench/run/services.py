"""Bringing a service up and down: the one place that acts on a ServicePlan.

Up: write its files, run its init commands, start its process (pinned to the server CPUs: it
serves the server), run the ready command until it succeeds (failing at once, with the log
tail, if the process exits), then its setup commands. Down, always: stop the process, remove
what a killed process left behind, and delete its data and password; the log stays.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from serverbench.apps.registry import App
from serverbench.errors import ServiceError
from serverbench.run.host import LOCAL, Host
from serverbench.run.process import ManagedProcess, log_tail
from serverbench.services.base import Service, ServiceContext, ServicePlan, Step
from serverbench.services.registry import get_service
from serverbench.workloads.catalog import builtin_workload
from serverbench.workloads.spec import setup_sql

READY_INTERVAL_S = 0.1


@dataclass(slots=True)
class RunningService:
    plan: ServicePlan
    process: ManagedProcess

    @property
    def name(self) -> str:
        return self.plan.name

    def exited(self) -> str | None:
        """Why the service is gone, with its log tail; None while it runs."""
        code = self.process.exit_code()
        if code is None:
            return None
        return f"{self.name} exited with code {code}:\n{self.plan.masked(self.process.tail())}"


def run_step(host: Host, plan: ServicePlan, step: Step, log_path: Path) -> int:
    """Run one command to completion (stopped at its timeout); its exit code."""
    process = host.spawn(f"{plan.name}-{step.name}", step.argv, log_path=log_path, env=step.env)
    try:
        return process.popen.wait(timeout=step.timeout_s)
    except subprocess.TimeoutExpired:
        return -1
    finally:
        process.stop(grace_s=2.0)


def _must(host: Host, plan: ServicePlan, step: Step, log_path: Path) -> None:
    code = run_step(host, plan, step, log_path)
    if code != 0:
        raise ServiceError(
            f"{plan.name}: {step.name} failed (exit code {code}); its log ends with:\n"
            f"{plan.masked(log_tail(log_path))}"
        )


def _wait_ready(host: Host, running: RunningService, log_path: Path) -> None:
    plan = running.plan
    deadline = time.monotonic() + plan.ready_timeout_s
    while True:
        gone = running.exited()
        if gone is not None:
            raise ServiceError(f"{plan.name} did not start: {gone}")
        if run_step(host, plan, plan.ready, log_path) == 0:
            return
        if time.monotonic() >= deadline:
            raise ServiceError(
                f"{plan.name} was not ready within {plan.ready_timeout_s:.0f} s; its log ends "
                f"with:\n{plan.masked(running.process.tail())}"
            )
        time.sleep(READY_INTERVAL_S)


def _clean_up(host: Host, service: Service, plan: ServicePlan, log_path: Path) -> None:
    for step in service.leftovers(plan):
        run_step(host, plan, step, log_path)
    for path in plan.remove_after:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def running_service(
    service: Service,
    plan: ServicePlan,
    *,
    log_dir: Path,
    cpus: str | None = None,
    host: Host = LOCAL,
) -> Iterator[RunningService]:
    """The service started, ready and set up; stopped and its data removed when the block ends."""
    log_path = log_dir / f"{plan.name}.log"
    for generated in plan.files:
        host.write_file(generated.path, generated.content)
    process: ManagedProcess | None = None
    try:
        for step in plan.init:
            _must(host, plan, step, log_path)
        process = host.spawn(
            plan.process.name,
            plan.process.argv,
            log_path=log_path,
            env=plan.process.env,
            cpus=cpus if plan.process.pinned else None,
            stop_signal=plan.process.stop_signal,
        )
        running = RunningService(plan=plan, process=process)
        _wait_ready(host, running, log_path)
        for step in plan.setup:
            _must(host, plan, step, log_path)
        yield running
    finally:
        if process is not None:
            process.stop()
        _clean_up(host, service, plan, log_path)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceNeeds:
    """What an app asks for: services by name, and SQL to run in its database."""

    names: tuple[str, ...]
    setup_sql: str = ""
    database: str = "serverbench"


def needs_of(app: App) -> ServiceNeeds:
    """A built-in workload gets TechEmpower's database; a user's app an empty one."""
    if builtin_workload(app) is not None:
        return ServiceNeeds(names=app.services, setup_sql=setup_sql(), database="hello_world")
    return ServiceNeeds(names=app.services)


@contextlib.contextmanager
def running_services(
    needs: ServiceNeeds, *, job_dir: Path, cpus: str | None = None, host: Host = LOCAL
) -> Iterator[list[RunningService]]:
    """Every service the app needs, up in order; down in reverse when the block ends."""
    with contextlib.ExitStack() as stack:
        running: list[RunningService] = []
        for name in needs.names:
            service = get_service(name)
            reason = service.unavailable_reason()
            if reason is not None:
                raise ServiceError(f"{name}, which the app needs, is unavailable: {reason}")
            ctx = ServiceContext(
                run_dir=job_dir,
                port=host.free_port(),
                password=secrets.token_urlsafe(18),
                run_as=service.default_run_as(),
                python=sys.executable,
                setup_sql=needs.setup_sql,
                database=needs.database,
            )
            plan = service.plan(ctx)
            running.append(
                stack.enter_context(
                    running_service(service, plan, log_dir=job_dir, cpus=cpus, host=host)
                )
            )
        yield running
