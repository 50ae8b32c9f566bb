"""`serverbench stacks`: every stack, its interfaces and version, and whether it can run here."""

from __future__ import annotations

import argparse

from serverbench.report.textable import render_table
from serverbench.stacks import all_stacks
from serverbench.stacks.base import package_versions


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("stacks", help="list the stacks and whether they can run here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for stack in all_stacks():
        reason = stack.unavailable_reason()
        versions = package_versions(stack.packages[:1])
        rows.append(
            [
                stack.name,
                "/".join(sorted(stack.interfaces)),
                next(iter(versions.values()), "-"),
                "available" if reason is None else f"unavailable: {reason}",
                stack.summary,
            ]
        )
    print(render_table(["stack", "interfaces", "version", "status", "what"], rows))
    return 0
