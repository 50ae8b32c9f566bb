"""wrk's own text output, rebuilt from a closed-loop run: `run.wrk` (what only wrk knows, its
Thread Stats) with `run.measurement` (the counts and rates any engine gives), so the report's
median repeat reads like the seed report's wrk blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from serverbench.load.wrk import Spread
from serverbench.plan.profiles import Profile
from serverbench.results.model import RunRecord


def _units(value: float, scale: float, base: str, units: Sequence[str], precision: int) -> str:
    """wrk's format_units: divide while the value is at least 85 % of the next unit."""
    amount, unit = value, base
    for name in units:
        if amount < scale * 0.85:
            break
        amount /= scale
        unit = name
    return f"{amount:.{precision}f}{unit}"


def wrk_time_us(value_us: float) -> str:
    if value_us >= 1e6:
        return _units(value_us / 1e6, 60, "s", ("m", "h"), 2)
    return _units(value_us, 1000, "us", ("ms", "s"), 2)


def wrk_time_s(value_s: float) -> str:
    return _units(value_s, 60, "s", ("m", "h"), 0)


def wrk_metric(value: float) -> str:
    return _units(value, 1000, "", ("k", "M", "G"), 2)


def wrk_binary(value: float) -> str:
    return _units(value, 1024, "", ("K", "M", "G", "T"), 2)


def _column(text: str, width: int) -> str:
    """wrk's print_units: right-aligned, unit letters eat into the two spaces of padding."""
    pad = 2 - sum(1 for ch in text[-2:] if ch.isalpha())
    return text.rjust(width - pad)[: width - pad] + " " * pad


def _stats_line(name: str, spread: Spread, fmt: Callable[[float], str]) -> str:
    if spread.mean is None:
        return f"    {name:<10}{'-':>8}{'-':>10}{'-':>9}{'-':>9}"
    return (
        f"    {name:<10}"
        + _column(fmt(spread.mean), 8)
        + _column(fmt(spread.stdev or 0.0), 10)
        + _column(fmt(spread.max or 0.0), 9)
        + f"{spread.within_stdev_pct or 0.0:8.2f}%"
    )


def wrk_text(run: RunRecord, profile: Profile | None) -> str | None:
    """The run in the layout wrk prints; None for a run wrk did not measure in a closed loop."""
    wrk, measured = run.wrk, run.measurement
    if wrk is None or measured is None or measured.loop != "closed":
        return None
    url = run.load_argv[-1] if run.load_argv else ""
    duration = math.ceil(profile.duration_s if profile else measured.duration_s)
    threads = profile.threads if profile else "?"
    errors = measured.errors
    lines = [
        f"Running {wrk_time_s(duration)} test @ {url}",
        f"  {threads} threads and {measured.connections} connections",
        f"  Thread Stats{'Avg':>6}{'Stdev':>11}{'Max':>8}{'+/- Stdev':>12}",
        _stats_line("Latency", wrk.latency_us, wrk_time_us),
        _stats_line("Req/Sec", wrk.thread_rps, wrk_metric),
        f"  {measured.requests} requests in {wrk_time_us(measured.duration_s * 1e6)}, "
        f"{wrk_binary(float(measured.bytes_read))}B read",
    ]
    if errors.connect or errors.read or errors.write or errors.timeout:
        lines.append(
            f"  Socket errors: connect {errors.connect}, read {errors.read}, "
            f"write {errors.write}, timeout {errors.timeout}"
        )
    if errors.status:
        lines.append(f"  Non-2xx or 3xx responses: {errors.status}")
    lines.append(f"Requests/sec: {measured.raw_requests_per_sec:9.2f}")
    lines.append(f"Transfer/sec: {wrk_binary(measured.transfer_bytes_per_sec):>10}B")
    return "\n".join(lines)
