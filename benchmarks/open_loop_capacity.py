"""How many requests per second can the open-loop engine schedule on one client core?

Starts the nginx-static stack (nginx answering the seed's JSON, one worker, on the server
CPU), then steps the offered rate up with one client process on the client CPU and prints,
per rate: the achieved rate, send-lag p50/p99, the client process's CPU (and CPU time per
request), whether the engine flagged itself as behind, and at the end the first rate at which
it fell behind (`--repeats N`: every rate N times, interleaved, and how many rounds kept
up). The goal (`GOAL_RPS`): at least 50,000 req/s with send-lag p99 below 1 ms.

Side by side, wrk (closed loop, `-t1 -c32`) on the same nginx and CPU gives the reference
cost of a request on this machine (mostly the kernel's loopback TCP): the ratio of the
engine's CPU time per request to wrk's says how much of the cost is the engine's own, and the
goal's share of wrk's rate how near the goal is to what one core of this machine does at all.

At each rate, right after the engine, benchmarks/minimal_open_loop.py (a bare uvloop +
httptools client: the least any Python generator with a real parser pays here) is offered the
same rate on the same nginx and CPU: where it too falls behind, the machine is the limit, not
the engine's design; the last column is the engine's achieved rate over the reference's.

    .venv/bin/python benchmarks/open_loop_capacity.py [--rates 10000,20000,...] [--duration 3]
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from serverbench.apps.registry import BUILTIN_APPS
from serverbench.load.open_loop import OpenLoopSettings, run_open_loop
from serverbench.run.lifecycle import running_stack, stack_context
from serverbench.stacks import get_stack

DEFAULT_RATES = "5000,10000,20000,30000,40000,50000,60000,70000,80000"
GOAL_RPS = 50_000  # issue 10: scheduled on one client core with send-lag p99 below 1 ms
SEED_PATH = "/api/v2/1"  # nginx-static answers {"msisdn":"1","status":"ok"} to it


@contextlib.contextmanager
def nginx_static(cpu: int) -> Iterator[str]:
    """The nginx-static stack as `serverbench run` starts it, one worker on `cpu` (keep-alive
    for a million requests per connection, so the engine's connections are never closed)."""
    with tempfile.TemporaryDirectory(prefix="open-loop-capacity-") as tmp:
        ctx = stack_context(
            BUILTIN_APPS["seed-flask"],
            run_dir=Path(tmp) / "nginx-static",
            server_cpu_count=1,
            overrides={},
        )
        with running_stack(get_stack("nginx-static"), ctx, cpus=str(cpu)) as stack:
            yield stack.url + SEED_PATH


def wrk_reference(url: str, cpu: int, duration_s: float) -> tuple[float, float]:
    """wrk's (requests/s, CPU us per request) against `url` on `cpu`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", "-c32", f"-d{duration_s:g}s", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"(\d+) requests in ([\d.]+)s", out)
    if match is None:
        raise SystemExit(f"wrk printed no request count:\n{out}")
    requests, seconds = int(match[1]), float(match[2])
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return requests / seconds, cpu_s / requests * 1e6


MINIMAL = Path(__file__).with_name("minimal_open_loop.py")


def minimal_reference(url: str, cpu: int, rate: float, duration_s: float) -> dict[str, float]:
    """What the bare client (benchmarks/minimal_open_loop.py) achieves at `rate` on `cpu`."""
    parts = urlsplit(url)
    argv = [sys.executable, str(MINIMAL), parts.hostname or "127.0.0.1", str(parts.port)]
    argv += [f"{rate:g}", f"{duration_s:g}", str(cpu)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default=DEFAULT_RATES, help="comma-separated req/s")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--arrivals", choices=["constant", "poisson"], default="constant")
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds over all rates (this VM is noisy: use 3)"
    )
    args = parser.parse_args()

    rates = [float(r) for r in args.rates.split(",")] * args.repeats
    print(
        f"{'offered/s':>10} {'achieved/s':>11} {'good/s':>9} {'lag p50 us':>10} "
        f"{'lag p99 us':>10} {'lat p50 us':>10} {'lat p99 us':>10} {'conns':>6} "
        f"{'client CPU':>10} {'CPU us/req':>10} {'ref sent/s':>10} {'ref lag p99':>11} "
        f"{'engine/ref':>10}  behind"
    )
    # per rate: how many rounds the engine / the reference kept up
    engine_held: dict[float, int] = {}
    reference_held: dict[float, int] = {}
    with nginx_static(args.server_cpu) as url:
        wrk_rate, wrk_us = (0.0, 0.0)
        if shutil.which("wrk") is not None:
            wrk_rate, wrk_us = wrk_reference(url, args.client_cpu, args.duration)
        for rate in rates:
            settings = OpenLoopSettings(
                rate_per_s=rate,
                duration_s=args.duration,
                warmup_s=args.warmup,
                arrivals=args.arrivals,
            )
            r = run_open_loop(settings, url, client_cpus=[args.client_cpu])
            ref = minimal_reference(url, args.client_cpu, rate, args.duration)
            lag = r.send_lag_us
            lat = r.latency_us
            print(
                f"{rate:>10,.0f} {r.achieved_rate_per_s:>11,.0f} {r.good_rate_per_s:>9,.0f} "
                f"{lag.p50_us if lag else 0:>10,.0f} {lag.p99_us if lag else 0:>10,.0f} "
                f"{lat.p50_us if lat else 0:>10,.0f} {lat.p99_us if lat else 0:>10,.0f} "
                f"{r.connections_opened:>6} {r.processes[0].cpu_percent:>9.0f}% "
                f"{r.processes[0].cpu_s / max(1, r.requests_sent) * 1e6:>10.1f} "
                f"{ref['sent_per_s']:>10,.0f} {ref['send_lag_p99_us']:>11,.0f} "
                f"{r.achieved_rate_per_s / max(1.0, ref['answered_per_s']):>10.2f}  "
                f"{r.generator_behind_reason or 'no'}",
                flush=True,
            )
            engine_held[rate] = engine_held.get(rate, 0) + (not r.generator_behind)
            ref_late = ref["send_lag_p99_us"] > 1000 or ref["answered_per_s"] < 0.99 * rate
            reference_held[rate] = reference_held.get(rate, 0) + (not ref_late)
    if wrk_rate:
        print(
            f"wrk -t1 -c32 on the same nginx and CPU: {wrk_rate:,.0f} req/s at "
            f"{wrk_us:.1f} CPU us per request (the machine's reference cost); the goal of "
            f"{GOAL_RPS:,} req/s is {GOAL_RPS / wrk_rate:.0%} of what wrk does on this core"
        )
    for who, held in (("the engine", engine_held), ("the minimal reference", reference_held)):
        counts = ", ".join(f"{rate:,.0f}: {n}/{args.repeats}" for rate, n in held.items())
        behind = [rate for rate, n in held.items() if n < args.repeats]
        where = f"first fell behind at {min(behind):,.0f} req/s" if behind else "always kept up"
        print(f"{who} kept up (rounds per rate) {counts}; {where}")


if __name__ == "__main__":
    main()
