"""wrk behind the load-engine seam: a closed loop of fixed connections.

Turns a `LoadRequest` into wrk's settings, runs wrk through `wrk_process`, and splits what it
measured into the engine-neutral `Measurement` and the `WrkDetails` only wrk has.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from serverbench.errors import LoadGeneratorError
from serverbench.load.engine import EngineRun, LoadRequest, OnStart
from serverbench.load.mix import RequestMix, lua
from serverbench.load.wrk import WrkMeasurement, WrkSettings, build_argv
from serverbench.load.wrk_process import run_wrk, script_path
from serverbench.results.model import ErrorCounts, Measurement, measurement_of


def wrk_settings(request: LoadRequest) -> WrkSettings:
    return WrkSettings(
        threads=request.threads,
        connections=request.connections,
        duration_s=request.duration_s,
        timeout_s=request.timeout_s,
        extra_lua=lua(RequestMix(weights=request.mix)) if request.mix else "",
    )


def measurement_from_wrk(wrk: WrkMeasurement, connections: int) -> Measurement:
    return measurement_of(
        engine="wrk",
        loop="closed",
        duration_s=wrk.duration_s,
        connections=connections,
        requests=wrk.requests,
        errors=ErrorCounts(
            connect=wrk.socket_errors.connect,
            read=wrk.socket_errors.read,
            write=wrk.socket_errors.write,
            timeout=wrk.socket_errors.timeout,
            status=wrk.non_2xx_3xx,
        ),
        bytes_read=wrk.bytes_read,
        latency_percentiles_us=dict(wrk.latency_percentiles_us),
        latency_mean_us=wrk.latency_us.mean,
        latency_max_us=wrk.latency_us.max,
        latency_histogram_hdr=wrk.histogram_hdr,
        latency_histogram_exact=wrk.histogram_exact,
    )


class WrkEngine:
    name = "wrk"
    loop: Literal["closed"] = "closed"

    def check_available(self) -> None:
        if shutil.which("wrk") is None:
            raise LoadGeneratorError(
                "wrk is not on PATH; install it: apt-get install wrk (or run scripts/setup)"
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
        if request.rate_per_s is not None:
            raise LoadGeneratorError(
                "wrk sends as fast as its connections allow and cannot hold an offered rate; "
                "use the open-loop engine for a fixed rate"
            )
        settings = wrk_settings(request)
        wrk = run_wrk(
            settings,
            request.url,
            out_dir=out_dir,
            label=label,
            cpus=cpus,
            on_start=None if on_start is None else lambda pid: on_start([pid]),
        )
        return EngineRun(
            measurement=measurement_from_wrk(wrk, request.connections),
            argv=build_argv(
                settings, request.url, str(script_path(settings, out_dir, label)), cpus
            ),
            wrk=wrk.details,
        )
