"""Executing the jobs of a plan: each one a fresh stack, measured through a load engine.

Each job starts a fresh stack on the host, verifies it, primes and warms it up (discarded),
measures one window with the load engine while sampling every process, verifies it again, and
stops it. Every finished job is written to results.json at once, so an interrupted run keeps
what it measured and `--resume` continues from there. With `--url` the one target is a server
the user runs (see url_target.py): the same jobs, with no stack to start, watch or stop.

A fault ends one job, never the run, and every wait is bounded; `verdicts.py` names the fault.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from serverbench.apps.importer import measure_in_process_cost
from serverbench.apps.registry import SEED_MSISDN, App
from serverbench.errors import (
    AppError,
    LoadGeneratorError,
    ServerbenchError,
    StackUnavailable,
    VerificationError,
)
from serverbench.load.engine import EngineRun, LoadEngine, LoadRequest
from serverbench.load.leftovers import reset_closing_connections
from serverbench.load.open_loop_engine import OpenLoopEngine
from serverbench.load.wrk_engine import WrkEngine
from serverbench.observe.kernel_counters import difference
from serverbench.observe.noise import NoiseWindow
from serverbench.observe.sampler import Monitor, Usage
from serverbench.plan.model import Job, RunPlan, plan_jobs
from serverbench.plan.profiles import Profile
from serverbench.results.model import (
    AppCost,
    CpuPins,
    Event,
    Failure,
    NotReached,
    PrecisionOutcome,
    PrimerRecord,
    ProcessExit,
    ResultsDocument,
    RunRecord,
    RunStatus,
    RunUsage,
    ServiceRecord,
    SettingRecord,
)
from serverbench.results.store import RESULTS_NAME, save
from serverbench.run.host import LOCAL, Host
from serverbench.run.lifecycle import RunningStack, check_usable, running_stack, stack_context
from serverbench.run.log_cap import heavy_writers
from serverbench.run.progress import RunProgress
from serverbench.run.records import now
from serverbench.run.url_target import parse_target_url, target_stack
from serverbench.run.verdicts import FAILURE_KINDS, AfterLoad, failure, load_failure, verdict
from serverbench.run.verify import Mismatch, check_once, check_response, verify
from serverbench.stacks import get_stack
from serverbench.workloads.catalog import builtin_workload

PRIMER_CONNECTIONS = 8


@contextlib.contextmanager
def harness_on(cpus: Sequence[int]) -> Iterator[None]:
    """Keep serverbench's own work (the sampler, the verifier) off the servers' CPUs."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def split_usage(usage: Usage, client: str) -> RunUsage:
    """The stack's components apart from the load generator's (`client`, `client-1`, ...)."""

    def is_client(name: str) -> bool:
        return name == client or name.startswith(f"{client}-")

    return RunUsage(
        server=dataclasses.replace(
            usage, components=tuple(c for c in usage.components if not is_client(c.name))
        ),
        client=dataclasses.replace(
            usage, components=tuple(c for c in usage.components if is_client(c.name))
        ),
    )


def _disturbed(run: RunRecord) -> bool:
    return bool(run.noise and run.noise.disturbances)


def wrong_under_load(app: App, result: EngineRun) -> Mismatch | None:
    """The first answer the engine kept from the load that the verifier rejects. Error
    statuses are left out: they are counted as errors already, not as wrong answers."""
    for kept in result.kept:
        if kept.status < 400:
            mismatch = check_response(
                app,
                SEED_MSISDN,
                status=kept.status,
                content_type=kept.content_type,
                body=kept.body,
            )
            if mismatch is not None:
                return mismatch
    return None


def io_bound_reason(app: App) -> str | None:
    """Why the app's in-process cost is no CPU limit (it waits on I/O), or None if it is one."""
    workload = builtin_workload(app)
    if workload is not None and not workload.cpu_bound:
        return (
            f"{app.name} waits on I/O in every request: its in-process cost would time the "
            "wait, not the CPU, so it is no limit for a server"
        )
    if app.services:
        return f"{app.name} needs {', '.join(app.services)}, which runs only with a stack"
    return None


def services_record(running: RunningStack) -> dict[str, ServiceRecord]:
    """Each service's version and settings with their sources; its password masked."""
    return {
        service.name: ServiceRecord(
            version=service.plan.version,
            settings=tuple(
                SettingRecord(name=s.name, value=s.value, source=s.source)
                for s in service.plan.settings
            ),
            app_env={
                name: service.plan.masked(value) for name, value in service.plan.app_env.items()
            },
        )
        for service in running.services
    }


def process_tree(running: RunningStack) -> dict[int, str]:
    """pid -> "component: process name" for every live process of the stack."""
    return {
        pid: f"{process.name}: {name}"
        for process in running.processes
        for pid, name in process.live_tree().items()
    }


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LoadWindow:
    """What one window of load gave: the engine's run, the processes' usage and the machine's
    noise (when watched), and how many of the generator's closing connections were reset
    after it (None: they could not be)."""

    result: EngineRun
    usage: Usage | None
    noise: NoiseWindow | None
    connections_reset: int | None


def benchmark_pids(running: RunningStack, engine_pids: Sequence[int]) -> set[int]:
    """The measurement's own processes, for a noise window: the load engine's and the
    stack's (its components and every live descendant); everything else is noise."""
    return {*engine_pids, *process_tree(running), *running.component_pids().values()}


class Runner:
    def __init__(
        self,
        plan: RunPlan,
        document: ResultsDocument,
        *,
        engine: LoadEngine | None = None,
        open_engine: LoadEngine | None = None,
        host: Host = LOCAL,
    ) -> None:
        self.plan = plan
        self.document = document
        self.path = plan.out_dir / RESULTS_NAME
        self.engine: LoadEngine = engine or WrkEngine()
        # profiles with an offered rate are measured in an open loop
        self.open_engine: LoadEngine = open_engine or OpenLoopEngine()
        self.host = host

    def save(self) -> None:
        self.document.updated_at = now()
        save(self.document, self.path)

    def done_ids(self) -> set[str]:
        return {run.id for run in self.document.runs}

    def run(self) -> ResultsDocument:
        jobs = [job for job in plan_jobs(self.plan) if job.id not in self.done_ids()]
        self.save()
        with harness_on(self.plan.split.client_cpus):
            return self._run(jobs)

    def _run(self, jobs: list[Job]) -> ResultsDocument:
        started = time.monotonic()
        try:
            with RunProgress(
                sum(j.planned_s for j in jobs) + 4 * len(self.plan.apps), len(jobs)
            ) as progress:
                self._measure_app_costs(progress)
                while jobs:
                    for job in jobs:
                        which = (
                            f"{job.round}/{self.plan.repeats}"
                            if job.round <= self.plan.repeats
                            else f"{job.round} (for precision)"
                        )
                        progress.begin(
                            f"{job.stack} · {job.app.name} · {job.profile.name} · round {which}"
                        )
                        self._drain_time_wait(progress)
                        self.document.runs.append(self.run_job(job, progress))
                        self.save()
                        progress.finish(job.planned_s)
                    jobs = self._precision_round(time.monotonic() - started)
                    progress.extend(sum(j.planned_s for j in jobs), len(jobs))
                self._record_precision(time.monotonic() - started)
        except BaseException:
            self.document.status = "interrupted"
            self.save()
            raise
        self.document.status = "complete"
        self.save()
        return self.document

    def _precision_cells(self) -> dict[tuple[str, str, str], list[RunRecord]]:
        """The runs of each cell --precision is about: every one but the ceiling, which is
        measured once on purpose (plan_jobs)."""
        runs: dict[tuple[str, str, str], list[RunRecord]] = {}
        for run in self.document.runs:
            if run.role != "reference":
                runs.setdefault((run.stack, run.app, run.profile), []).append(run)
        return runs

    def _precision_round(self, elapsed_s: float) -> list[Job]:
        """The next round's jobs under --precision: every cell that measured, is not yet
        within the target (or whose last window, after an undisturbed one, was disturbed) and
        is under the cap."""
        goal = self.plan.precision
        if goal is None:
            return []
        planned = {(j.stack, j.app.name, j.profile.name): j for j in plan_jobs(self.plan)}
        values: dict[tuple[str, str, str], list[float]] = {}
        disturbed = []
        for key, runs in self._precision_cells().items():
            ok = [
                r.measurement.requests_per_sec for r in runs if r.status == "ok" and r.measurement
            ]
            if key not in planned or not ok or len(runs) >= goal.max_repeats:
                continue  # failing cells are not retried for precision
            values[key] = ok
            # a disturbed window earns one more repeat, not a chain of them on a busy machine
            if _disturbed(runs[-1]) and (len(runs) < 2 or not _disturbed(runs[-2])):
                disturbed.append(key)
        keys = goal.cells_to_repeat(
            values, elapsed_s, {key: planned[key].planned_s for key in values}, force=disturbed
        )
        round_number = max((run.round for run in self.document.runs), default=0) + 1
        order = list(keys)
        random.Random(self.plan.order_seed + round_number).shuffle(order)
        return [dataclasses.replace(planned[key], round=round_number) for key in order]

    def _record_precision(self, elapsed_s: float) -> None:
        goal = self.plan.precision
        if goal is None:
            return
        budget_spent = goal.budget_s is not None and elapsed_s >= goal.budget_s * 0.9
        not_reached = []
        for (stack, app, profile), runs in self._precision_cells().items():
            ok = [
                r.measurement.requests_per_sec for r in runs if r.status == "ok" and r.measurement
            ]
            why = goal.why_not_reached(ok, budget_spent) if ok else None
            if why is not None:
                not_reached.append(NotReached(stack=stack, app=app, profile=profile, why=why))
        self.document.precision = PrecisionOutcome(
            elapsed_s=round(elapsed_s, 1), not_reached=tuple(not_reached)
        )

    def _measure_app_costs(self, progress: RunProgress) -> None:
        costs = self.document.references.app_cost
        if self.plan.url is not None:
            return  # the user's server runs an app serverbench cannot import
        for app in self.plan.apps:
            if app.name in costs:
                continue
            waits = io_bound_reason(app)
            if waits is not None:
                # its loop would time the wait (or fail without its database), not the CPU
                costs[app.name] = AppCost(skipped=waits)
                self.save()
                continue
            progress.note(f"measuring {app.name}'s own cost per request in-process")
            try:
                cost = measure_in_process_cost(
                    app, duration_s=2.0, python=self.plan.interpreter, env=self.plan.env
                )
            except AppError as error:
                costs[app.name] = AppCost(error=str(error))
            else:
                costs[app.name] = AppCost(**dataclasses.asdict(cost))
            self.save()

    def _drain_time_wait(self, progress: RunProgress) -> None:
        count = self.host.time_wait_count()
        if count <= self.plan.time_wait_threshold:
            return
        progress.note(f"waiting for {count} TIME_WAIT sockets to drain")
        waited = self.host.wait_for_time_wait_drain(
            self.plan.time_wait_threshold, self.plan.max_drain_s
        )
        self.document.events.append(
            Event(
                kind="time_wait_pause",
                at=now(),
                time_wait_before=count,
                time_wait_after=self.host.time_wait_count(),
                waited_s=round(waited, 2),
            )
        )

    def _record(self, job: Job, status: RunStatus, **fields: object) -> RunRecord:
        return RunRecord(
            id=job.id,
            round=job.round,
            stack=job.stack,
            app=job.app.name,
            profile=job.profile.name,
            role=job.role,
            status=status,
            **fields,  # type: ignore[arg-type]
        )

    def _at_peak_share(self, job: Job) -> Job:
        """A job at a share of the peak, at the rate that share is for its stack, app and
        round: the good responses/s its closed-loop profile measured just before."""
        profile = job.profile
        if profile.rate_share is None:
            return job
        peak = next(
            (
                run
                for run in self.document.runs
                if (run.round, run.stack, run.app, run.profile)
                == (job.round, job.stack, job.app.name, profile.peak_profile)
            ),
            None,
        )
        rate = peak.measurement.requests_per_sec if peak and peak.measurement else 0.0
        if peak is None or peak.status != "ok" or rate <= 0:
            raise LoadGeneratorError(
                f"{profile.name} offers {profile.rate_share * 100:g}% of {job.stack}'s "
                f"closed-loop peak under {profile.peak_profile}, and that measurement failed in "
                f"round {job.round}; see its failure, or give an absolute --rate"
            )
        resolved = dataclasses.replace(profile, rate_per_s=round(profile.rate_share * rate, 1))
        return dataclasses.replace(job, profile=resolved)

    def run_job(self, job: Job, progress: RunProgress) -> RunRecord:
        """One job, measured into its record: a stack that cannot run is `skipped`, a fault
        is a `failed` record, never raised. The caller appends and saves it."""
        started_at = now()
        try:
            job = self._at_peak_share(job)
            if job.role == "external":
                return self._run_external(job, started_at)
            return self._run_stack(job, started_at)
        except StackUnavailable as error:
            return self._record(
                job, "skipped", failure=Failure(kind="unavailable", message=str(error))
            )
        except ServerbenchError as error:
            kind = FAILURE_KINDS.get(type(error), "error")
            progress.note(f"{job.stack} failed: {str(error).splitlines()[0]}")
            return self._record(
                job,
                "failed",
                started_at=started_at,
                finished_at=now(),
                failure=Failure(kind=kind, message=str(error)),
            )

    def _run_stack(self, job: Job, started_at: str) -> RunRecord:
        stack = get_stack(job.stack)
        ctx = stack_context(
            job.app,
            run_dir=self._job_dir(job),
            server_cpu_count=len(self.plan.split.server_cpus),
            overrides=self.plan.overrides.get(job.stack, {}),
            host=self.host,
            interpreter=self.plan.interpreter,
            env=self.plan.env,
        )
        check_usable(stack, ctx)
        with running_stack(
            stack, ctx, cpus=self.plan.split.server_taskset(), host=self.host
        ) as running:
            return self._measure(job, running, started_at)

    def _run_external(self, job: Job, started_at: str) -> RunRecord:
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

    def _load(
        self,
        job: Job,
        running: RunningStack,
        request: LoadRequest,
        label: str,
        watch: bool = False,
    ) -> LoadWindow:
        """One window of load; with `watch`, every process of the stack and of the load
        generator is sampled from the moment the generator runs until it ends, and so is what
        else the machine did on the server and client CPUs meanwhile. When it ends, the
        generator's connections still closing are reset (load/leftovers.py), so neither the
        next window nor the check after the load is fed by this one."""
        monitors: list[Monitor] = []
        probe = self.host.noise_probe(self.plan.split.server_cpus, self.plan.split.client_cpus)
        engine_pids: list[int] = []
        engine = self.engine_for(request)

        def on_start(pids: Sequence[int]) -> None:
            probe.start()
            engine_pids.extend(pids)
            components = dict(running.component_pids())
            for i, pid in enumerate(pids):
                components[engine.name if i == 0 else f"{engine.name}-{i}"] = pid
            monitor = self.host.sampler(components)
            monitor.start()
            monitors.append(monitor)

        try:
            try:
                result = engine.run(
                    request,
                    out_dir=self._job_dir(job),
                    label=label,
                    cpus=self.plan.split.client_taskset(),
                    on_start=on_start if watch else None,
                )
            finally:
                usage = monitors[0].stop() if monitors else None
            noise = probe.stop(benchmark_pids(running, engine_pids)) if engine_pids else None
        finally:
            # after the noise window closed: the reset's own ss is not noise of this window
            reset = reset_closing_connections(running.front)
        return LoadWindow(result=result, usage=usage, noise=noise, connections_reset=reset)

    def engine_for(self, request: LoadRequest) -> LoadEngine:
        return self.engine if request.rate_per_s is None else self.open_engine

    def verify_after_load(
        self, running: RunningStack, app: App, mix_paths: Sequence[str] = ()
    ) -> tuple[Mismatch | None, float]:
        """The answer after the load, and how many seconds the server took to give it.

        A server still busy with the load's leftovers gets up to plan.recovery_s.
        """
        started = time.monotonic()
        deadline = started + self.plan.recovery_s
        while True:
            mismatch = verify(running.front, app, mix_paths=mix_paths)
            if (
                mismatch is None
                or mismatch.answered
                or time.monotonic() >= deadline
                or running.exited() is not None
            ):
                return mismatch, time.monotonic() - started
            time.sleep(0.5)

    def _one_request_s(self, running: RunningStack, app: App, profile: Profile) -> float | None:
        """How long one request alone takes (None if it gets no right answer)."""
        started = time.monotonic()
        if check_once(running.front, app, SEED_MSISDN, timeout_s=max(10.0, profile.timeout_s)):
            return None
        return time.monotonic() - started

    def _measure(self, job: Job, running: RunningStack, started_at: str) -> RunRecord:
        profile = job.profile
        url = running.url + job.app.load_path
        mix = profile.request_mix
        mix_paths = mix.paths if mix else ()
        if mix is not None:
            # every path of the mix must answer rightly before it is loaded
            wrong = verify(running.front, job.app, requests=0, mix_paths=mix_paths)
            if wrong is not None:
                raise VerificationError(
                    f"{job.stack} serving {job.app.name} answered a path of profile "
                    f"{profile.name}'s mix wrongly: {wrong}; use paths the app serves"
                )
        shape = LoadRequest(
            url=url,
            threads=profile.threads,
            connections=profile.connections,
            duration_s=profile.duration_s,
            timeout_s=profile.timeout_s,
            rate_per_s=profile.rate_per_s,
            arrivals=profile.arrivals,
            mix=profile.mix,
        )
        try:
            if profile.primer_s > 0:
                primer = LoadRequest(
                    url=url,
                    threads=1,
                    connections=min(PRIMER_CONNECTIONS, profile.connections),
                    duration_s=max(1.0, profile.primer_s),
                    timeout_s=profile.timeout_s,
                    rate_per_s=profile.rate_per_s,
                    arrivals=profile.arrivals,
                    mix=profile.mix,
                )
                primed = self._load(job, running, primer, "primer").result
            if profile.warmup_s > 0:
                warmup = dataclasses.replace(shape, duration_s=max(1.0, profile.warmup_s))
                self._load(job, running, warmup, "warmup")
        except LoadGeneratorError as error:
            return self._record(
                job, "failed", started_at=started_at, finished_at=now(),
                failure=load_failure(job.stack, running, error),
            )  # fmt: skip
        common: dict[str, object] = {
            "started_at": started_at,
            "commands": running.commands(),
            "settings": dict(running.plan.settings),
            "notes": running.plan.notes,
            "cpus": CpuPins(
                server=self.plan.split.server_taskset(), client=self.plan.split.client_taskset()
            ),
            "url": self.plan.url if job.role == "external" else None,
            "services": services_record(running),
        }
        if profile.primer_s > 0:
            # a few connections, one request each at a time: the latency floor of one request,
            # which the Nagle/delayed-ACK check reads (a p50 under load is mostly queueing)
            common["primer"] = PrimerRecord(
                connections=primer.connections,
                requests=primed.measurement.requests,
                requests_per_sec=primed.measurement.requests_per_sec,
                latency_p50_us=primed.measurement.latency_percentiles_us.get("50"),
            )
        tree_before = process_tree(running)
        counters_before = self.host.listen_queue_counters()
        logs_before = running.log_sizes()
        try:
            window = self._load(job, running, shape, "measure", watch=True)
        except LoadGeneratorError as error:
            return self._record(
                job,
                "failed",
                **common,
                finished_at=now(),
                failure=load_failure(job.stack, running, error),
            )
        result, usage = window.result, window.usage
        logs_after = running.log_sizes()
        tree_after = process_tree(running)
        kernel = difference(counters_before, self.host.listen_queue_counters())
        exits = [
            ProcessExit(pid=pid, process=name)
            for pid, name in tree_before.items()
            if pid not in tree_after
        ]
        starts = [pid for pid in tree_after if pid not in tree_before]
        died = running.exited()
        mismatch, recovery_s = (
            self.verify_after_load(running, job.app, mix_paths) if died is None else (None, 0.0)
        )
        fields: dict[str, object] = {
            **common,
            "finished_at": now(),
            "load_argv": result.argv,
            "measurement": result.measurement,
            "wrk": result.wrk,
            "usage": split_usage(usage, self.engine_for(shape).name) if usage else None,
            "post_verify": str(mismatch) if mismatch else None,
            # seconds until the server answered the verifier after the load: a slow recovery
            # from overload is a finding, not a failure
            "recovery_s": round(recovery_s, 2),
            # host-wide TCP counters over the window: connections the listen queue dropped
            "kernel": kernel,
            # the generator's connections still closing when it ended, reset so that they
            # do not reach the server after the load (load/leftovers.py)
            "leftover_connections_reset": window.connections_reset,
            # a server process that exited during the load, e.g. a killed worker its master replaced
            "process_exits": tuple(exits),
            "process_restarts": min(len(exits), len(starts)),
            # what else the machine did in the window: steal, foreign processes, pressure
            "noise": window.noise,
            # bytes each server wrote to its log (capped on disk, see run/log_cap.py)
            "logs": logs_after,
            "warnings": tuple(heavy_writers(logs_before, logs_after, profile.duration_s)),
        }
        died = running.exited()
        no_good = result.measurement.good_responses == 0 and died is None and mismatch is None
        after = AfterLoad(
            died=died,
            service_died=running.exited_service(),
            app=job.app.name,
            mismatch=mismatch,
            recovery_limit_s=self.plan.recovery_s,
            one_request_s=self._one_request_s(running, job.app, profile) if no_good else None,
        )
        fault = verdict(job.stack, result.measurement, after, profile)
        wrong = wrong_under_load(job.app, result)
        if fault is None and wrong is not None:
            fault = "wrong_response", f"answered wrongly under load: {wrong}"
        if fault is None:
            return self._record(job, "ok", **fields)
        return self._record(job, "failed", **fields, failure=failure(running, *fault))
