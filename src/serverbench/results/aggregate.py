"""From the runs of a results document to one cell per stack x app x profile.

A cell holds the repeats' honest throughput (median, min-max, and its confidence interval), the percentiles of their merged
latency histograms, error totals, and which repeat is the median one (the run a report shows in
wrk's layout). Failed repeats are counted and explained, never turned into zeros. Reports, the
CLI summary and `compare` all read cells from here, so they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from serverbench.load.histogram import merge_histograms, percentiles_from_hdr
from serverbench.results.inference import Estimate, median_ci
from serverbench.results.model import ErrorCounts, ResultsDocument, Role, RunRecord
from serverbench.results.stats import Summary, median_index, summarize

REPORTED_PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9, 99.99)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    stack: str
    app: str
    profile: str
    role: Role
    ok_runs: tuple[RunRecord, ...]  # each with a measurement
    failed_runs: tuple[RunRecord, ...]
    skipped_reason: str | None
    requests_per_sec: Summary | None  # honest: good responses only
    raw_requests_per_sec: Summary | None  # what wrk itself prints
    latency_percentiles_us: dict[str, float]  # from the merged histograms of the ok repeats
    requests: int
    good_responses: int
    errors: ErrorCounts  # summed over the ok repeats
    median_run: RunRecord | None

    @property
    def rps_by_round(self) -> dict[int, float]:
        """Good responses per second of each ok repeat, by round: what pairing by round reads."""
        return {r.round: r.measurement.requests_per_sec for r in self.ok_runs if r.measurement}

    @property
    def per_cpu_s_by_round(self) -> dict[int, float]:
        """Good responses per server CPU-second of each ok repeat, by round: the cost of a
        request, which CPU taken by other processes changes far less than req/s."""
        found = {}
        for r in self.ok_runs:
            cpu_s = sum(c.cpu_seconds for c in r.usage.server.components) if r.usage else 0.0
            if r.measurement and cpu_s > 0:
                found[r.round] = r.measurement.good_responses / cpu_s
        return found

    @property
    def rps_estimate(self) -> Estimate | None:
        """The median req/s with its order-statistic confidence interval."""
        return median_ci(list(self.rps_by_round.values()))

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.stack, self.app, self.profile)

    @property
    def status(self) -> str:
        if self.skipped_reason is not None:
            return "skipped"
        if not self.ok_runs:
            return "failed"
        return "partial" if self.failed_runs else "ok"

    @property
    def error_count(self) -> int:
        return self.errors.total

    @property
    def error_rate(self) -> float:
        """Errors over attempts (good responses plus errors): the share of the load that failed."""
        attempts = self.good_responses + self.error_count
        return self.error_count / attempts if attempts else 0.0

    @property
    def failure_reasons(self) -> list[str]:
        return [
            f"{run.failure.kind}: {run.failure.message}" if run.failure else "failed: "
            for run in self.failed_runs
        ]


def _sum_errors(runs: Sequence[RunRecord]) -> ErrorCounts:
    counts = [run.measurement.errors for run in runs if run.measurement]
    return ErrorCounts(
        connect=sum(c.connect for c in counts),
        read=sum(c.read for c in counts),
        write=sum(c.write for c in counts),
        timeout=sum(c.timeout for c in counts),
        status=sum(c.status for c in counts),
    )


def build_cell(stack: str, app: str, profile: str, runs: Sequence[RunRecord]) -> Cell:
    ok = tuple(r for r in runs if r.status == "ok" and r.measurement is not None)
    failed = tuple(r for r in runs if r.status == "failed")
    skipped = next((r for r in runs if r.status == "skipped"), None)
    measured = [r.measurement for r in ok if r.measurement is not None]
    rps = [m.requests_per_sec for m in measured]
    blobs = [m.latency_histogram_hdr for m in measured if m.latency_histogram_hdr]
    merged = merge_histograms(blobs) if blobs else None
    percentiles = percentiles_from_hdr(merged, REPORTED_PERCENTILES) if merged else {}
    return Cell(
        stack=stack,
        app=app,
        profile=profile,
        role=runs[0].role,
        ok_runs=ok,
        failed_runs=failed,
        skipped_reason=skipped.failure.message if skipped and skipped.failure and not ok else None,
        requests_per_sec=summarize(rps),
        raw_requests_per_sec=summarize([m.raw_requests_per_sec for m in measured]),
        latency_percentiles_us=percentiles,
        requests=sum(m.requests for m in measured),
        good_responses=sum(m.good_responses for m in measured),
        errors=_sum_errors(ok),
        median_run=ok[median_index(rps)] if ok else None,
    )


def cells(document: ResultsDocument) -> list[Cell]:
    """One cell per stack x app x profile, in the order the plan lists them."""
    groups: dict[tuple[str, str, str], list[RunRecord]] = {}
    for run in document.runs:
        groups.setdefault((run.stack, run.app, run.profile), []).append(run)
    return [build_cell(*key, runs) for key, runs in groups.items()]


def throughput_order(items: Sequence[Cell]) -> list[Cell]:
    """Best honest throughput first; cells without a measurement last, in their own order."""
    return sorted(items, key=lambda c: -(c.requests_per_sec.median if c.requests_per_sec else -1.0))
