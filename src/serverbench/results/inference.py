"""How sure a figure is: confidence intervals of medians and of changes, and when to stop repeating.

Every method here is distribution-free and exact for small counts, because a benchmark has a
handful of repeats whose distribution is skewed (a disturbed window is slow, never fast):

- The median of one cell: the interval between two order statistics, x(k) and x(n+1-k), which
  holds the true median with probability 1 - 2 P(Binomial(n, 1/2) <= k - 1) whatever the
  distribution (Hollander, Wolfe & Chicken, *Nonparametric Statistical Methods*, 3rd ed.,
  section 3.6). No interval from n values can be surer than min-max, 1 - 2^(1-n): a 95 %
  interval needs at least 6 repeats. With fewer the interval is min-max and its real
  confidence (75 % for 3 repeats) is reported instead of a false 95 %.
- The change between two sides, as the ratio B/A, on the log scale so that it is symmetric
  for faster and slower:
  - paired by round (both sides measured in the same shuffled rounds, so slow and fast
    periods of the machine hit both): the Hodges-Lehmann estimate of the per-round log ratios
    with the Wilcoxon signed-rank interval (ibid., section 3.2), which assumes the log ratios
    are symmetric about their centre.
  - unpaired (two separate runs): the Hodges-Lehmann shift of the log values with the
    Mann-Whitney interval (ibid., section 4.3), widened by the drift between separate runs,
    which repeats inside one run never sample.
  Both intervals come from the exact null distributions, computed by counting, not from a
  normal approximation; like the median, they have a smallest count below which 95 % cannot
  be reached, and then report the confidence they do reach.

No random numbers: the same values always give the same interval, so a report rendered twice
says the same thing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

CONFIDENCE = 0.95
# The standard deviation of a run's overall level between separate runs on one machine, in
# percent: what repeats inside one run cannot see. 5 % fits the quiet-machine evidence
# (an A/A pair of separate 5-repeat runs 7.4 % apart); benchmarks/precision.py measures it for
# the machine at hand (32 % on the project VM while other test suites ran: README, "How sure").
SEPARATE_RUNS_DRIFT_PCT = 5.0

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """A cell's median with the order-statistic interval that holds the true median."""

    median: float  # the lower median: always the value of a real repeat
    low: float
    high: float
    count: int
    confidence: float  # the interval's exact coverage; below the goal when count is too small

    @property
    def half_width_pct(self) -> float:
        """The larger side of the interval, in percent of the median: the precision quoted."""
        if self.median == 0:
            return 0.0
        return max(self.median - self.low, self.high - self.median) / self.median * 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """B against A as a ratio of typical values, with its interval."""

    ratio: float  # B / A: 1.06 is 6 % more (faster for req/s)
    low: float
    high: float
    confidence: float  # exact coverage of the interval (before any widening for drift)
    paired: bool
    count: int  # pairs (paired) or the smaller side's repeats (unpaired)
    drift_pct: float = 0.0  # the separate-runs drift the interval was widened by

    @property
    def change_pct(self) -> float:
        return (self.ratio - 1) * 100

    @property
    def low_pct(self) -> float:
        return (self.low - 1) * 100

    @property
    def high_pct(self) -> float:
        return (self.high - 1) * 100

    @property
    def significant(self) -> bool:
        """The interval excludes no change. One repeat (or one round) a side shows no spread:
        its interval is only the separate runs' drift allowance, and with none it has no
        interval at all, so nothing is significant."""
        if self.count < 2 and self.drift_pct == 0:
            return False
        return self.low > 1 or self.high < 1


# --- exact null distributions -----------------------------------------------------------------


@cache
def _signed_rank_counts(n: int) -> tuple[int, ...]:
    """How many of the 2^n sign patterns give each Wilcoxon signed-rank sum 0..n(n+1)/2."""
    counts = [1]
    for rank in range(1, n + 1):
        grown = [*counts, *([0] * rank)]
        for total, ways in enumerate(counts):
            grown[total + rank] += ways
        counts = grown
    return tuple(counts)


@cache
def _rank_sum_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m+n, m) orderings give each Mann-Whitney U 0..mn: the coefficients of
    the Gaussian binomial [m+n choose m]_q, built as prod (1 - q^(n+i)) / (1 - q^i)."""
    poly = [1] + [0] * (m * n)
    for i in range(1, m + 1):
        for power in range(m * n, n + i - 1, -1):  # times (1 - q^(n+i))
            poly[power] -= poly[power - n - i]
        for power in range(i, m * n + 1):  # divided by (1 - q^i): exact, the result is whole
            poly[power] += poly[power - i]
    return tuple(poly)


def _depth(counts: Sequence[int], confidence: float) -> tuple[int, float]:
    """Which order statistics end the interval, and the coverage that gives.

    `counts` is a symmetric null distribution over 0..N; with N candidates, taking from the
    sorted candidates - keeping the d-th smallest and the d-th largest as the ends - gives
    coverage 1 - 2 P(T <= d - 1). The largest d that keeps at least `confidence`; d = 1 (the
    extremes) when none does.
    """
    total = sum(counts)
    depth, tail = 0, 0
    while depth < len(counts) // 2:
        tail_next = tail + counts[depth]
        if 1 - 2 * tail_next / total < confidence:
            break
        depth, tail = depth + 1, tail_next
    if depth == 0:
        return 1, 1 - 2 * counts[0] / total
    return depth, 1 - 2 * tail / total


# --- one cell -----------------------------------------------------------------------------------


def median_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate | None:
    """The median of the repeats and the order-statistic interval around it."""
    if not values:
        return None
    ordered = sorted(float(v) for v in values)
    n = len(ordered)
    k, coverage = _depth([math.comb(n, i) for i in range(n + 1)], confidence)
    return Estimate(
        median=ordered[(n - 1) // 2],
        low=ordered[k - 1],
        high=ordered[n - k],
        count=n,
        confidence=coverage,
    )


def repeats_for(confidence: float = CONFIDENCE) -> int:
    """The fewest repeats whose min-max holds the median with `confidence`: 6 for 95 %."""
    n = 1
    while 1 - 2 ** (1 - n) < confidence:
        n += 1
    return n


# --- two sides ------------------------------------------------------------------------------------


def _logs(values: Sequence[float]) -> list[float]:
    if any(v <= 0 for v in values):
        raise ValueError("a ratio needs positive values on both sides")
    return [math.log(v) for v in values]


def paired_change(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> Change | None:
    """B/A from values paired by round (a[i] and b[i] measured in the same round)."""
    if len(a) != len(b):
        raise ValueError("paired values need the same count on both sides")
    if not a:
        return None
    d = [lb - la for la, lb in zip(_logs(a), _logs(b), strict=True)]
    walsh = sorted((d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d)))
    depth, coverage = _depth(_signed_rank_counts(len(d)), confidence)
    return Change(
        ratio=math.exp(statistics.median(walsh)),
        low=math.exp(walsh[depth - 1]),
        high=math.exp(walsh[len(walsh) - depth]),
        confidence=coverage,
        paired=True,
        count=len(d),
    )


def drift_allowance(drift_pct: float, confidence: float = CONFIDENCE) -> float:
    """On the log scale, the half-width of the normal interval of the difference of two
    separate runs' levels, each drifting with a standard deviation of `drift_pct` percent."""
    z = statistics.NormalDist().inv_cdf((1 + confidence) / 2)
    return z * math.sqrt(2) * math.log(1 + drift_pct / 100)


def unpaired_change(
    a: Sequence[float],
    b: Sequence[float],
    confidence: float = CONFIDENCE,
    drift_pct: float = SEPARATE_RUNS_DRIFT_PCT,
) -> Change | None:
    """B/A from two separate sets of repeats, widened by `drift_pct` between separate runs.

    The widening adds, in quadrature on the log scale, the normal interval of the difference of
    two runs' levels that each drift with a standard deviation of `drift_pct` percent.
    """
    if not a or not b:
        return None
    la, lb = _logs(a), _logs(b)
    diffs = sorted(y - x for x in la for y in lb)
    depth, coverage = _depth(_rank_sum_counts(len(la), len(lb)), confidence)
    centre = statistics.median(diffs)
    below, above = centre - diffs[depth - 1], diffs[len(diffs) - depth] - centre
    if drift_pct > 0:
        extra = drift_allowance(drift_pct, confidence)
        below, above = math.hypot(below, extra), math.hypot(above, extra)
    return Change(
        ratio=math.exp(centre),
        low=math.exp(centre - below),
        high=math.exp(centre + above),
        confidence=coverage,
        paired=False,
        count=min(len(la), len(lb)),
        drift_pct=drift_pct,
    )


def pair_by_round(
    a: Mapping[int, float], b: Mapping[int, float]
) -> tuple[list[float], list[float]]:
    """The two sides' values of the rounds both measured, in round order."""
    rounds = sorted(a.keys() & b.keys())
    return [a[r] for r in rounds], [b[r] for r in rounds]


def fails_if_slower(change: Change, limit_pct: float) -> bool:
    """The `--fail-if-slower PCT` rule: B is significantly slower and even the interval's most
    favourable end is a loss of more than PCT %, i.e. the slowdown is beyond PCT with the
    interval's confidence. A point estimate past PCT with an interval that reaches back above
    it does not fail: that difference cannot be told from noise at PCT."""
    return change.significant and change.high_pct < -limit_pct


# --- repeating until precise --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PrecisionGoal:
    """`--precision PCT`: repeat a cell until its median's interval is within +-PCT %."""

    target_pct: float
    max_repeats: int
    budget_s: float | None = None  # wall time for the whole run; None: no budget
    confidence: float = CONFIDENCE

    def reached(self, values: Sequence[float]) -> bool:
        estimate = median_ci(values, self.confidence)
        return (
            estimate is not None
            and estimate.confidence >= self.confidence
            and estimate.half_width_pct <= self.target_pct
        )

    def cells_to_repeat(
        self,
        values: Mapping[Key, Sequence[float]],
        elapsed_s: float,
        round_s: Mapping[Key, float],
        force: Collection[Key] = (),
    ) -> list[Key]:
        """The cells the next round measures: not yet precise (or in `force`, e.g. the last
        window was disturbed), under the repeat cap, and (the widest interval first) fitting
        in what is left of the budget."""
        wanted = [
            key
            for key, vals in values.items()
            if len(vals) < self.max_repeats and (key in force or not self.reached(vals))
        ]
        wanted.sort(key=lambda key: -_half_width(values[key], self.confidence))
        if self.budget_s is None:
            return wanted
        left_s = self.budget_s - elapsed_s
        chosen = []
        for key in wanted:
            cost_s = round_s.get(key, 0.0)
            if cost_s <= left_s:
                chosen.append(key)
                left_s -= cost_s
        return chosen

    def why_not_reached(self, values: Sequence[float], budget_spent: bool) -> str | None:
        """None when the cell is within the target; else what stopped it, with its numbers."""
        if self.reached(values):
            return None
        estimate = median_ci(values, self.confidence)
        if estimate is None:
            return "no successful repeat"
        now = (
            f"+-{estimate.half_width_pct:.1f} % at {estimate.confidence * 100:.0f} % "
            f"confidence after {estimate.count} repeats"
        )
        if len(values) >= self.max_repeats:
            return f"{now}; the cap of {self.max_repeats} repeats was reached"
        if budget_spent:
            return f"{now}; the time budget ran out"
        return now


def _half_width(values: Sequence[float], confidence: float) -> float:
    estimate = median_ci(values, confidence)
    if estimate is None or estimate.confidence < confidence:
        return math.inf
    return estimate.half_width_pct
