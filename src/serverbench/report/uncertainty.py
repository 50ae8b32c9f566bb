"""How sure a figure is, in words: a median with its interval, a change with its interval.

The console summary, the report and `compare` all say it the same way:
    11,780 req/s ±2.1 % (95 % CI, 6 repeats)
    11,780 req/s ±6.1 % (75 % CI, 3 repeats)    fewer than 6 repeats cannot be 95 % sure
    faster by 6.2 % (95 % CI +3.1 to +9.0 %, paired by round)
    no significant difference (95 % CI -3.0 to +4.1 %, separate runs)
"""

from __future__ import annotations

from serverbench.results.inference import CONFIDENCE, Change, Estimate


def confidence_label(confidence: float) -> str:
    """An exact interval at least as sure as the goal is a 95 % interval (conservative, as
    every rank-based interval is); one that cannot reach it says what it reaches, floored so
    that 93.75 % is never rounded up into a 95 % claim."""
    shown = CONFIDENCE if confidence >= CONFIDENCE else confidence
    return f"{round(shown * 1000) // 10} % CI"


def change_label(change: Change) -> str:
    """What a change's interval is: "95 % CI"; with one repeat a side its coverage is 0 and the
    interval, if any, is only the drift allowed between separate runs."""
    if change.count >= 2:
        return confidence_label(change.confidence)
    return (
        "1 repeat a side: run drift only," if change.drift_pct else "1 repeat a side: no interval,"
    )


def plus_minus(estimate: Estimate) -> str:
    """ "±2.1 % (95 % CI, 6 repeats)"; one repeat has no interval."""
    if estimate.count < 2:
        return "(1 repeat, no interval)"
    return (
        f"±{estimate.half_width_pct:.1f} % ({confidence_label(estimate.confidence)}, "
        f"{estimate.count} repeats)"
    )


def describe_rate(estimate: Estimate, unit: str = "req/s") -> str:
    return f"{estimate.median:,.0f} {unit} {plus_minus(estimate)}"


def how_paired(change: Change) -> str:
    if change.paired:
        return f"paired by round, {change.count} rounds"
    return f"separate runs, {change.drift_pct:g} % drift allowed"


def describe_change(change: Change, faster: str = "faster", slower: str = "slower") -> str:
    """The change of a figure where more is better (req/s); for latency pass the words
    swapped ("lower"/"higher" or so)."""
    interval = (
        f"{change_label(change)} {change.low_pct:+.1f} to "
        f"{change.high_pct:+.1f} %, {how_paired(change)}"
    )
    if not change.significant:
        return f"no significant difference ({interval})"
    word = faster if change.ratio > 1 else slower
    return f"{word} by {abs(change.change_pct):.1f} % ({interval})"
