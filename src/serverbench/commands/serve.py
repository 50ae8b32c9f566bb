"""`serverbench serve`: one stack in the foreground until Ctrl-C.

The stack is --stack's, else the project file's first (serve starts one: a user trying the
server of a project that compares several gets the first, and is told which and how to pick
another), as the app is --app's, else the project's first."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from serverbench.commands.exclusive import add_lock_option, exclusive
from serverbench.commands.options import add_app_options, add_stack_options, cpu_split
from serverbench.commands.project import Project, add_project_options, resolve
from serverbench.errors import ServerbenchError, UsageError
from serverbench.plan.selection import prepare_app, select_stacks
from serverbench.run.host import LOCAL
from serverbench.run.lifecycle import running_stack, stack_context
from serverbench.stacks.base import Stack


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="run one stack in the foreground until Ctrl-C")
    add_stack_options(parser, many=False)
    add_app_options(parser, many=False)
    add_project_options(parser)
    parser.add_argument("--port", type=int, help="port to listen on (default: a free one)")
    parser.add_argument("--out", help="folder for configs and logs (default: a new temporary one)")
    add_lock_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    project = resolve(args)
    python = project.interpreter()
    stack = _one_stack(args, project)
    split = cpu_split(args)
    overrides = project.overrides(
        [stack], server_cpus=len(split.server_cpus), many=args.allow_many_processes
    )
    # serve runs one app: the one named, else the project's first
    choice = project.apps[0]
    if args.app is None and len(project.apps) > 1:
        print(
            f"serve: serving {choice.spec}, the first of the project's apps "
            f"({', '.join(a.spec for a in project.apps)}); --app APP serves another",
            file=sys.stderr,
        )
    app = prepare_app(choice.spec, choice.options, python, project.env)
    if args.port and LOCAL.port_in_use(args.port):
        # before the temporary folder exists, so that a refusal leaves nothing behind
        raise UsageError(
            f"port {args.port} is already in use on 127.0.0.1; "
            "stop what listens there or pick another with --port"
        )
    with exclusive(args, args.argv):
        out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="serverbench-serve-"))
        ctx = stack_context(
            app,
            port=args.port,
            run_dir=out,
            server_cpu_count=len(split.server_cpus),
            overrides=overrides[stack.name],
            interpreter=python,
            env=project.env,
        )
        with running_stack(stack, ctx, cpus=split.server_taskset()) as running:
            print(f"{running.name} serving {app.name} at {running.url}{app.load_path}", flush=True)
            for name, command in running.commands().items():
                print(f"  {name}: {' '.join(command)}")
            print(f"logs in {out}; press Ctrl-C to stop", flush=True)
            while True:
                gone = running.exited()
                if gone is not None:
                    raise ServerbenchError(f"{running.name} stopped: {gone}")
                time.sleep(0.5)


def _one_stack(args: argparse.Namespace, project: Project) -> Stack:
    """The stack --stack names, else the project file's first (saying so when it names more)."""
    if args.stack is not None:
        stacks = select_stacks([args.stack])
        if len(stacks) > 1:
            raise UsageError(
                f"--stack {args.stack} names {len(stacks)} stacks and serve runs one; give one, "
                f"e.g. --stack {stacks[0].name} (`serverbench check` starts several)"
            )
        return stacks[0]
    if not project.stacks:
        where = f" and {project.config.source} names none" if project.config.source else ""
        raise UsageError(
            f"serve needs a stack: no --stack was given{where}; give one, e.g. --stack gunicorn "
            "(`serverbench stacks` lists them), or set stacks in [tool.serverbench]"
        )
    stacks = select_stacks(project.stacks)
    if len(stacks) > 1:
        print(
            f"serve: starting {stacks[0].name}, the first of the project's stacks "
            f"({', '.join(s.name for s in stacks)}); --stack NAME starts another",
            file=sys.stderr,
        )
    return stacks[0]
