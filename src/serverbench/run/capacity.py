"""Orchestration of a capacity run: per stack x app, the closed-loop peak with wrk first, then
the capacity search (plan/capacity.py), each step an open-loop measurement on a fresh stack.

A step starts the stack anew, verifies its answer, offers the step's rate for a warm-up
(discarded) and the measured window with the open-loop engine while sampling the server's
CPU, verifies it again after the load, and stops it. The step is judged and written to
results.json at once; an interrupted run resumes from the recorded steps (the search replays
them and continues). A stack that fails to start or dies in a step is that step's failure,
judged like any other; the search goes on.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from serverbench.apps.registry import App
from serverbench.errors import (
    LoadGeneratorError,
    ServerbenchError,
    StackUnavailable,
)
from serverbench.load.histogram import percentiles_from_hdr
from serverbench.load.open_loop import OpenLoopResult, OpenLoopSettings, run_open_loop
from serverbench.load.open_loop.engine import START_DELAY_S
from serverbench.observe.sampler import Monitor, Usage
from serverbench.plan.capacity import (
    MAX_BACKOFFS,
    CapacityPlan,
    CapacityRecord,
    Observation,
    Probe,
    Search,
    Step,
    format_rps,
)
from serverbench.plan.model import Job, RunPlan
from serverbench.plan.profiles import Profile
from serverbench.plan.slo import Slo
from serverbench.results.aggregate import cells
from serverbench.results.model import CapacitySection, ResultsDocument
from serverbench.run.lifecycle import RunningStack, check_usable, running_stack, stack_context
from serverbench.run.progress import RunProgress
from serverbench.run.runner import Runner, benchmark_pids, harness_on
from serverbench.stacks import get_stack

# The server's CPU is known for a step only when the sampler saw at least this share of it.
MIN_SAMPLED_SHARE = 0.5
# In the default run the search must fit beside the wrk matrix in about a minute and a half:
# short steps, one confirmation, a start at half the peak the run just measured.
RUN_STEP_S = 1.5
RUN_WARMUP_S = 0.5
RUN_CONFIRMATIONS = 1
RUN_START_SHARE = 0.5


def short_capacity_plan(slo: Slo, max_error_rate: float) -> CapacityPlan:
    """The search `serverbench run` adds after its wrk matrix."""
    return CapacityPlan(
        slo=slo,
        max_error_rate=max_error_rate,
        step_s=RUN_STEP_S,
        warmup_s=RUN_WARMUP_S,
        # a request 10 x the SLO late has broken it either way; waiting longer for it only
        # lengthens every step above capacity
        timeout_s=min(2.0, max(0.5, 10 * slo.limit_us / 1e6)),
        confirmations=RUN_CONFIRMATIONS,
        start_share=RUN_START_SHARE,
        max_backoffs=MAX_BACKOFFS,
    )


def capacity_section(plan: CapacityPlan) -> CapacitySection:
    """The results file's `capacity` section before any search: its plan, no searches."""
    return CapacitySection(plan=plan)


def closed_loop_peaks(document: ResultsDocument) -> dict[tuple[str, str], float | None]:
    """Per stack x app, the best median good-response rate over the run's wrk profiles."""
    peaks: dict[tuple[str, str], float | None] = {}
    for cell in cells(document):
        if cell.role != "stack":
            continue
        rate = cell.requests_per_sec.median if cell.requests_per_sec else None
        best = peaks.get((cell.stack, cell.app))
        peaks[(cell.stack, cell.app)] = max(filter(None, (rate, best)), default=None)
    return peaks


def closed_loop_peak(
    runner: Runner, stack: str, app: App, profile: Profile, progress: RunProgress
) -> float | None:
    """The stack x app's closed-loop peak (good responses/s under wrk with `profile`), measured
    once per results file and recorded as an ordinary run; None when it failed. Open-loop rates
    given as a share of the peak (`--rate 50%`) resolve against it."""
    job = Job(round=1, stack=stack, app=app, profile=profile, role="stack")
    record = next((r for r in runner.document.runs if r.id == job.id), None)
    if record is None:
        progress.begin(f"{stack} · {app.name} · closed-loop peak ({profile.name})")
        record = runner.run_job(job, progress)
        runner.document.runs.append(record)
        runner.save()
        progress.finish(job.planned_s)
    if record.status != "ok" or record.measurement is None:
        return None
    return record.measurement.requests_per_sec


def observation_from(
    result: OpenLoopResult, usage: Usage | None, server_cpus: int, slo: Slo
) -> Observation:
    """One open-loop result and the server's CPU over its window, as the search reads them."""
    percentiles: dict[str, float] = {}
    if result.latency_us is not None:
        p = result.latency_us
        percentiles = {"50": p.p50_us, "90": p.p90_us, "99": p.p99_us, "99.9": p.p99_9_us}
        if slo.key not in percentiles:
            percentiles.update(
                percentiles_from_hdr(result.latency_histogram_hdr, (slo.percentile,))
            )
    # every request due in the window ends as one good response or one failure
    failed = max(0, result.scheduled - result.good_responses)
    generator = [p.cpu_percent / 100 for p in result.processes]
    total = busiest = None
    # a sampler that caught under half the measured window (a slow start, a short step)
    # would read a busy server as idle: its CPU is then unknown, not 0
    if usage is not None and usage.window_s >= MIN_SAMPLED_SHARE * result.duration_s:
        total = sum(c.cpu_seconds for c in usage.components) / (usage.window_s * server_cpus)
        singles = [c.cpu_percent_mean / 100 for c in usage.components if c.processes_max == 1]
        busiest = max(singles) if singles else None
    return Observation(
        offered_rps=result.offered_rate_per_s,
        sent_rps=result.achieved_rate_per_s,
        achieved_rps=result.good_rate_per_s,
        latency_percentiles_us=percentiles,
        error_rate=failed / result.scheduled if result.scheduled else 1.0,
        server_cpu_utilisation=total,
        server_busiest_process_cpu=busiest,
        generator_cpu_utilisation=sum(generator) / len(generator) if generator else None,
        generator_lag_p99_us=result.send_lag_us.p99_us if result.send_lag_us else None,
        generator_behind=result.generator_behind_reason,
        requests=result.scheduled,
        latency_histogram_hdr=result.latency_histogram_hdr if result.latency_us else None,
    )


def failed_observation(rate_rps: float, failure: str) -> Observation:
    return Observation(
        offered_rps=rate_rps,
        sent_rps=None,
        achieved_rps=0.0,
        latency_percentiles_us={},
        error_rate=1.0,
        failure=failure,
    )


OpenLoop = Callable[..., OpenLoopResult]


class CapacityRunner:
    """Runs the searches of a plan into a results document, saving after every step."""

    def __init__(
        self,
        run_plan: RunPlan,
        plan: CapacityPlan,
        document: ResultsDocument,
        *,
        runner: Runner | None = None,
        open_loop: OpenLoop = run_open_loop,
    ) -> None:
        self.run_plan = run_plan
        self.plan = plan
        self.document = document
        self.runner = runner or Runner(run_plan, document)
        self.open_loop = open_loop  # the engine: real, or a fake one in fast tests
        if document.capacity is None:
            document.capacity = capacity_section(plan)
        self.section: CapacitySection = document.capacity

    def cells(self) -> list[tuple[str, App]]:
        excluded = {(pair.stack, pair.app) for pair in self.document.not_applicable}
        return [
            (stack, app)
            for stack in self.run_plan.stack_names
            for app in self.run_plan.apps
            if (stack, app.name) not in excluded
        ]

    def run(self, peaks: dict[tuple[str, str], float | None] | None = None) -> ResultsDocument:
        """Search every stack x app; `peaks` given (the run measured them) skips wrk's."""
        cells = self.cells()
        searches = len(cells) * self.plan.repeats
        planned = searches * (10 * self.plan.step_planned_s)
        known: dict[tuple[str, str], float | None] = {}
        with harness_on(self.run_plan.split.client_cpus):
            try:
                with RunProgress(planned, searches * 10) as progress:
                    # repeats in rounds over the stacks, so a slow spell of the machine does
                    # not fall on one stack's searches only
                    for repeat in range(1, self.plan.repeats + 1):
                        for stack, app in cells:
                            key = (stack, app.name)
                            if key not in known:
                                known[key] = (
                                    peaks.get(key)
                                    if peaks is not None
                                    else self._peak(stack, app, progress)
                                )
                            self._search(stack, app, known[key], progress, repeat)
            except BaseException:
                self.document.status = "interrupted"
                self.runner.save()
                raise
        self.document.status = "complete"
        self.runner.save()
        return self.document

    def _peak(self, stack: str, app: App, progress: RunProgress) -> float | None:
        profile = self.run_plan.profiles[0]
        return closed_loop_peak(self.runner, stack, app, profile, progress)

    def _search(
        self, stack: str, app: App, peak: float | None, progress: RunProgress, repeat: int
    ) -> None:
        searches = self.section.searches
        index = next(
            (
                i
                for i, r in enumerate(searches)
                if r.key == (stack, app.name) and r.repeat == repeat
            ),
            None,
        )
        if index is None:
            searches.append(
                CapacityRecord(
                    stack=stack,
                    app=app.name,
                    peak_rps=peak,
                    settings=self.plan.search_settings(peak),
                    steps=(),
                    outcome=None,
                    repeat=repeat,
                )
            )
            index = len(searches) - 1
        record = searches[index]
        if record.outcome is not None:
            return
        search = Search(record.settings, steps=list(record.steps))

        def measure(probe: Probe) -> Observation:
            number = len(search.steps) + 1
            if progress.step >= progress.steps:  # a search took more steps than planned
                progress.extend(self.plan.step_planned_s, 1)
            search_text = f"search {repeat}/{self.plan.repeats} " if self.plan.repeats > 1 else ""
            progress.begin(
                f"{stack} · {app.name} · capacity {search_text}step {number} ({probe.phase}, "
                f"{format_rps(probe.rate_rps)} req/s)"
            )
            return self._step(stack, app, probe, repeat, number)

        def save(step: Step) -> None:
            searches[index] = dataclasses.replace(record, steps=tuple(search.steps))
            self.runner.save()
            progress.note(f"  step {step.index}: {step.judgement.text}")
            rate = search.rates.get(step.index)
            if rate is not None:
                progress.note(f"  the rate, confirmed: {rate.text}")
            progress.finish(self.plan.step_planned_s)

        outcome = search.run(measure, on_step=save)
        searches[index] = dataclasses.replace(record, steps=tuple(search.steps), outcome=outcome)
        self.runner.save()

    def _step_dir(self, stack: str, app: App, repeat: int, number: int) -> Path:
        search = f"{stack}-{app.name}" + (f"-search{repeat}" if repeat > 1 else "")
        folder: Path = self.run_plan.out_dir / "logs" / f"capacity-{search}-{number}"
        return folder

    def _step(
        self, stack_name: str, app: App, probe: Probe, repeat: int, number: int
    ) -> Observation:
        stack = get_stack(stack_name)
        split = self.run_plan.split
        host = self.runner.host
        ctx = stack_context(
            app,
            run_dir=self._step_dir(stack_name, app, repeat, number),
            server_cpu_count=len(split.server_cpus),
            overrides=self.run_plan.overrides.get(stack_name, {}),
            host=host,
        )
        try:
            check_usable(stack, ctx)
            with running_stack(stack, ctx, cpus=split.server_taskset(), host=host) as running:
                return self._load(running, app, probe)
        except StackUnavailable:
            raise
        except LoadGeneratorError as error:
            # the client processes overran or failed: the generator, not the stack
            return Observation(
                offered_rps=probe.rate_rps,
                sent_rps=None,
                achieved_rps=0.0,
                latency_percentiles_us={},
                error_rate=1.0,
                generator_failure=str(error).splitlines()[0],
            )
        except ServerbenchError as error:
            return failed_observation(probe.rate_rps, str(error).splitlines()[0])

    def _load(self, running: RunningStack, app: App, probe: Probe) -> Observation:
        settings = OpenLoopSettings(
            rate_per_s=probe.rate_rps,
            duration_s=self.plan.step_s,
            warmup_s=self.plan.warmup_s,
            timeout_s=self.plan.timeout_s,
        )
        monitor = self.runner.host.sampler(running.component_pids())
        split = self.run_plan.split
        noise_probe = self.runner.host.noise_probe(split.server_cpus, split.client_cpus)
        engine_pids: list[int] = []

        def window() -> None:
            noise_probe.start()
            monitor.start()

        # on_start comes when the client processes are ready: the schedule starts
        # START_DELAY_S later, and its measured window after the warm-up
        timer = threading.Timer(START_DELAY_S + self.plan.warmup_s, window)
        timer.daemon = True

        def started(pids: Sequence[int]) -> None:
            engine_pids.extend(pids)
            timer.start()

        try:
            result = self.open_loop(
                settings,
                running.url + app.load_path,
                client_cpus=split.client_cpus,
                on_start=started,
            )
        finally:
            timer.cancel()
            if timer.ident is not None:
                timer.join()  # a sampler it is starting right now is stopped below
            usage = _stop(monitor)
        try:
            noise = noise_probe.stop(benchmark_pids(running, engine_pids))
        except RuntimeError:
            noise = None  # the step ended before the warm-up did
        died = running.exited()
        if died is not None:
            return failed_observation(probe.rate_rps, f"died during the step: {died}")
        mismatch, _ = self.runner.verify_after_load(running, app)
        seen = observation_from(result, usage, len(split.server_cpus), self.plan.slo)
        if noise is not None and noise.server.capacity_s > 0:
            seen = dataclasses.replace(
                seen,
                server_cpus_busy=noise.server.busy_s / noise.server.capacity_s,
                server_cpus_foreign=noise.server.foreign_cpu_s / noise.server.capacity_s,
            )
        if mismatch is not None:
            return dataclasses.replace(seen, failure=f"answered wrongly after the load: {mismatch}")
        return seen


def _stop(monitor: Monitor) -> Usage | None:
    try:
        return monitor.stop()
    except RuntimeError:
        return None  # the step ended before the warm-up did: no window to sample
