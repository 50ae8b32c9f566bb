"""How long a server takes to answer again after an overloading load, with and without the reset
of the load's leftover connections (serverbench.load.leftovers).

Rounds alternate, each on a fresh stack (gunicorn's sync workers by default, on the server
CPU): wrk with the seed's high shape (24 threads, 8,000 connections, 2 s timeout) for
`--duration` seconds on the client CPU; then either nothing ("keep", what the kernel does on
its own) or `ss -K` of wrk's connections still closing ("reset"); then one GET every 0.2 s
until the server answers rightly (at most `--max-wait` s). Prints every round (the client
sockets by state when wrk ended, the reset count, the seconds until an answer) and, per mode,
the median wait and how many rounds waited more than 5 s.

    .venv/bin/python benchmarks/leftover_connections.py [--rounds 3] [--stack gunicorn]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from serverbench.apps.registry import BUILTIN_APPS, SEED_MSISDN
from serverbench.load.leftovers import reset_closing_connections
from serverbench.run.lifecycle import running_stack, stack_context
from serverbench.run.verify import check_once
from serverbench.stacks import get_stack
from serverbench.stacks.base import TcpEndpoint

SLOW_S = 5.0


def client_states(target: TcpEndpoint) -> Counter[str]:
    argv = ["ss", "-tanH", "dst", target.host, "dport", "=", f":{target.port}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return Counter(line.split()[0] for line in out.splitlines() if line.strip())


def one_round(stack_name: str, mode: str, args: argparse.Namespace) -> float:
    app = BUILTIN_APPS["seed-flask"]
    with tempfile.TemporaryDirectory(prefix="leftovers-") as tmp:
        ctx = stack_context(app, run_dir=Path(tmp) / stack_name, server_cpu_count=1, overrides={})
        stack = get_stack(stack_name)
        with running_stack(stack, ctx, cpus=str(args.server_cpu)) as running:
            url = running.url + app.path_for(SEED_MSISDN)
            argv = ["taskset", "-c", str(args.client_cpu), "wrk", "-t24", "-c8000"]
            argv += [f"-d{args.duration:g}s", "-T2s", url]
            subprocess.run(argv, capture_output=True, check=True, timeout=args.duration + 60)
            states = client_states(running.front)
            reset = reset_closing_connections(running.front) if mode == "reset" else None
            started = time.monotonic()
            while time.monotonic() - started < args.max_wait:
                if check_once(running.front, app, SEED_MSISDN, timeout_s=1.0) is None:
                    break
                time.sleep(0.2)
            waited_s = time.monotonic() - started
    closing = {k: v for k, v in sorted(states.items()) if k != "TIME-WAIT"}
    print(
        f"{mode:>6} {waited_s:>8.1f} s   reset {'-' if reset is None else reset:>6}   "
        f"client sockets when wrk ended: {closing or 'none closing'}",
        flush=True,
    )
    return waited_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="gunicorn")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per mode, interleaved")
    parser.add_argument("--duration", type=float, default=7.0, help="wrk's seconds")
    parser.add_argument("--max-wait", type=float, default=120.0, help="seconds, per round")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args()
    waits: dict[str, list[float]] = {"keep": [], "reset": []}
    print(f"{'mode':>6} {'answered after':>10}")
    for _ in range(args.rounds):
        for mode in waits:
            waits[mode].append(one_round(args.stack, mode, args))
    for mode, seconds in waits.items():
        slow = sum(s > SLOW_S for s in seconds)
        print(
            f"{mode}: median {statistics.median(seconds):.1f} s to answer again "
            f"({min(seconds):.1f}-{max(seconds):.1f}), {slow} of {len(seconds)} rounds > {SLOW_S:g} s"
        )
    ratio = statistics.median(waits["keep"]) / max(0.001, statistics.median(waits["reset"]))
    print(f"keep / reset, median wait: {ratio:.1f}")


if __name__ == "__main__":
    main()
