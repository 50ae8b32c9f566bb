"""Statistics over repeats: median with min-max, spread; never an average of percentiles.

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


def separated(a: Summary, b: Summary) -> bool | None:
    """Whether two min-max ranges do not overlap; None when one repeat each cannot tell."""
    if a.count < 2 and b.count < 2:
        return None
    return a.maximum < b.minimum or b.maximum < a.minimum


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


def littles_law_connections(requests_per_sec: float, mean_latency_us: float) -> float:
    """Connections a closed loop must have had in flight: L = lambda x W."""
    return requests_per_sec * mean_latency_us / 1e6
