"""`serverbench report`: report.md / report.html rendered again from a results file.

A run that has not finished is said so first (report/unfinished.py): still going, or
interrupted with the command that continues it, its owner asked through the folder's lock."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serverbench.report import FORMATS, write_report
from serverbench.report.unfinished import unfinished_note
from serverbench.results.store import load, results_path
from serverbench.run.lock import folder_owner


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
    folder = results_path(Path(args.results)).parent
    # asked before the file is read: an owner that ended cleanly had saved its last status
    owner = folder_owner(folder)
    document = load(Path(args.results))
    note = unfinished_note(document, folder, owner)
    if note is not None:
        print(f"warning: {note[0].lower()}{note[1:]}", file=sys.stderr)
    if document.status == "running" and owner.alive is False:
        # the marker outlived its owner: the report shows the run interrupted (the file is
        # left as it is, for `--resume` to take over and record)
        document.status = "interrupted"
    formats = tuple(FORMATS) if args.format == "all" else (args.format,)
    out = Path(args.out) if args.out else folder
    for fmt in formats:
        single_file = len(formats) == 1 and out.suffix != ""
        path = out if single_file else out / FORMATS[fmt][0]
        print(f"report: {write_report(document, fmt, path, () if note is None else (note,))}")
    return 0
