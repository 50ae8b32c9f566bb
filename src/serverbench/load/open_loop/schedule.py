"""Arrival schedules: when each request is meant to be sent, independent of any answer.

A schedule is a pure function of (rate, arrival kind, seed, process index): the same inputs
give the same intended send times, so a run can be reproduced and tested without a network.
Times are offsets in seconds from the start of the run (warm-up included).

The offered rate is split across client processes so the processes together send exactly the
offered stream: with constant arrivals process i of n sends the arrivals i, i+n, i+2n, ... of
the one evenly spaced stream; with Poisson arrivals each process is an independent Poisson
process of rate/n, and the superposition of independent Poisson processes is a Poisson
process of the summed rate.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Arrivals = Literal["constant", "poisson"]
ARRIVALS: tuple[Arrivals, ...] = ("constant", "poisson")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSchedule:
    """The share of the offered stream one client process sends."""

    arrivals: Arrivals
    rate_per_s: float  # this process's rate
    phase_s: float  # constant arrivals: offset of this process's first arrival
    seed: int  # Poisson arrivals: this process's random stream

    def offsets_s(self, end_s: float) -> Iterator[float]:
        """Intended send offsets in [0, end_s), increasing."""
        if self.rate_per_s <= 0:
            return
        if self.arrivals == "constant":
            period_s = 1.0 / self.rate_per_s
            k = 0
            # computed from k, not accumulated, so rounding never drifts the schedule
            while (t := self.phase_s + k * period_s) < end_s:
                yield t
                k += 1
        else:
            draw = random.Random(self.seed).expovariate
            rate = self.rate_per_s
            t = draw(rate)
            while t < end_s:
                yield t
                t += draw(rate)


def split_rate(
    rate_per_s: float, processes: int, *, arrivals: Arrivals, seed: int
) -> list[ProcessSchedule]:
    """The offered stream split across `processes` client processes (see module docstring)."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    share = rate_per_s / processes
    return [
        ProcessSchedule(
            arrivals=arrivals,
            rate_per_s=share,
            phase_s=i / rate_per_s if rate_per_s > 0 else 0.0,
            # distinct, reproducible streams per process
            seed=seed * 1_000_003 + i,
        )
        for i in range(processes)
    ]
