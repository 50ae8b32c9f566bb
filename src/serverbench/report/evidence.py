"""Sanity rules that fire only on evidence: each reads the measurement that can show its cause.

- Nagle meeting delayed ACKs adds ~40 ms to one request; it shows in the primer (a few
  connections, one request each in flight), never in a p50 under 1,000 connections, which is
  the queue.
- Little's law (in flight = throughput x mean latency) must hold for a closed loop; it is
  checked from the requests wrk counted over the window and the mean of real samples only:
  wrk's coordinated-omission correction adds synthetic samples that raise the mean, timeouts
  leave requests out of the histogram, and a server that closes every connection makes wrk
  reconnect in time the latency does not cover. Where any of those explains a gap, the rule
  stays silent rather than blaming the server.
- Identical messages from several repeats are said once, with how many repeats said it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LATENCY_FLOOR_US = (35_000.0, 50_000.0)
LITTLE_TOLERANCE = 0.30
# Above this share of requests, timeouts and socket errors can explain a Little's law gap.
UNEXPLAINED_ERROR_SHARE = 0.01


def nagle_signature(latency_p50_us: float | None, connections: int) -> str | None:
    """The finding when the primer's p50 sits near 40 ms; None otherwise or without one."""
    if latency_p50_us is None or not LATENCY_FLOOR_US[0] <= latency_p50_us <= LATENCY_FLOOR_US[1]:
        return None
    return (
        f"with {connections} connections (the primer) the p50 was "
        f"{latency_p50_us / 1000:.1f} ms, near 40 ms: the signature of Nagle's algorithm meeting "
        "delayed ACKs (a response written in two segments without TCP_NODELAY)"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class LittleGap:
    in_flight: float  # requests/s x mean latency
    connections: int
    requests_per_sec: float
    mean_latency_us: float

    @property
    def ratio(self) -> float:
        return self.in_flight / self.connections


def littles_law_gap(
    *,
    requests: int,
    duration_s: float,
    mean_latency_us: float | None,
    latency_samples: int,
    connections: int,
    errors: int,
    closed_loop: bool,
    reconnects: bool,
) -> LittleGap | None:
    """A gap beyond the tolerance that nothing measured explains; None when the law holds or
    cannot be judged from this evidence."""
    if (
        not closed_loop
        or reconnects
        or mean_latency_us is None
        or requests <= 0
        or duration_s <= 0
        or connections <= 0
        or latency_samples > requests  # synthetic samples in the mean
        or errors > UNEXPLAINED_ERROR_SHARE * requests
    ):
        return None
    rate = requests / duration_s
    gap = LittleGap(
        in_flight=rate * mean_latency_us / 1e6,
        connections=connections,
        requests_per_sec=rate,
        mean_latency_us=mean_latency_us,
    )
    return gap if abs(gap.ratio - 1) > LITTLE_TOLERANCE else None


def grouped(messages: Sequence[str], repeats: int) -> list[str]:
    """Each distinct message once, with how many of the repeats gave it when more than one."""
    counts: dict[str, int] = {}
    for message in messages:
        counts[message] = counts.get(message, 0) + 1
    return [
        f"{count} of {repeats} repeats: {message}" if repeats > 1 else message
        for message, count in counts.items()
    ]
