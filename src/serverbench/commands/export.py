"""`serverbench export`: a results file as CSV or JSON lines for pandas or a spreadsheet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serverbench.report.export import FORMATS, LEVELS, export
from serverbench.results.store import load


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "export", help="results as CSV or JSON lines: one row per stack x app x profile (or run)"
    )
    parser.add_argument(
        "results", metavar="RESULTS", nargs="+", help="results.json files or their folders"
    )
    parser.add_argument("--format", choices=FORMATS, default="csv", help="default: csv")
    parser.add_argument(
        "--per",
        choices=LEVELS,
        default="cell",
        help="cell: one row per stack x app x profile over its repeats (default); run: one "
        "row per measured run",
    )
    parser.add_argument("--out", metavar="FILE", help="write to FILE (default: standard output)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    parts = [export(load(Path(path)), args.format, args.per) for path in args.results]
    if args.format == "csv":
        # one header for all files: their columns are the same
        parts = parts[:1] + [part.partition("\n")[2] for part in parts[1:]]
    text = "".join(parts)
    if args.out:
        Path(args.out).write_text(text)
        print(f"export: {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
