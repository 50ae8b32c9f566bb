"""From the runs of a results document to one cell per stack x app x profile.

A cell holds the repeats' honest throughput (median, min-max), the percentiles of their merged
latency histograms, error totals, and which repeat is the median one (the run a report shows in
wrk's layout). Failed repeats are counted and explained, never turned into zeros. Reports, the
CLI summary and `compare` all read cells from here, so they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serverbench.load.wrk import merge_histograms, percentiles_from_hdr
from serverbench.results.stats import Summary, median_index, summarize
from serverbench.results.store import Document

REPORTED_PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9, 99.99)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    stack: str
    app: str
    profile: str
    role: str  # "stack" or "reference"
    ok_runs: tuple[dict[str, Any], ...]
    failed_runs: tuple[dict[str, Any], ...]
    skipped_reason: str | None
    requests_per_sec: Summary | None  # honest: good responses only
    raw_requests_per_sec: Summary | None  # what wrk itself prints
    latency_percentiles_us: dict[str, float]  # from the merged histograms of the ok repeats
    requests: int
    good_responses: int
    socket_errors: dict[str, int]
    non_2xx_3xx: int
    median_run: dict[str, Any] | None

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
    def errors(self) -> int:
        return sum(self.socket_errors.values()) + self.non_2xx_3xx

    @property
    def error_rate(self) -> float:
        """Errors over attempts (good responses plus errors): the share of the load that failed."""
        attempts = self.good_responses + self.errors
        return self.errors / attempts if attempts else 0.0

    @property
    def failure_reasons(self) -> list[str]:
        reasons = []
        for run in self.failed_runs:
            failure = run.get("failure") or {}
            reasons.append(f"{failure.get('kind', 'failed')}: {failure.get('message', '')}")
        return reasons


def _sum_errors(runs: Sequence[dict[str, Any]]) -> dict[str, int]:
    totals = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    for run in runs:
        for key, value in run["wrk"]["socket_errors"].items():
            totals[key] = totals.get(key, 0) + int(value)
    return totals


def build_cell(stack: str, app: str, profile: str, runs: Sequence[dict[str, Any]]) -> Cell:
    ok = tuple(r for r in runs if r["status"] == "ok")
    failed = tuple(r for r in runs if r["status"] == "failed")
    skipped = next((r for r in runs if r["status"] == "skipped"), None)
    rps = [r["derived"]["requests_per_sec"] for r in ok]
    blobs = [r["wrk"]["histogram_hdr"] for r in ok if r["wrk"].get("histogram_hdr")]
    merged = merge_histograms(blobs) if blobs else None
    percentiles = percentiles_from_hdr(merged, REPORTED_PERCENTILES) if merged else {}
    return Cell(
        stack=stack,
        app=app,
        profile=profile,
        role=runs[0].get("role", "stack"),
        ok_runs=ok,
        failed_runs=failed,
        skipped_reason=(skipped.get("failure") or {}).get("message")
        if skipped and not ok
        else None,
        requests_per_sec=summarize(rps),
        raw_requests_per_sec=summarize([r["derived"]["raw_requests_per_sec"] for r in ok]),
        latency_percentiles_us=percentiles,
        requests=sum(int(r["wrk"]["requests"]) for r in ok),
        good_responses=sum(int(r["derived"]["good_responses"]) for r in ok),
        socket_errors=_sum_errors(ok),
        non_2xx_3xx=sum(int(r["wrk"]["non_2xx_3xx"]) for r in ok),
        median_run=ok[median_index(rps)] if ok else None,
    )


def cells(document: Document) -> list[Cell]:
    """One cell per stack x app x profile, in the order the plan lists them."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run in document.get("runs", []):
        groups.setdefault((run["stack"], run["app"], run["profile"]), []).append(run)
    return [build_cell(*key, runs) for key, runs in groups.items()]


def throughput_order(items: Sequence[Cell]) -> list[Cell]:
    """Best honest throughput first; cells without a measurement last, in their own order."""
    return sorted(items, key=lambda c: -(c.requests_per_sec.median if c.requests_per_sec else -1.0))
