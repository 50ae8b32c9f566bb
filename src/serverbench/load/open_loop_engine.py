"""The open-loop engine behind the load-engine seam: a fixed offered rate.

Turns a `LoadRequest` with a `rate_per_s` into `OpenLoopSettings` (the connections bound the
pool, threads bound the client processes, one per client CPU), runs
`serverbench.load.open_loop.run_open_loop`, and gives the engine-neutral `Measurement`:
latencies from each request's intended send time, good responses per second of the measured
window, and `generator_behind` set when the engine could not keep its own pace. The whole
`OpenLoopResult` is written as `<label>.open-loop.json` in the run's log folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import msgspec

from serverbench.errors import LoadGeneratorError
from serverbench.load.engine import EngineRun, KeptResponse, LoadRequest, OnStart
from serverbench.load.histogram import decode, percentiles_from_hdr
from serverbench.load.open_loop import OpenLoopResult, OpenLoopSettings, run_open_loop
from serverbench.observe.host_limits import parse_cpu_list
from serverbench.results.model import ErrorCounts, Measurement

# the engine's own warm-up inside each window: its client processes open their connections
# before the measured window starts (the runner's warm-up window comes on top)
CONNECT_WARMUP_S = 0.5
PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9, 99.99)


def open_loop_settings(request: LoadRequest, *, seed: int) -> OpenLoopSettings:
    if request.rate_per_s is None:
        raise LoadGeneratorError(
            "the open-loop engine sends at an offered rate and was given none; give one with --rate"
        )
    return OpenLoopSettings(
        rate_per_s=request.rate_per_s,
        duration_s=request.duration_s,
        warmup_s=CONNECT_WARMUP_S,
        timeout_s=request.timeout_s,
        max_connections=request.connections,
        arrivals=request.arrivals,
        seed=seed,
    )


def settings_argv(settings: OpenLoopSettings, url: str, cpus: str | None) -> tuple[str, ...]:
    """The settings in command-line form, for the record (there is no separate program)."""
    return (
        "serverbench-open-loop",
        f"--rate={settings.rate_per_s:g}",
        f"--arrivals={settings.arrivals}",
        f"--max-connections={settings.max_connections}",
        f"--warmup={settings.warmup_s:g}s",
        f"--duration={settings.duration_s:g}s",
        f"--timeout={settings.timeout_s:g}s",
        f"--seed={settings.seed}",
        *([f"--cpus={cpus}"] if cpus else []),
        url,
    )


def measurement_from_open_loop(result: OpenLoopResult) -> Measurement:
    duration_s = result.duration_s
    blob = result.latency_histogram_hdr
    hist = decode(blob)
    return Measurement(
        engine="open",
        loop="open",
        duration_s=duration_s,
        connections=result.max_connections,
        requests=result.responses,
        good_responses=result.good_responses,
        errors=ErrorCounts(
            connect=result.errors.connect,
            read=result.errors.read,
            write=result.errors.write,
            timeout=result.errors.timeout,
            status=result.errors.status,
        ),
        bytes_read=result.bytes_read,
        requests_per_sec=result.good_rate_per_s,
        raw_requests_per_sec=result.responses / duration_s,
        transfer_bytes_per_sec=result.bytes_read / duration_s,
        latency_percentiles_us=percentiles_from_hdr(blob, PERCENTILES),
        latency_mean_us=float(hist.get_mean_value()) if hist.get_total_count() else None,
        latency_max_us=result.latency_us.max_us if result.latency_us else None,
        latency_histogram_hdr=blob,
        latency_histogram_exact=True,
        offered_rate_per_s=result.offered_rate_per_s,
        generator_behind=result.generator_behind_reason,
    )


class OpenLoopEngine:
    name = "open"
    loop: Literal["open"] = "open"

    def __init__(self, *, seed: int = 1) -> None:
        self.seed = seed

    def check_available(self) -> None:
        for module in ("uvloop", "httptools"):
            if importlib.util.find_spec(module) is None:
                raise LoadGeneratorError(
                    f"the open-loop engine needs the Python package {module}; "
                    f"install it: .venv/bin/pip install {module} (or run scripts/setup)"
                )

    def run(
        self,
        request: LoadRequest,
        *,
        out_dir: Path,
        label: str,
        cpus: str | None,
        on_start: OnStart | None = None,
    ) -> EngineRun:
        settings = open_loop_settings(request, seed=self.seed)
        client_cpus = parse_cpu_list(cpus) if cpus else ()
        # one client process per CPU, at most `threads` of them
        client_cpus = client_cpus[: max(1, request.threads)]
        result = run_open_loop(
            settings,
            request.url,
            client_cpus=client_cpus,
            on_start=None if on_start is None else lambda pids: on_start(pids),
        )
        # everything the engine measured about itself (send lag, achieved rate, per-process
        # CPU, the responses it kept) is kept beside the run's logs
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{label}.open-loop.json").write_bytes(
            msgspec.json.format(msgspec.json.encode(result))
        )
        return EngineRun(
            measurement=measurement_from_open_loop(result),
            argv=settings_argv(settings, request.url, cpus),
            kept=tuple(
                KeptResponse(status=s.status, content_type=s.content_type, body=s.body)
                for s in result.samples
            ),
        )
