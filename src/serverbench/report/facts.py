"""The facts the report's rules read, derived once per cell: the cell, its profile, what its
median repeat measured and used; and the document-wide lookups the rules share (profile and
stack order, the reference ceiling, the apps' own cost, whether a stack keeps connections)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from serverbench.plan.profiles import Profile
from serverbench.results.aggregate import Cell, cells
from serverbench.results.model import Loop, Measurement, ResultsDocument, RunRecord
from serverbench.workloads.catalog import Workload, builtin_workload

REFERENCE_ROLE = "reference"


def label(cell: Cell) -> str:
    return f"{cell.stack} · {cell.app} · {cell.profile}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """What the median repeat used: the server's components and the load generator."""

    window_s: float
    server_cpu_s: float
    server_cpus: int
    rss_peak_bytes: dict[str, int]  # per server component
    client_name: str  # the load generator's component, as sampled
    client_cpu_percent: float | None  # the generator's mean, 100 = one CPU
    client_cpus: int
    client_connections: int | None  # established connections the generator held at most

    @property
    def server_utilisation(self) -> float:
        available = self.window_s * self.server_cpus
        return self.server_cpu_s / available if available > 0 else 0.0

    @property
    def client_utilisation(self) -> float | None:
        if self.client_cpu_percent is None or self.client_cpus == 0:
            return None
        return self.client_cpu_percent / (100.0 * self.client_cpus)


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """One cell with the numbers the rules read, derived once."""

    cell: Cell
    profile: Profile | None
    resources: Resources | None

    @property
    def ok(self) -> bool:
        return self.cell.requests_per_sec is not None

    @property
    def measurement(self) -> Measurement | None:
        """The median repeat's measurement."""
        run = self.cell.median_run
        return run.measurement if run is not None else None

    @property
    def loop(self) -> Loop | None:
        measurement = self.measurement
        return measurement.loop if measurement is not None else None

    @property
    def rps(self) -> float:
        return self.cell.requests_per_sec.median if self.cell.requests_per_sec else 0.0

    @property
    def connections(self) -> int:
        return self.profile.connections if self.profile else 0

    @property
    def threads(self) -> int:
        return self.profile.threads if self.profile else 1

    @property
    def wrk_connections(self) -> int:
        """wrk opens connections // threads per thread, so a remainder is never opened."""
        return (self.connections // max(1, self.threads)) * max(1, self.threads)

    def percentile(self, key: str) -> float | None:
        return self.cell.latency_percentiles_us.get(key)

    @property
    def mean_latency_us(self) -> float | None:
        measurement = self.measurement
        return measurement.latency_mean_us if measurement is not None else None

    @property
    def median_raw_rps(self) -> float:
        measurement = self.measurement
        return measurement.raw_requests_per_sec if measurement is not None else 0.0

    @property
    def tail_ratio(self) -> float | None:
        p50, p99 = self.percentile("50"), self.percentile("99")
        return p99 / p50 if p50 and p99 else None

    @property
    def requests_per_cpu_s(self) -> float | None:
        measurement, res = self.measurement, self.resources
        if measurement is None or res is None or res.server_cpu_s <= 0:
            return None
        return measurement.good_responses / res.server_cpu_s


def _resources(run: RunRecord | None, document: ResultsDocument) -> Resources | None:
    if run is None or run.usage is None or run.measurement is None:
        return None
    server = run.usage.server
    engine = run.measurement.engine
    client = next((c for c in run.usage.client.components if c.name == engine), None)
    split = document.cpu_split
    return Resources(
        window_s=server.window_s,
        server_cpu_s=sum(c.cpu_seconds for c in server.components),
        server_cpus=len(split.server_cpus) or 1,
        rss_peak_bytes={c.name: c.rss_peak_bytes for c in server.components},
        client_name=engine,
        client_cpu_percent=client.cpu_percent_mean if client else None,
        client_cpus=len(split.client_cpus) or 1,
        client_connections=client.connections_max if client else None,
    )


def all_facts(document: ResultsDocument) -> list[Facts]:
    return [
        Facts(
            cell=cell,
            profile=document.profile(cell.profile),
            resources=_resources(cell.median_run, document),
        )
        for cell in cells(document)
    ]


def profile_order(document: ResultsDocument) -> list[str]:
    """Lighter to heavier: by connections, then by the plan's order."""
    ranked = sorted(
        enumerate(document.plan.profiles), key=lambda item: (item[1].connections, item[0])
    )
    return [p.name for _, p in ranked]


def profile_index(order: Sequence[str], profile: str, missing: int = 0) -> int:
    return order.index(profile) if profile in order else missing


def stack_order(document: ResultsDocument) -> list[str]:
    names = list(document.plan.stacks)
    for run in document.runs:
        if run.stack not in names and run.role != REFERENCE_ROLE:
            names.append(run.stack)
    return names


def ceiling_for(facts: Sequence[Facts], profile: str) -> Facts | None:
    return next(
        (f for f in facts if f.cell.role == REFERENCE_ROLE and f.cell.profile == profile and f.ok),
        None,
    )


def app_rate(document: ResultsDocument, app: str) -> float | None:
    """The app's in-process calls per second on one CPU, when it was measured."""
    cost = document.references.app_cost.get(app)
    return cost.calls_per_sec if cost and cost.calls_per_sec else None


def app_cost_skipped(document: ResultsDocument, app: str) -> str | None:
    """Why the app's in-process cost was not measured (it waits on I/O), if it was not."""
    cost = document.references.app_cost.get(app)
    return cost.skipped if cost else None


def app_workload(document: ResultsDocument, app: str) -> Workload | None:
    """The built-in workload (serverbench.workloads.catalog) an app of the document runs."""
    record = document.apps.get(app)
    return builtin_workload(record) if record is not None else None


def app_cost_us(document: ResultsDocument, app: str) -> float | None:
    cost = document.references.app_cost.get(app)
    return cost.per_call_us if cost and cost.per_call_us else None


def closes_connections(document: ResultsDocument, stack: str) -> bool:
    """Whether the stack closes each client connection after a response (no keep-alive)."""
    record = document.stacks.get(stack)
    return record is not None and record.keeps_alive is False
