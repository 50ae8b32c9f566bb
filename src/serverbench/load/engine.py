"""The load-engine seam: what the runner asks of any load generator, and what it gets back.

An engine is given a `LoadRequest` (where, how many connections, how long, at what offered rate
for an open loop) and returns an `EngineRun`: the engine-neutral `Measurement` that reports and
comparisons read, the engine's own details, and the command line it ran. wrk is the first engine
(closed loop); any other is one more class with the same three members, registered in ENGINES.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from serverbench.load.open_loop.schedule import Arrivals
from serverbench.load.wrk import WrkDetails
from serverbench.results.model import Loop, Measurement


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadRequest:
    """One measured window: the same shape whichever engine sends it."""

    url: str
    connections: int  # closed loop: connections held open; open loop: the pool's bound
    threads: int  # closed loop: wrk threads; open loop: client processes at most
    duration_s: float
    timeout_s: float
    rate_per_s: float | None = None  # open loop: the offered rate; None for a closed loop
    arrivals: Arrivals = "constant"  # open loop: evenly spaced or Poisson arrivals
    # several paths of the url's server with weights (load.mix), instead of the url's path
    mix: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class KeptResponse:
    """A response an engine kept from the load, for the verifier's checks."""

    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRun:
    measurement: Measurement
    argv: tuple[str, ...]  # the command line that ran, or the engine's settings in that form
    wrk: WrkDetails | None = None
    kept: tuple[KeptResponse, ...] = ()  # a sample of the load's answers, if the engine keeps any


# The load generator's processes are announced as soon as they run, so the resource sampler
# covers exactly the measured window.
OnStart = Callable[[Sequence[int]], None]


class LoadEngine(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def loop(self) -> Loop: ...

    def check_available(self) -> None:
        """Raise LoadGeneratorError saying how to install what is missing."""
        ...

    def run(
        self,
        request: LoadRequest,
        *,
        out_dir: Path,
        label: str,
        cpus: str | None,
        on_start: OnStart | None = None,
    ) -> EngineRun:
        """Send the load and measure it; bounded in time, leaving no process behind."""
        ...
