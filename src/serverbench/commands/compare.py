"""`serverbench compare`: the delta table between two results files, optionally a CI gate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serverbench.errors import UsageError
from serverbench.report.compare import change_with_interval, compare, render_comparison
from serverbench.results.inference import SEPARATE_RUNS_DRIFT_PCT
from serverbench.results.store import load, results_path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("compare", help="delta table between two results files")
    parser.add_argument("a", metavar="A", help="the baseline results.json (or its folder)")
    parser.add_argument("b", metavar="B", help="the new results.json (or its folder)")
    parser.add_argument(
        "--fail-if-slower",
        type=float,
        metavar="PCT",
        help="exit 1 when a matching entry is significantly slower and its whole confidence "
        "interval lies beyond a loss of PCT %% of its req/s, or when nothing could be compared",
    )
    parser.add_argument(
        "--run-drift",
        type=float,
        default=SEPARATE_RUNS_DRIFT_PCT,
        metavar="PCT",
        help="how much a run's level drifts between separate runs on this machine (standard "
        f"deviation, default {SEPARATE_RUNS_DRIFT_PCT:g}); benchmarks/precision.py measures it",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    a, b = Path(args.a), Path(args.b)
    if args.run_drift < 0:
        raise UsageError(f"--run-drift {args.run_drift:g}: cannot be negative; e.g. --run-drift 5")
    comparison = compare(load(a), load(b), drift_pct=args.run_drift)
    print(render_comparison(comparison, str(results_path(a)), str(results_path(b))))
    if args.fail_if_slower is None:
        return 0
    if not any(delta.rps_change_pct is not None for delta in comparison.deltas):
        # a CI gate that compared nothing must not pass
        print(
            "error: nothing was compared: no stack/app/profile has a throughput in both files; "
            "compare runs of the same stacks, apps and profiles",
            file=sys.stderr,
        )
        return 1
    slower = comparison.slower_than(args.fail_if_slower)
    for delta in slower:
        stack, app, profile = delta.key
        print(
            f"slower: {stack}/{app}/{profile}: req/s {change_with_interval(delta)}, "
            f"beyond the {args.fail_if_slower:g}% limit",
            file=sys.stderr,
        )
    return 1 if slower else 0
