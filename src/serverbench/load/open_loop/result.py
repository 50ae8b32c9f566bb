"""What an open-loop run measured: each client process's part and the merged result.

Counting rules (the same for every process, so parts add up exactly):
- a request belongs to the measured window when its *intended* send time falls in it;
- its latency runs from that intended time to the end of its response, so time spent waiting
  for a connection, or behind a stalled server, counts (no coordinated omission);
- every request of the window ends as exactly one of: a good response (status < 400 within
  the timeout, in the latency histogram), a status error (>= 400), a read or write error (the
  connection failed while it was in flight), or a timeout (no answer within `timeout_s` of the
  intended time, including requests that never got a connection). Connect errors count
  failed connection attempts during the window, like wrk's;
- send lag is when the generator handled an arrival minus its intended time: the generator's
  own lateness, not the server's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from serverbench.load.open_loop.histogram import Percentiles
from serverbench.load.open_loop.schedule import Arrivals
from serverbench.load.open_loop.settings import MAX_SEND_LAG_P99_US, MIN_ACHIEVED_SHARE

ErrorKind = Literal["connect", "read", "write", "timeout", "status"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorCounts:
    KINDS: ClassVar[tuple[ErrorKind, ...]] = ("connect", "read", "write", "timeout", "status")

    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0
    status: int = 0

    @property
    def total(self) -> int:
        return self.connect + self.read + self.write + self.timeout + self.status

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            connect=self.connect + other.connect,
            read=self.read + other.read,
            write=self.write + other.write,
            timeout=self.timeout + other.timeout,
            status=self.status + other.status,
        )


def loss_error_kind(*, unsent_bytes: int) -> ErrorKind:
    """A connection lost with a request in flight: a write error while the request was not
    fully handed to the kernel, a read error once it was (the answer never came whole)."""
    return "write" if unsent_bytes > 0 else "read"


def status_is_error(status: int) -> bool:
    """Like wrk: a status of 400 or more is an error; 1xx-3xx are answers."""
    return status >= 400


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseSample:
    """One response kept for verification (see serverbench's verifier)."""

    process: int
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessPart:
    """One client process's counts; the engine merges parts into an `OpenLoopResult`."""

    index: int
    pid: int
    cpu: int | None  # the CPU it was pinned to
    scheduled: int  # arrivals whose intended time is in the window
    sent: int  # of those, written to a connection
    sent_in_window_wall: int  # requests written while the window ran (the achieved rate)
    responses: int  # answered in time, any status
    good_responses: int
    errors: ErrorCounts
    latency_hdr: str
    send_lag_hdr: str
    connections_opened: int
    waited_for_connection: int  # window requests that found no idle connection
    pool_full: int  # ... and the pool at max_connections, so none could be opened
    bytes_read: int  # while the window ran
    cpu_s: float  # CPU time used during the window
    cpu_percent: float  # of one core
    samples: tuple[ResponseSample, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientProcess:
    index: int
    pid: int
    cpu: int | None
    requests_sent: int
    cpu_s: float
    cpu_percent: float  # of one core, during the window
    send_lag_us: Percentiles | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenLoopResult:
    offered_rate_per_s: float
    arrivals: Arrivals
    duration_s: float  # the measured window
    warmup_s: float
    timeout_s: float
    max_connections: int
    seed: int
    scheduled: int  # requests whose intended send time is in the window
    requests_sent: int
    responses: int  # answered in time, any status
    good_responses: int  # status < 400, in time
    errors: ErrorCounts
    latency_histogram_hdr: str  # base64 HdrHistogram(1, 60e6, 3) of good responses, us
    latency_us: Percentiles | None  # None when there was no good response
    good_rate_per_s: float  # good responses / duration
    achieved_rate_per_s: float  # requests written during the window / duration
    send_lag_histogram_hdr: str
    send_lag_us: Percentiles | None
    connections_opened: int
    waited_for_connection: int
    pool_full: int
    bytes_read: int  # while the window ran, all responses' bytes
    generator_behind: bool
    generator_behind_reason: str | None
    processes: tuple[ClientProcess, ...]
    samples: tuple[ResponseSample, ...]


# a client process this busy has no headroom left: it, not the server, sets the pace
SATURATED_CLIENT_CPU_PERCENT = 95.0
MAX_WAITED_SHARE = 0.01


def behind_reason(
    *,
    scheduled: int,
    achieved_rate_per_s: float,
    duration_s: float,
    send_lag_p99_us: float | None,
    timeouts: int,
    pool_full: int,
    client_cpu_percent: float = 0.0,
    waited_for_connection: int = 0,
) -> str | None:
    """Why the generator, not the server, limited the run; None when it kept up.

    The achieved rate is compared with the arrivals actually scheduled in the window (for
    Poisson arrivals that count varies by chance around rate x duration). Falling short counts
    against the generator while the server answered in time (no timeouts, the connection pool
    never full), or whenever a client process used its whole core (`client_cpu_percent`, the
    busiest one's share of its core): then the requests queued in the client, not the server.
    For the same reason, a saturated client whose requests waited for a connection it did
    not open (more than MAX_WAITED_SHARE of them, the pool not full) is flagged even when it
    caught up: a fast server's pool does not grow for a generator that is behind, so their
    wait is the generator's.
    """
    reasons = []
    if send_lag_p99_us is not None and send_lag_p99_us > MAX_SEND_LAG_P99_US:
        reasons.append(
            f"send lag p99 {send_lag_p99_us / 1000:.2f} ms is above "
            f"{MAX_SEND_LAG_P99_US / 1000:g} ms: requests left late"
        )
    scheduled_rate = scheduled / duration_s
    if (
        scheduled_rate > 0
        and achieved_rate_per_s < MIN_ACHIEVED_SHARE * scheduled_rate
        and timeouts == 0
        and pool_full == 0
    ):
        reasons.append(
            f"achieved {achieved_rate_per_s:,.0f} req/s of {scheduled_rate:,.0f} scheduled "
            f"(below {MIN_ACHIEVED_SHARE:.0%}) while the server answered in time"
        )
    elif (
        scheduled_rate > 0
        and achieved_rate_per_s < MIN_ACHIEVED_SHARE * scheduled_rate
        and client_cpu_percent >= SATURATED_CLIENT_CPU_PERCENT
    ):
        reasons.append(
            f"achieved {achieved_rate_per_s:,.0f} req/s of {scheduled_rate:,.0f} scheduled "
            f"(below {MIN_ACHIEVED_SHARE:.0%}) with a client process at "
            f"{client_cpu_percent:.0f} % of its core: the generator was the limit"
        )
    waited_share = waited_for_connection / scheduled if scheduled > 0 else 0.0
    if (
        not reasons
        and pool_full == 0
        and waited_share > MAX_WAITED_SHARE
        and client_cpu_percent >= SATURATED_CLIENT_CPU_PERCENT
    ):
        reasons.append(
            f"{waited_share:.0%} of the requests waited in the client for a connection while "
            f"a client process was at {client_cpu_percent:.0f} % of its core: their wait is "
            "the generator's, not the server's"
        )
    return "; ".join(reasons) if reasons else None
