"""`serverbench compare`: the delta table between two results files, optionally a CI gate.

`--format md` writes the Markdown summary for a CI job summary or a pull-request comment,
`--format json` the same figures for a program; all three render one `Comparison`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serverbench.errors import UsageError
from serverbench.report.capacity_compare import compare_capacity, render_capacity_comparison
from serverbench.report.compare import change_with_interval, compare, render_comparison
from serverbench.report.compare_formats import comparison_json, comparison_markdown
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
        "interval lies beyond a loss of PCT %% of its req/s, or a stack lost more than PCT %% "
        "of its capacity, or when nothing could be compared",
    )
    parser.add_argument(
        "--run-drift",
        type=float,
        default=SEPARATE_RUNS_DRIFT_PCT,
        metavar="PCT",
        help="how much a run's level drifts between separate runs on this machine (standard "
        f"deviation, default {SEPARATE_RUNS_DRIFT_PCT:g}); benchmarks/precision.py measures it",
    )
    parser.add_argument(
        "--format",
        choices=("text", "md", "json"),
        default="text",
        help="text (default): the console table; md: a Markdown summary for a CI job summary "
        "or a pull-request comment; json: the figures and the verdict",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument("--out", metavar="FILE", help="write to FILE (default: standard output)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    a, b = Path(args.a), Path(args.b)
    if args.run_drift < 0:
        raise UsageError(f"--run-drift {args.run_drift:g}: cannot be negative; e.g. --run-drift 5")
    before, after = load(a), load(b)
    comparison = compare(before, after, drift_pct=args.run_drift)
    capacities = compare_capacity(
        before.capacity.searches if before.capacity else [],
        after.capacity.searches if after.capacity else [],
        drift_pct=args.run_drift,
    )
    names = (str(results_path(a)), str(results_path(b)))
    fmt = "json" if args.json else args.format
    if fmt == "md":
        text = comparison_markdown(comparison, *names, args.fail_if_slower)
    elif fmt == "json":
        text = comparison_json(comparison, *names, args.fail_if_slower)
    else:
        text = render_comparison(comparison, *names) + "\n"
    if fmt != "json" and (capacities.deltas or capacities.only_in_a or capacities.only_in_b):
        capacity_text = render_capacity_comparison(capacities)
        text += f"\n```\n{capacity_text}\n```\n" if fmt == "md" else f"\n{capacity_text}\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    if args.fail_if_slower is None:
        return 0
    if not any(delta.rps_change_pct is not None for delta in comparison.deltas) and not (
        capacities.deltas
    ):
        # a CI gate that compared nothing must not pass
        print(
            "error: nothing was compared: no stack/app/profile has a throughput in both files; "
            "compare runs of the same stacks, apps and profiles",
            file=sys.stderr,
        )
        return 1
    lower = capacities.lower_than(args.fail_if_slower)
    for item in lower:
        print(
            f"slower: {item.a.stack}/{item.a.app} capacity {item.change_pct:+.1f}% "
            f"(limit {args.fail_if_slower:g}%)",
            file=sys.stderr,
        )
    slower = comparison.slower_than(args.fail_if_slower)
    for delta in slower:
        stack, app, profile = delta.key
        print(
            f"slower: {stack}/{app}/{profile}: req/s {change_with_interval(delta)}, "
            f"beyond the {args.fail_if_slower:g}% limit",
            file=sys.stderr,
        )
    return 1 if slower or lower else 0
