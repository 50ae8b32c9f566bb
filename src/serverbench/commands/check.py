"""`serverbench check`: start, verify and stop each stack; a pass/fail table."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from serverbench.apps.registry import DEFAULT_APP, expand_app_names
from serverbench.commands.options import (
    add_app_options,
    add_stack_options,
    app_options,
    cpu_split,
)
from serverbench.errors import ServerbenchError, StackUnavailable
from serverbench.plan.selection import parse_overrides, prepare_app, select_stacks
from serverbench.report.textable import render_table
from serverbench.run.lifecycle import running_stack, stack_context
from serverbench.stacks import STACKS
from serverbench.stacks.base import interface_mismatch


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("check", help="start, verify and stop each stack")
    add_stack_options(parser, many=True)
    add_app_options(parser, many=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    stacks = select_stacks(args.stack, default=list(STACKS))
    overrides = parse_overrides(args.set, stacks)
    apps = [
        prepare_app(spec, app_options(args)) for spec in expand_app_names(args.app or [DEFAULT_APP])
    ]
    split = cpu_split(args)
    rows: list[list[str]] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="serverbench-check-") as scratch:
        for app in apps:
            for stack in stacks:
                ctx = stack_context(
                    app,
                    run_dir=Path(scratch) / f"{stack.name}-{app.name.replace(':', '_')}",
                    server_cpu_count=len(split.server_cpus),
                    overrides=overrides[stack.name],
                )
                mismatch = interface_mismatch(stack, app)
                if mismatch is not None:
                    rows.append([stack.name, app.name, "skip", mismatch])
                    continue
                print(f"checking {stack.name} with {app.name} ...", flush=True)
                try:
                    with running_stack(stack, ctx, cpus=split.server_taskset()) as running:
                        settings = ", ".join(f"{k}={v}" for k, v in running.plan.settings.items())
                        rows.append([stack.name, app.name, "pass", f"{running.url} ({settings})"])
                except StackUnavailable as error:
                    failed += 1
                    rows.append([stack.name, app.name, "FAIL", str(error)])
                except ServerbenchError as error:
                    failed += 1
                    first, _, rest = str(error).partition("\n")
                    rows.append([stack.name, app.name, "FAIL", first])
                    if rest:
                        print(f"{stack.name} log tail:\n{rest}", file=sys.stderr)
    print(render_table(["stack", "app", "result", "detail"], rows))
    return 1 if failed else 0
