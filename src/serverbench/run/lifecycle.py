"""Bringing a stack up and down: the one place that acts on a LaunchPlan.

Up: start the services the app needs (its database; see `run.services`), write the generated
files, start each component in order (backends before nginx) with the services' addresses in
its environment, wait until each one accepts connections (failing at once, with its log tail,
if it exits), then verify correct responses through the front. While up, the components' logs
are kept under a size cap (run/log_cap.py). Down: stop the components in reverse order, then
the services, always, whatever happened. A service's process counts as a component: it is
sampled, and its exit ends the stack.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from serverbench.apps.registry import App
from serverbench.errors import StackStartError, StackUnavailable, UsageError, VerificationError
from serverbench.results.model import LogSize
from serverbench.run.host import LOCAL, Host
from serverbench.run.log_cap import LogCap
from serverbench.run.process import ManagedProcess
from serverbench.run.services import RunningService, needs_of, running_services
from serverbench.run.verify import accepts_connection, verify, wait_until
from serverbench.stacks.base import (
    LaunchPlan,
    Stack,
    StackContext,
    TcpEndpoint,
    interface_mismatch,
)
from serverbench.stacks.interpreter import Interpreter, own

READY_TIMEOUT_S = 30.0


def stack_context(
    app: App,
    *,
    run_dir: Path,
    server_cpu_count: int,
    overrides: Mapping[str, str],
    port: int | None = None,
    host: Host = LOCAL,
    interpreter: Interpreter | None = None,
    env: Mapping[str, str] | None = None,
) -> StackContext:
    """What a stack plugin needs to build its plan, on `host` (a free port unless given), with
    the servers' interpreter (serverbench's own unless given) and the user's environment."""
    return StackContext(
        interpreter=interpreter or own(),
        env=env or {},
        app=app,
        host=host.bind_address,
        port=port or host.free_port(),
        run_dir=run_dir,
        server_cpu_count=server_cpu_count,
        overrides=overrides,
        ports=host.free_port,
    )


def check_usable(stack: Stack, ctx: StackContext) -> None:
    reason = stack.unavailable_reason(ctx.interpreter)
    if reason is not None:
        raise StackUnavailable(f"stack {stack.name} is unavailable: {reason}")
    mismatch = interface_mismatch(stack, ctx.app)
    if mismatch is not None:
        raise StackUnavailable(f"{mismatch}; pick another stack (see `serverbench stacks`)")


@dataclass(slots=True)
class RunningStack:
    name: str
    plan: LaunchPlan
    host: Host = LOCAL
    processes: list[ManagedProcess] = field(default_factory=list)  # services' first
    services: list[RunningService] = field(default_factory=list)
    log_cap: LogCap | None = None

    @property
    def front(self) -> TcpEndpoint:
        return self.plan.front

    @property
    def url(self) -> str:
        return f"http://{self.plan.front}"

    def log_sizes(self) -> dict[str, LogSize]:
        """Bytes each component wrote to its log so far (none for a server we did not start)."""
        return self.log_cap.sizes() if self.log_cap is not None else {}

    def component_pids(self) -> dict[str, int]:
        return {process.name: process.pid for process in self.processes}

    def commands(self) -> dict[str, tuple[str, ...]]:
        return {process.name: process.command for process in self.processes}

    def exited(self) -> str | None:
        """Why the stack is no longer whole: the first component that exited, with its log."""
        for process in self.processes:
            code = process.exit_code()
            if code is not None:
                return f"{process.name} exited with code {code}:\n{process.tail()}"
        return None

    def exited_service(self) -> str | None:
        """The name of a service whose process exited, if one did."""
        for service in self.services:
            if service.exited() is not None:
                return service.name
        return None


def _start(
    running: RunningStack,
    host: Host,
    log_dir: Path,
    cpus: str | None,
    ready_timeout_s: float,
    service_env: Mapping[str, str],
) -> None:
    for component in running.plan.components:
        process = host.spawn(
            component.name,
            component.argv,
            log_path=log_dir / f"{component.name}.log",
            env={**component.env, **service_env},
            cwd=component.cwd,
            cpus=cpus if component.pinned else None,
            stop_signal=component.stop_signal,
        )
        running.processes.append(process)

        def ready(process: ManagedProcess = process, endpoints: tuple = component.ready) -> bool:  # type: ignore[type-arg]
            return process.exit_code() is not None or all(map(accepts_connection, endpoints))

        if not wait_until(ready, timeout_s=ready_timeout_s):
            raise StackStartError(
                f"{running.name}: {component.name} did not accept connections on "
                f"{', '.join(map(str, component.ready))} within {ready_timeout_s:.0f} s; "
                f"its log ends with:\n{process.tail()}"
            )
        if process.exit_code() is not None:
            raise StackStartError(
                f"{running.name}: {component.name} exited at start with code "
                f"{process.exit_code()}; its log ends with:\n{process.tail()}"
            )


@contextlib.contextmanager
def running_stack(
    stack: Stack,
    ctx: StackContext,
    *,
    cpus: str | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    host: Host = LOCAL,
) -> Iterator[RunningStack]:
    """The stack started, ready and verified; stopped (reverse order) when the block ends."""
    check_usable(stack, ctx)
    plan = stack.plan(ctx)
    if accepts_connection(plan.front, timeout_s=0.2):
        raise UsageError(
            f"port {plan.front.port} is already in use on {plan.front.host}; "
            "stop what listens there or pick another with --port"
        )
    host.make_private_dir(ctx.run_dir)
    for component in plan.components:
        for generated in component.files:
            host.write_file(generated.path, generated.content)
    running = RunningStack(name=stack.name, plan=plan, host=host)
    needs = needs_of(ctx.app)
    with running_services(needs, job_dir=ctx.run_dir, cpus=cpus, host=host) as services:
        running.services = services
        running.processes.extend(service.process for service in services)
        service_env = {
            name: value for service in services for name, value in service.plan.app_env.items()
        }
        running.log_cap = LogCap(
            {component.name: ctx.run_dir / f"{component.name}.log" for component in plan.components}
        ).start()
        try:
            _start(running, host, ctx.run_dir, cpus, ready_timeout_s, service_env)
            _verify_front(running, ctx, ready_timeout_s)
            yield running
        finally:
            for process in reversed(running.processes):
                process.stop()
            running.log_cap.stop()


def _verify_front(running: RunningStack, ctx: StackContext, ready_timeout_s: float) -> None:
    # a proxy can answer before its backends are warm; give a fresh stack a moment to settle
    started = time.monotonic()
    deadline = started + 3.0
    while True:
        mismatch = verify(running.front, ctx.app)
        if mismatch is None:
            return
        gone = running.exited()
        if gone is not None:
            raise StackStartError(f"{running.name}: {gone}")
        # a pre-fork master listens before its workers have imported the app: no answer yet
        # is a stack still starting (up to the ready timeout), not a wrong answer
        booting = not mismatch.answered and time.monotonic() < started + ready_timeout_s
        if time.monotonic() >= deadline and not booting:
            raise VerificationError(
                f"{running.name} serving {ctx.app.name} answered wrongly: {mismatch}; "
                "fix the app or the expected response (--expect-status/--expect-json/--expect-regex)"
            )
        time.sleep(0.2)
