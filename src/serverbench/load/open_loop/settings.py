"""What an open-loop measurement is asked to do: `OpenLoopSettings`, checked on creation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from serverbench.errors import UsageError
from serverbench.load.histogram import HDR_HIGHEST_US
from serverbench.load.open_loop.schedule import ARRIVALS, Arrivals

# Send lag the generator may show before its figures stop being the server's (issue 10)
MAX_SEND_LAG_P99_US = 1000.0
# Achieved / scheduled below this while the server answered in time: the generator fell behind
MIN_ACHIEVED_SHARE = 0.99


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenLoopSettings:
    """One open-loop measurement: `rate_per_s` requests per second offered to one URL.

    The schedule runs for `warmup_s` (discarded) then `duration_s` (measured); a request
    counts in the measured window when its intended send time falls in it, and gets up to
    `timeout_s` from that intended time to be answered. The whole run is killed past
    warm-up + duration + timeout + `grace_s` (process start-up fits in the grace).
    """

    rate_per_s: float
    duration_s: float
    warmup_s: float = 1.0
    timeout_s: float = 2.0
    arrivals: Arrivals = "constant"
    max_connections: int = 1000
    seed: int = 1
    grace_s: float = 10.0
    # scheduling batch: the generator wakes at most this often and sends every due request
    tick_s: float = 0.0002
    samples_first: int = 5  # responses kept per process: the first few ...
    samples_random: int = 3  # ... and a few drawn uniformly from the measured window

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s > 0):
            problems.append(f"rate {self.rate_per_s} req/s must be a positive number")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            problems.append(f"duration {self.duration_s} s must be positive")
        if not (math.isfinite(self.warmup_s) and self.warmup_s >= 0):
            problems.append(f"warm-up {self.warmup_s} s must be 0 or more")
        if not (0 < self.timeout_s <= HDR_HIGHEST_US / 1e6):
            problems.append(f"timeout {self.timeout_s} s must be in (0, {HDR_HIGHEST_US // 10**6}]")
        if self.arrivals not in ARRIVALS:
            problems.append(f"arrivals {self.arrivals!r} must be one of {', '.join(ARRIVALS)}")
        if self.max_connections < 1:
            problems.append(f"max connections {self.max_connections} must be at least 1")
        if not (0 < self.tick_s <= 0.01):
            problems.append(f"tick {self.tick_s} s must be in (0, 0.01]")
        if self.samples_first < 0 or self.samples_random < 0:
            problems.append("response sample sizes must be 0 or more")
        if self.grace_s < 0:
            problems.append(f"grace {self.grace_s} s must be 0 or more")
        if problems:
            raise UsageError(f"bad open-loop settings: {'; '.join(problems)}; fix them and retry")
