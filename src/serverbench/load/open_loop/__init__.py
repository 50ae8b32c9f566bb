"""The open-loop load engine: requests at a fixed offered rate, whatever the server does.

Public API (kept small and stable; everything else in this package is internal):

    run_open_loop(settings, url, *, client_cpus, on_start=None) -> OpenLoopResult
    OpenLoopSettings(rate_per_s=..., duration_s=..., warmup_s=1.0, timeout_s=2.0,
                     arrivals="constant" | "poisson", max_connections=1000, seed=1, ...)
    OpenLoopResult, ErrorCounts, ClientProcess, ResponseSample, Percentiles

Unlike wrk (closed loop: each connection waits for its answer before it sends again, so a
slow server slows the load and its latency becomes the connections' queue), requests here are
scheduled at a fixed rate (constant or Poisson arrivals) independent of the answers, and each
latency runs from the request's intended send time: a stalled server shows as the stall.
Requests go over a bounded pool of keep-alive HTTP/1.1 connections that grows on demand and
reconnects when the server closes; a request that finds no free connection waits in the
client, and that wait counts. One client process per client CPU (rate split, histograms
merged exactly). The engine measures itself (send lag, achieved rate, CPU) and flags a run
in which it could not keep up (`generator_behind`, with `generator_behind_reason`).
"""

from serverbench.load.open_loop.engine import run_open_loop
from serverbench.load.open_loop.histogram import Percentiles
from serverbench.load.open_loop.result import (
    ClientProcess,
    ErrorCounts,
    OpenLoopResult,
    ResponseSample,
)
from serverbench.load.open_loop.settings import OpenLoopSettings

__all__ = [
    "ClientProcess",
    "ErrorCounts",
    "OpenLoopResult",
    "OpenLoopSettings",
    "Percentiles",
    "ResponseSample",
    "run_open_loop",
]
