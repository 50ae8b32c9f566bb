"""Statistics over repeats: median with min-max, spread; never an average of percentiles
(intervals and tests of a change: results/inference.py).

Percentiles over several repeats come from their merged HDR histograms (exact merge), not
from averaging each repeat's percentiles.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    median: float  # the lower median for an even count: always the value of a real repeat
    minimum: float
    maximum: float
    count: int

    @property
    def spread_pct(self) -> float:
        """(max - min) / median, in percent: the run-to-run spread the report warns about."""
        if self.median == 0:
            return 0.0
        return (self.maximum - self.minimum) / self.median * 100


def summarize(values: Sequence[float]) -> Summary | None:
    if not values:
        return None
    return Summary(
        median=float(statistics.median_low(values)),
        minimum=float(min(values)),
        maximum=float(max(values)),
        count=len(values),
    )


def median_index(values: Sequence[float]) -> int:
    """Index of the repeat whose value is `Summary.median`: the run shown in wrk's layout."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    return order[(len(order) - 1) // 2]
