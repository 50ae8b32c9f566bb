"""The typed model of results.json: one class per record the file holds.

Every record is a plain dataclass; `serverbench.results.store` reads and writes them with
msgspec, which validates a file on load and names the bad field (`$.runs[3].measurement.requests`),
and generates the published JSON Schema (docs/results.schema.json). Nothing outside this package
handles results as dictionaries.

A run's measurement is engine-neutral (`Measurement`: what any load engine measured, closed or
open loop); what only one engine knows (wrk's per-thread stats, its text block) is kept beside
it in that engine's own record (`wrk`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from serverbench.apps.registry import ExpectedResponse
from serverbench.load.wrk import WrkDetails
from serverbench.observe.doctor import Finding
from serverbench.observe.environment import Environment
from serverbench.observe.host_limits import CpuSplit
from serverbench.observe.noise import NoiseWindow
from serverbench.observe.sampler import Usage
from serverbench.plan.capacity import CapacityPlan, CapacityRecord
from serverbench.plan.config import AppEntry, Slo
from serverbench.plan.profiles import Profile
from serverbench.results.inference import PrecisionGoal

DocumentStatus = Literal["running", "interrupted", "complete"]
RunStatus = Literal["ok", "failed", "skipped"]
Role = Literal["stack", "reference", "external"]
Loop = Literal["closed", "open"]
SettingValue = bool | int | float | str


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorCounts:
    """Attempts that did not end in a good response, by kind, as wrk counts them."""

    connect: int = 0
    read: int = 0  # read errors, parser errors, EOF before a response ended
    write: int = 0
    timeout: int = 0  # responses that arrived after the timeout, or never
    status: int = 0  # responses with a status of 400 or more

    @property
    def total(self) -> int:
        return self.connect + self.read + self.write + self.timeout + self.status

    def by_kind(self) -> dict[str, int]:
        return {
            "connect": self.connect,
            "read": self.read,
            "write": self.write,
            "timeout": self.timeout,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """What one measured window of any load engine gave, in the same terms for every engine.

    `requests` counts responses of any status; `good_responses` those with a status below 400
    that arrived in time; `requests_per_sec` is good responses over the measured duration.
    Latencies are in microseconds: in a closed loop the time from send to answer (wrk adds its
    own coordinated-omission correction); in an open loop from the request's intended send time.
    """

    engine: str
    loop: Loop
    duration_s: float
    connections: int  # closed loop: connections held; open loop: the pool's bound
    requests: int
    good_responses: int
    errors: ErrorCounts
    bytes_read: int
    requests_per_sec: float
    raw_requests_per_sec: float  # responses of any status per second, as wrk prints it
    transfer_bytes_per_sec: float
    latency_percentiles_us: dict[str, float]
    latency_mean_us: float | None = None
    latency_max_us: float | None = None
    latency_histogram_hdr: str | None = None  # base64 HdrHistogram(1 us, 60 s, 3 digits)
    latency_histogram_exact: bool = True  # False: rebuilt from a dense percentile grid
    offered_rate_per_s: float | None = None  # open loop only
    generator_behind: str | None = None  # why the engine could not keep its own pace, if so


def measurement_of(
    *,
    engine: str,
    loop: Loop,
    duration_s: float,
    connections: int,
    requests: int,
    errors: ErrorCounts,
    bytes_read: int,
    latency_percentiles_us: dict[str, float],
    **optional: Any,
) -> Measurement:
    """A Measurement with its rates derived from the counts: good = requests - status - timeout."""
    good = max(0, requests - errors.status - errors.timeout)

    def rate(count: float) -> float:
        return count / duration_s if duration_s > 0 else 0.0

    return Measurement(
        engine=engine,
        loop=loop,
        duration_s=duration_s,
        connections=connections,
        requests=requests,
        good_responses=good,
        errors=errors,
        bytes_read=bytes_read,
        requests_per_sec=rate(good),
        raw_requests_per_sec=rate(requests),
        transfer_bytes_per_sec=rate(bytes_read),
        latency_percentiles_us=latency_percentiles_us,
        **optional,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    kind: str  # start, verify, died, unresponsive, no_good_responses, wrong_response, load, ...
    message: str
    log_tail: dict[str, str] = field(default_factory=dict)  # per component


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessExit:
    pid: int
    process: str  # "component: process name"


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuPins:
    server: str  # taskset lists
    client: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunUsage:
    server: Usage  # the stack's components
    client: Usage  # the load generator


@dataclass(frozen=True, slots=True, kw_only=True)
class PrimerRecord:
    """The short low-concurrency load before the warm-up: the latency of one request at a
    time, without the queue a heavy load builds (what the 40 ms check reads)."""

    connections: int
    requests: int
    requests_per_sec: float
    latency_p50_us: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSize:
    """What one server wrote to its log during a job (the file itself is capped)."""

    written_bytes: int  # what the process wrote, cut parts included (at least this much)
    cut_bytes: int  # removed to keep the file under the cap

    @property
    def kept_bytes(self) -> int:
        return self.written_bytes - self.cut_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One job: a stack serving an app under a profile, in one round."""

    id: str
    round: int
    stack: str
    app: str
    profile: str
    role: Role
    status: RunStatus
    failure: Failure | None = None
    started_at: str | None = None
    finished_at: str | None = None
    commands: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per component
    settings: dict[str, SettingValue] = field(default_factory=dict)  # as resolved
    notes: tuple[str, ...] = ()
    cpus: CpuPins | None = None
    load_argv: tuple[str, ...] = ()  # the load engine's command line
    url: str | None = None  # --url runs: the user's server
    measurement: Measurement | None = None
    wrk: WrkDetails | None = None
    usage: RunUsage | None = None
    post_verify: str | None = None  # what was wrong with the answer after the load
    recovery_s: float | None = None  # until the server answered again after the load
    kernel: dict[str, int] = field(default_factory=dict)  # listen-queue counters, window delta
    # the load generator's connections still closing when the window ended, which serverbench
    # reset (None: not done, e.g. older files or no `ss -K`)
    leftover_connections_reset: int | None = None
    process_exits: tuple[ProcessExit, ...] = ()
    process_restarts: int = 0
    primer: PrimerRecord | None = None
    noise: NoiseWindow | None = None  # what else the machine did during the measured window
    logs: dict[str, LogSize] = field(default_factory=dict)  # per component
    warnings: tuple[str, ...] = ()  # what the report should say about this run alone
    services: dict[str, ServiceRecord] = field(default_factory=dict)  # the app's, this job's


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingRecord:
    """A setting of a service or an app, with where its value comes from."""

    name: str
    value: SettingValue
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRecord:
    """A service started for one job (its database): what ran, and how it was set."""

    version: str
    settings: tuple[SettingRecord, ...] = ()
    app_env: dict[str, str] = field(default_factory=dict)  # what the app got, secrets masked


@dataclass(frozen=True, slots=True, kw_only=True)
class AppRecord:
    name: str
    import_string: str
    interface: str  # wsgi, asgi, or http for a --url target
    path_template: str
    load_path: str
    expected: ExpectedResponse
    builtin: bool = False
    search_path: str | None = None
    workload: str | None = None  # apps that do the same work in two styles share it
    url: str | None = None
    services: tuple[str, ...] = ()  # started for every job of the app
    settings: tuple[SettingRecord, ...] = ()  # the app's own (a built-in workload's pool size)


@dataclass(frozen=True, slots=True, kw_only=True)
class StackRecord:
    """What the report says about a stack, declared by its plugin."""

    summary: str
    model: str  # how it serves requests: processes, threads, event loop
    interfaces: tuple[str, ...]
    packages: dict[str, str | None]  # name -> version installed (None: missing)
    setting_sources: dict[str, str]  # setting -> where its default comes from
    unavailable: str | None = None
    variant_of: str | None = None  # the bare stack a topology puts something in front of
    keeps_alive: bool | None = None  # whether it keeps client connections open
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AppCost:
    """An app's own cost per request, called in-process in a loop: no server, no sockets."""

    calls: int = 0
    seconds: float = 0.0
    per_call_us: float = 0.0
    calls_per_sec: float = 0.0
    status: int | None = None
    error: str | None = None  # why it could not be measured
    skipped: str | None = None  # why it means nothing for this app (it waits on I/O)


@dataclass(frozen=True, slots=True, kw_only=True)
class References:
    app_cost: dict[str, AppCost] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class NotApplicable:
    stack: str
    app: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened to the run as a whole."""

    kind: str  # time_wait_pause, resumed, owner_gone
    at: str | None = None
    time_wait_before: int | None = None
    time_wait_after: int | None = None
    waited_s: float | None = None
    runs_kept: int | None = None
    # owner_gone: the serverbench that left the run `running` died; who it was, what was left
    owner_pid: int | None = None
    owner_command: str | None = None
    owner_started_at: str | None = None
    leftovers_stopped: tuple[ProcessExit, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRecord:
    stacks: tuple[str, ...]
    apps: tuple[str, ...]
    profiles: tuple[Profile, ...]
    repeats: int
    overrides: dict[str, dict[str, str]]
    references: bool
    order_seed: int
    time_wait_threshold: int
    max_drain_s: float
    recovery_s: float = 60.0
    url: str | None = None
    allow_remote: bool = False
    precision: PrecisionGoal | None = None  # run --precision
    python: str | None = None  # the servers' interpreter (--python); None: serverbench's own
    python_version: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # secret-looking values written as ***
    config: ConfigRecord | None = None  # the project configuration the run read, if any


@dataclass(frozen=True, slots=True, kw_only=True)
class NotReached:
    """A cell --precision could not make precise enough, and what stopped it."""

    stack: str
    app: str
    profile: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PrecisionOutcome:
    elapsed_s: float
    not_reached: tuple[NotReached, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigRecord:
    """The project configuration a run used ([tool.serverbench] or serverbench.toml), as read:
    apps with their defaults filled in, paths absolute, environment values masked."""

    source: str
    apps: tuple[AppEntry, ...] = ()
    app_dir: str | None = None
    stacks: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    profile_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    repeats: int | None = None
    settings: tuple[str, ...] = ()
    python: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    slo: Slo | None = None
    out: str | None = None


@dataclass(slots=True, kw_only=True)
class CapacitySection:
    """A capacity run's (or a run with --capacity's) plan and one search per stack x app,
    each rewritten as its steps are measured."""

    plan: CapacityPlan
    searches: list[CapacityRecord] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class ResultsDocument:
    """The whole file. Mutable at its top: a run appends runs and events and moves its status."""

    schema_version: int
    serverbench_version: str
    status: DocumentStatus
    created_at: str
    updated_at: str
    command: tuple[str, ...]
    environment: Environment
    cpu_split: CpuSplit
    plan: PlanRecord
    apps: dict[str, AppRecord]
    stacks: dict[str, StackRecord]
    host_warnings: list[str] = field(default_factory=list)
    not_applicable: list[NotApplicable] = field(default_factory=list)
    references: References = field(default_factory=References)
    runs: list[RunRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    doctor: list[Finding] = field(default_factory=list)  # the host checks before the run
    precision: PrecisionOutcome | None = None
    capacity: CapacitySection | None = None

    def profile(self, name: str) -> Profile | None:
        return next((p for p in self.plan.profiles if p.name == name), None)

    @property
    def resets_leftovers(self) -> bool:
        """Whether its runs reset the load's closing connections after each window (older
        files, and machines without `ss -K`, did not)."""
        return any(run.leftover_connections_reset is not None for run in self.runs)
