"""`serverbench stacks`: every stack, its interfaces and version, and whether it can run here."""

from __future__ import annotations

import argparse
import json
from typing import Any

from serverbench.commands.project import add_project_options, resolve
from serverbench.report.textable import render_table
from serverbench.stacks import EXTRAS, all_stacks
from serverbench.stacks.interpreter import Interpreter


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("stacks", help="list the stacks and whether they can run here")
    add_project_options(parser, env=False)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def stack_records(python: Interpreter) -> list[dict[str, Any]]:
    records = []
    for stack in all_stacks():
        reason = stack.unavailable_reason(python)
        versions = python.versions(stack.packages)
        records.append(
            {
                "stack": stack.name,
                "interfaces": sorted(stack.interfaces),
                "packages": versions,
                "version": versions.get(stack.packages[0]) if stack.packages else None,
                "available": reason is None,
                "unavailable_reason": reason,
                "extra": EXTRAS.get(stack.name),
                "summary": stack.summary,
            }
        )
    return records


def run(args: argparse.Namespace) -> int:
    python = resolve(args).interpreter()
    records = stack_records(python)
    if args.json:
        document = {"python": python.executable, "python_version": python.version}
        print(json.dumps({**document, "stacks": records}, indent=1))
        return 0
    rows = [
        [
            r["stack"],
            "/".join(r["interfaces"]),
            r["version"] or "-",
            "available" if r["available"] else f"unavailable: {r['unavailable_reason']}",
            f"serverbench[{r['extra']}]" if r["extra"] else "-",
            r["summary"],
        ]
        for r in records
    ]
    print(f"servers run with {python.executable} (Python {python.version})")
    print(render_table(["stack", "interfaces", "version", "status", "extra", "what"], rows))
    return 0
