"""The targets a capacity search holds a stack to, and the open-loop rates a run asks for.

A latency SLO names one percentile and its limit (`p99=50ms`, `p99.9=200ms`); an error budget
is the share of attempts allowed to fail (`0.1%`); a rate is absolute (`2000`, req/s) or a share
of the stack's closed-loop peak measured with wrk in the same run (`50%`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from serverbench.errors import UsageError

_UNITS_US = {"us": 1.0, "µs": 1.0, "ms": 1_000.0, "s": 1_000_000.0}
_SLO = re.compile(
    r"^\s*p(?P<pct>\d+(?:\.\d+)?)\s*(?:=|<=)\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>us|µs|ms|s)\s*$"
)
_PERCENT = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)\s*%\s*$")
_NUMBER = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)\s*$")
_RATE = re.compile(r"^\s*(?P<value>-?\d+(?:\.\d+)?)\s*(?P<suffix>k?)\s*(?:/s|rps|req/s)?\s*$")


def percentile_key(percentile: float) -> str:
    """The key the results model uses for a percentile: "50", "99", "99.9"."""
    return f"{percentile:g}"


def format_limit_us(value_us: float) -> str:
    if value_us >= 1_000_000:
        return f"{value_us / 1_000_000:g} s"
    if value_us >= 1_000:
        return f"{value_us / 1_000:g} ms"
    return f"{value_us:g} µs"


def format_latency_us(value_us: float) -> str:
    """A measured latency, to the precision that means something: 126.46 ms, 1.25 s, 830 µs."""
    if value_us >= 1_000_000:
        return f"{value_us / 1_000_000:.2f} s"
    if value_us >= 1_000:
        return f"{value_us / 1_000:.2f} ms"
    return f"{value_us:.0f} µs"


@dataclass(frozen=True, slots=True, kw_only=True)
class Slo:
    """Latency objective: the `percentile`th percentile at most `limit_us`."""

    percentile: float
    limit_us: float

    @property
    def key(self) -> str:
        return percentile_key(self.percentile)

    @property
    def text(self) -> str:
        return f"p{self.key} <= {format_limit_us(self.limit_us)}"

    @property
    def spec(self) -> str:
        """The form `--slo` takes, to print a command that repeats the search."""
        return f"p{self.key}={format_limit_us(self.limit_us).replace(' ', '')}"


def parse_slo(text: str) -> Slo:
    match = _SLO.match(text)
    if match is None:
        raise UsageError(
            f"--slo {text!r}: not a latency objective; write the percentile and its limit, "
            "e.g. p99=50ms, p99.9=200ms or p50=2ms (units us, ms, s)"
        )
    percentile = float(match["pct"])
    if not 0 < percentile < 100:
        raise UsageError(
            f"--slo {text!r}: the percentile must be above 0 and below 100, e.g. p99=50ms"
        )
    limit_us = float(match["value"]) * _UNITS_US[match["unit"]]
    if limit_us <= 0:
        raise UsageError(f"--slo {text!r}: the latency limit must be above zero, e.g. p99=50ms")
    return Slo(percentile=percentile, limit_us=limit_us)


def parse_error_budget(text: str) -> float:
    """`0.1%` (or the fraction `0.001`, or `0`) -> the share of attempts allowed to fail."""
    percent = _PERCENT.match(text)
    plain = _NUMBER.match(text)
    if percent is not None:
        share = float(percent["value"]) / 100
    elif plain is not None and float(plain["value"]) < 1:
        share = float(plain["value"])
    else:
        raise UsageError(
            f"--max-errors {text!r}: not an error budget; give a percentage of attempts, "
            "e.g. 0.1% or 0%"
        )
    if share >= 1:
        raise UsageError(f"--max-errors {text!r}: the budget must be below 100 %, e.g. 0.1%")
    return share


@dataclass(frozen=True, slots=True, kw_only=True)
class RateSpec:
    """An offered rate: `rps` req/s, or `peak_share` of the closed-loop peak (0.5 for 50%)."""

    rps: float | None = None
    peak_share: float | None = None

    @property
    def relative(self) -> bool:
        return self.peak_share is not None

    @property
    def text(self) -> str:
        if self.peak_share is not None:
            return f"{self.peak_share * 100:g}%"
        return f"{self.rps:g}"

    def resolve(self, peak_rps: float | None) -> float:
        """The absolute rate; a share needs the stack's peak (closed-loop, same run)."""
        if self.rps is not None:
            return self.rps
        assert self.peak_share is not None
        if peak_rps is None or peak_rps <= 0:
            raise UsageError(
                f"--rate {self.text} is a share of the stack's closed-loop peak, and no peak "
                "was measured; give an absolute rate (req/s) instead"
            )
        return self.peak_share * peak_rps


def parse_rate(text: str) -> RateSpec:
    percent = _PERCENT.match(text)
    if percent is not None:
        share = float(percent["value"]) / 100
        if share <= 0:
            raise UsageError(f"--rate {text!r}: a share of the peak must be a positive %, e.g. 50%")
        return RateSpec(peak_share=share)
    absolute = _RATE.match(text)
    if absolute is None:
        raise UsageError(
            f"--rate {text!r}: not a rate; give requests per second (2000, 2.5k) or a share "
            "of the stack's closed-loop peak measured in the same run (50%)"
        )
    rps = float(absolute["value"]) * (1000 if absolute["suffix"] else 1)
    if rps <= 0:
        raise UsageError(f"--rate {text!r}: the offered rate must be a positive req/s, e.g. 2000")
    return RateSpec(rps=rps)


def resolve_rates(specs: Sequence[RateSpec], peak_rps: float | None) -> tuple[float, ...]:
    """The absolute rates for one stack, in the order given (shares of its closed-loop peak)."""
    return tuple(round(spec.resolve(peak_rps), 1) for spec in specs)
