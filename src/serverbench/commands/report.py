"""`serverbench report`: report.md / report.html rendered again from a results file."""

from __future__ import annotations

import argparse
from pathlib import Path

from serverbench.report import FORMATS, write_report
from serverbench.results.store import load, results_path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "report", help="write report.md / report.html from a results.json (measures nothing)"
    )
    parser.add_argument("results", metavar="RESULTS", help="results.json or the folder holding it")
    parser.add_argument(
        "--format", choices=("md", "html", "all"), default="all", help="default: all"
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="folder to write into (default: the results folder); with one --format, "
        "a file name such as report.md also works",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    document = load(Path(args.results))
    formats = tuple(FORMATS) if args.format == "all" else (args.format,)
    out = Path(args.out) if args.out else results_path(Path(args.results)).parent
    for fmt in formats:
        single_file = len(formats) == 1 and out.suffix != ""
        path = out if single_file else out / FORMATS[fmt][0]
        print(f"report: {write_report(document, fmt, path)}")
    return 0
