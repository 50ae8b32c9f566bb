"""What the reset of a load's leftover connections (serverbench.load.leftovers) changes, side by
side: the measured window after a warm-up, and the time until the server answers again.

Rounds alternate the two modes (ABBA), each on a fresh stack (gunicorn's sync workers by
default, on the server CPU), with the seed's high shape (24 threads, 8,000 connections, 2 s
timeout) from wrk on the client CPU, as `serverbench run --profile quick-high` does: a 2 s
warm-up, then a 5 s measured window, then one GET every 0.2 s until the server answers rightly
(at most `--max-wait` s). "keep" leaves the connections wrk leaves closing to the kernel, as
before serverbench reset them; "reset" resets them (`ss -K`) after each wrk run. Prints every
round (good responses per second of the window, its timeouts, the connections reset after the
warm-up, the seconds until an answer after the window) and, per mode, the medians and ranges,
then the ratios reset / keep.

    .venv/bin/python benchmarks/leftover_connections.py [--rounds 4] [--stack gunicorn]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from serverbench.apps.registry import BUILTIN_APPS, SEED_MSISDN
from serverbench.load.engine import LoadRequest
from serverbench.load.leftovers import reset_closing_connections
from serverbench.load.wrk_engine import WrkEngine
from serverbench.run.lifecycle import running_stack, stack_context
from serverbench.run.verify import check_once
from serverbench.stacks import get_stack

MODES = ("keep", "reset")


def one_round(mode: str, args: argparse.Namespace) -> tuple[float, float]:
    """(good responses per second of the measured window, seconds until an answer after)."""
    app = BUILTIN_APPS["seed-flask"]
    engine = WrkEngine()
    client = str(args.client_cpu)
    with tempfile.TemporaryDirectory(prefix="leftovers-") as tmp:
        folder = Path(tmp)
        ctx = stack_context(app, run_dir=folder / args.stack, server_cpu_count=1, overrides={})
        with running_stack(get_stack(args.stack), ctx, cpus=str(args.server_cpu)) as running:

            def window(label: str, duration_s: float) -> tuple[float, int, int | None]:
                shape = LoadRequest(
                    url=running.url + app.load_path,
                    threads=24,
                    connections=8000,
                    duration_s=duration_s,
                    timeout_s=2.0,
                )
                measured = engine.run(shape, out_dir=folder, label=label, cpus=client).measurement
                reset = reset_closing_connections(running.front) if mode == "reset" else None
                return measured.requests_per_sec, measured.errors.timeout, reset

            _, _, reset = window("warmup", 2.0)
            good_rps, timeouts, _ = window("measure", 5.0)
            started = time.monotonic()
            while time.monotonic() - started < args.max_wait:
                if check_once(running.front, app, SEED_MSISDN, timeout_s=1.0) is None:
                    break
                time.sleep(0.2)
            waited_s = time.monotonic() - started
    print(
        f"{mode:>6} {good_rps:>8,.0f} {timeouts:>9,} {'-' if reset is None else reset:>7} "
        f"{waited_s:>10.1f}",
        flush=True,
    )
    return good_rps, waited_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="gunicorn")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per mode, interleaved")
    parser.add_argument("--max-wait", type=float, default=90.0, help="seconds, per round")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args()
    good: dict[str, list[float]] = {mode: [] for mode in MODES}
    waits: dict[str, list[float]] = {mode: [] for mode in MODES}
    print(f"{'mode':>6} {'good/s':>8} {'timeouts':>9} {'reset':>7} {'answer (s)':>10}")
    for number in range(args.rounds):
        for mode in MODES if number % 2 == 0 else MODES[::-1]:
            good_rps, waited_s = one_round(mode, args)
            good[mode].append(good_rps)
            waits[mode].append(waited_s)
    for mode in MODES:
        print(
            f"{mode}: window {statistics.median(good[mode]):,.0f} good/s "
            f"({min(good[mode]):,.0f}-{max(good[mode]):,.0f}), answered again after "
            f"{statistics.median(waits[mode]):.1f} s ({min(waits[mode]):.1f}-"
            f"{max(waits[mode]):.1f})"
        )
    keep_good, reset_good = (statistics.median(good[mode]) for mode in MODES)
    keep_wait, reset_wait = (statistics.median(waits[mode]) for mode in MODES)
    print(f"reset / keep, median good/s of the window: {reset_good / max(1.0, keep_good):.2f}")
    print(f"keep / reset, median wait for an answer: {keep_wait / max(0.001, reset_wait):.1f}")


if __name__ == "__main__":
    main()
