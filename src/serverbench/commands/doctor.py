"""`serverbench doctor`: check this machine before benchmarking, each finding with its fix."""

from __future__ import annotations

import argparse

from serverbench.errors import UsageError
from serverbench.observe.doctor import diagnose, read_host_facts, render

# The heaviest load of the default run (quick-high): what the limits must hold by default.
DEFAULT_CONNECTIONS = 8000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "doctor", help="check the machine before benchmarking; each finding with its fix"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=DEFAULT_CONNECTIONS,
        metavar="N",
        help=f"the most connections you will load with (default {DEFAULT_CONNECTIONS})",
    )
    parser.add_argument(
        "--sample",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds to watch CPU steal and busy processes (default 1)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.connections < 1 or args.sample <= 0:
        raise UsageError("--connections and --sample must be positive; e.g. --connections 8000")
    findings = diagnose(read_host_facts(args.sample), args.connections)
    print(render(findings))
    failed = [f.check for f in findings if f.status == "fail"]
    if failed:
        print(f"\nnot ready: {', '.join(failed)}")
        return 1
    warned = sum(f.status == "warn" for f in findings)
    print(f"\nready{f', with {warned} warning(s) above' if warned else ''}")
    return 0
