"""The stored results `compare` is tested on, and copies of them with one entry slowed down."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from serverbench.results.model import ResultsDocument, RunRecord
from serverbench.results.store import load

DATA = Path(__file__).parent / "data" / "results"
SLOW = ("bjoern", "seed-flask", "tiny-high")


def key_of(run: RunRecord) -> tuple[str, str, str]:
    return (run.stack, run.app, run.profile)


def fresh() -> ResultsDocument:
    return load(DATA / "two-profiles-failed.json")


def scaled(key: tuple[str, str, str], factor: float) -> ResultsDocument:
    """A fresh copy in which one entry's repeats served `factor` times the good responses."""
    changed = fresh()

    def scale(run: RunRecord) -> RunRecord:
        m = run.measurement
        if key_of(run) != key or run.status != "ok" or m is None:
            return run
        return replace(
            run,
            measurement=replace(
                m,
                requests_per_sec=m.requests_per_sec * factor,
                raw_requests_per_sec=m.raw_requests_per_sec * factor,
                good_responses=round(m.good_responses * factor),
            ),
        )

    changed.runs = [scale(run) for run in changed.runs]
    return changed
