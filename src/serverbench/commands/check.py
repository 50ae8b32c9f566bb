"""`serverbench check`: start, verify and stop each stack; a pass/fail table (or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from serverbench.commands.exclusive import add_lock_option, exclusive
from serverbench.commands.options import (
    add_app_options,
    add_stack_options,
    cpu_split,
)
from serverbench.commands.project import add_project_options, resolve
from serverbench.errors import ServerbenchError, StackUnavailable
from serverbench.plan.selection import prepare_app, select_stacks
from serverbench.report.textable import render_table
from serverbench.run.lifecycle import running_stack, stack_context
from serverbench.stacks import STACKS
from serverbench.stacks.base import interface_mismatch


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("check", help="start, verify and stop each stack")
    add_stack_options(parser, many=True)
    add_app_options(parser, many=True)
    add_project_options(parser)
    add_lock_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    project = resolve(args)
    python = project.interpreter()
    stacks = select_stacks(list(project.stacks) if project.stacks else None, default=list(STACKS))
    split = cpu_split(args)
    overrides = project.overrides(
        stacks, server_cpus=len(split.server_cpus), many=args.allow_many_processes
    )
    apps = [prepare_app(c.spec, c.options, python, project.env) for c in project.apps]
    results: list[dict[str, str]] = []
    with (
        exclusive(args, args.argv),
        tempfile.TemporaryDirectory(prefix="serverbench-check-") as scratch,
    ):
        for app in apps:
            for stack in stacks:
                ctx = stack_context(
                    app,
                    run_dir=Path(scratch) / f"{stack.name}-{app.name.replace(':', '_')}",
                    server_cpu_count=len(split.server_cpus),
                    overrides=overrides[stack.name],
                    interpreter=python,
                    env=project.env,
                )
                row = {"stack": stack.name, "app": app.name}
                mismatch = interface_mismatch(stack, app)
                if mismatch is not None:
                    results.append(row | {"result": "skip", "detail": mismatch})
                    continue
                # with --json, standard output carries the JSON document only
                progress = sys.stderr if args.json else sys.stdout
                print(f"checking {stack.name} with {app.name} ...", file=progress, flush=True)
                try:
                    with running_stack(stack, ctx, cpus=split.server_taskset()) as running:
                        settings = ", ".join(f"{k}={v}" for k, v in running.plan.settings.items())
                        detail = f"{running.url} ({settings})"
                        results.append(row | {"result": "pass", "detail": detail})
                except StackUnavailable as error:
                    results.append(row | {"result": "fail", "detail": str(error)})
                except ServerbenchError as error:
                    first, _, rest = str(error).partition("\n")
                    results.append(row | {"result": "fail", "detail": first})
                    if rest:
                        print(f"{stack.name} log tail:\n{rest}", file=sys.stderr)
    failed = sum(r["result"] == "fail" for r in results)
    if args.json:
        document = {"python": python.executable, "passed": not failed, "checks": results}
        print(json.dumps(document, indent=1))
    else:
        rows = [
            [
                r["stack"],
                r["app"],
                r["result"].upper() if r["result"] == "fail" else r["result"],
                r["detail"],
            ]
            for r in results
        ]
        print(render_table(["stack", "app", "result", "detail"], rows))
    return 1 if failed else 0
