"""How much does serverbench itself cost a measurement? serverbench-driven wrk vs raw wrk.

Against the nginx-static ceiling (the fastest thing serverbench measures, so where its overhead
would show most), alternate raw `wrk` runs and serverbench-driven runs (our Lua done() script,
the psutil sampler over the stack and wrk) with the same settings, and print the throughput
ratio serverbench/raw of the medians. The goal is at least 0.98.

    .venv/bin/python benchmarks/harness_overhead.py [--rounds 15] [--duration 4] [--connections 100]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from serverbench.apps.registry import BUILTIN_APPS
from serverbench.load.wrk import WrkSettings
from serverbench.load.wrk_process import run_wrk
from serverbench.observe.host_limits import plan_cpu_split, raise_nofile_limit
from serverbench.observe.sampler import Monitor
from serverbench.run.lifecycle import running_stack, stack_context
from serverbench.run.runner import harness_on
from serverbench.stacks import get_stack


def raw_wrk(settings: WrkSettings, url: str, cpus: str) -> float:
    argv = ["taskset", "-c", cpus, "wrk", "-t", str(settings.threads), "-c"]
    argv += [str(settings.connections), "-d", f"{settings.wrk_duration_s}s", url]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise SystemExit(f"raw wrk printed no Requests/sec:\n{output}")
    return float(match.group(1))


def driven_wrk(
    settings: WrkSettings, url: str, cpus: str, out: Path, label: str, pids: dict[str, int]
) -> float:
    monitors: list[Monitor] = []

    def watch(wrk_pid: int) -> None:
        monitor = Monitor({**pids, "wrk": wrk_pid})
        monitor.start()
        monitors.append(monitor)

    try:
        measurement = run_wrk(settings, url, out_dir=out, label=label, cpus=cpus, on_start=watch)
    finally:
        for monitor in monitors:
            monitor.stop()
    return measurement.raw_requests_per_sec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--duration", type=float, default=4)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    raise_nofile_limit()
    split = plan_cpu_split(sorted(os.sched_getaffinity(0)), None, None)
    settings = WrkSettings(
        threads=args.threads, connections=args.connections, duration_s=args.duration
    )
    app = BUILTIN_APPS["seed-flask"]
    raw: list[float] = []
    driven: list[float] = []
    with tempfile.TemporaryDirectory(prefix="serverbench-overhead-") as scratch:
        ctx = stack_context(
            app,
            run_dir=Path(scratch) / "nginx-static",
            server_cpu_count=len(split.server_cpus),
            overrides={},
        )
        with (
            running_stack(get_stack("nginx-static"), ctx, cpus=split.server_taskset()) as stack,
            harness_on(split.client_cpus),  # as `serverbench run` does
        ):
            url = stack.url + app.load_path
            for round_number in range(1, args.rounds + 1):
                # alternate which goes first, so drift over time hits both alike
                order = ("raw", "driven") if round_number % 2 else ("driven", "raw")
                for kind in order:
                    if kind == "raw":
                        raw.append(raw_wrk(settings, url, split.client_taskset()))
                    else:
                        driven.append(
                            driven_wrk(
                                settings,
                                url,
                                split.client_taskset(),
                                Path(scratch),
                                f"round{round_number}",
                                stack.component_pids(),
                            )
                        )
                print(
                    f"round {round_number}: raw {raw[-1]:,.0f} req/s, serverbench {driven[-1]:,.0f} req/s",
                    flush=True,
                )
    ratio = statistics.median(driven) / statistics.median(raw)
    print(
        f"median raw {statistics.median(raw):,.0f} req/s, serverbench {statistics.median(driven):,.0f} req/s"
    )
    print(f"ratio serverbench/raw: {ratio:.3f} (goal >= 0.98)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
