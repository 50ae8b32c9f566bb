"""`serverbench compare`: the delta table between two results files, optionally a CI gate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serverbench.report.compare import compare, render_comparison
from serverbench.results.store import load, results_path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("compare", help="delta table between two results files")
    parser.add_argument("a", metavar="A", help="the baseline results.json (or its folder)")
    parser.add_argument("b", metavar="B", help="the new results.json (or its folder)")
    parser.add_argument(
        "--fail-if-slower",
        type=float,
        metavar="PCT",
        help="exit 1 when any matching entry lost more than PCT %% of its req/s",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    a, b = Path(args.a), Path(args.b)
    comparison = compare(load(a), load(b))
    print(render_comparison(comparison, str(results_path(a)), str(results_path(b))))
    if args.fail_if_slower is None:
        return 0
    slower = comparison.slower_than(args.fail_if_slower)
    for delta in slower:
        stack, app, profile = delta.key
        print(
            f"slower: {stack}/{app}/{profile} lost {-(delta.rps_change_pct or 0.0):.1f}% "
            f"req/s (limit {args.fail_if_slower:g}%)",
            file=sys.stderr,
        )
    return 1 if slower else 0
