"""The command line: argv -> the right command, errors as one line, exit codes.

    serverbench stacks | check | serve | run | report | compare

Only ServerbenchError is caught and printed as `error: ...`; anything else is a bug and keeps
its traceback. Ctrl-C and SIGTERM stop every process serverbench started before it exits.
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from serverbench import __version__, process
from serverbench.apps import BUILTIN_APPS, DEFAULT_APP, UserAppOptions
from serverbench.errors import ServerbenchError, StackUnavailable, UsageError
from serverbench.host_limits import check_connections_fit, plan_cpu_split, raise_nofile_limit
from serverbench.lifecycle import free_port, running_stack
from serverbench.profiles import (
    DEFAULT_REPEATS,
    ProfileOverrides,
    load_profile_file,
    select_profiles,
)
from serverbench.report import write_reports
from serverbench.results import RESULTS_NAME
from serverbench.resume import resume_plan
from serverbench.runner import Runner, RunPlan, check_wrk_available, new_document
from serverbench.selection import parse_overrides, prepare_app, select_stacks
from serverbench.stacks import STACKS, all_stacks
from serverbench.stacks.base import StackContext, package_versions
from serverbench.summary import summary_table
from serverbench.textable import render_table

Handler = Callable[[argparse.Namespace], int]


def _add_app_options(parser: argparse.ArgumentParser, *, many: bool) -> None:
    group = parser.add_argument_group("app")
    group.add_argument(
        "--app",
        action="append" if many else "store",
        metavar="APP",
        help=f"{', '.join(BUILTIN_APPS)} or module:attr (default {DEFAULT_APP})",
    )
    group.add_argument(
        "--interface", choices=("wsgi", "asgi"), help="your app's interface (detected when omitted)"
    )
    group.add_argument(
        "--path", help="path to load for your app, '{msisdn}' is filled in (default /)"
    )
    group.add_argument("--app-dir", help="folder your app imports from (default: current folder)")
    group.add_argument(
        "--expect-status", type=int, default=200, help="expected status (default 200)"
    )
    group.add_argument("--expect-json", help="expected JSON body, compared parsed")
    group.add_argument("--expect-regex", help="regular expression the body must match")


def _add_stack_options(parser: argparse.ArgumentParser, *, many: bool) -> None:
    parser.add_argument(
        "--stack",
        action="append" if many else "store",
        required=not many,
        metavar="NAME",
        help="stack name (repeatable, comma lists and 'all' work)" if many else "stack name",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[STACK.]NAME=VALUE",
        help="override a stack setting, e.g. --set workers=4 or --set bjoern.processes=2",
    )
    parser.add_argument(
        "--server-cpus", help="CPUs for the servers, e.g. 0 or 0-2 (default: split)"
    )
    parser.add_argument("--client-cpus", help="CPUs for wrk, e.g. 1 (default: the rest)")


def _app_options(args: argparse.Namespace) -> UserAppOptions:
    return UserAppOptions(
        interface=args.interface,
        path=args.path,
        app_dir=args.app_dir,
        expect_status=args.expect_status,
        expect_json=args.expect_json,
        expect_regex=args.expect_regex,
    )


def cmd_stacks(args: argparse.Namespace) -> int:
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


def cmd_check(args: argparse.Namespace) -> int:
    stacks = select_stacks(args.stack, default=list(STACKS))
    overrides = parse_overrides(args.set, stacks)
    apps = [prepare_app(spec, _app_options(args)) for spec in (args.app or [DEFAULT_APP])]
    split = plan_cpu_split(sorted(os.sched_getaffinity(0)), args.server_cpus, args.client_cpus)
    rows: list[list[str]] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="serverbench-check-") as scratch:
        for app in apps:
            for stack in stacks:
                ctx = StackContext(
                    app=app,
                    host="127.0.0.1",
                    port=free_port(),
                    run_dir=Path(scratch) / f"{stack.name}-{app.name.replace(':', '_')}",
                    server_cpu_count=len(split.server_cpus),
                    overrides=overrides[stack.name],
                )
                if app.interface not in stack.interfaces:
                    rows.append(
                        [
                            stack.name,
                            app.name,
                            "skip",
                            f"serves {'/'.join(sorted(stack.interfaces))} only",
                        ]
                    )
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


def cmd_serve(args: argparse.Namespace) -> int:
    stacks = select_stacks([args.stack])
    overrides = parse_overrides(args.set, stacks)
    app = prepare_app(args.app, _app_options(args))
    split = plan_cpu_split(sorted(os.sched_getaffinity(0)), args.server_cpus, args.client_cpus)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="serverbench-serve-"))
    ctx = StackContext(
        app=app,
        host="127.0.0.1",
        port=args.port or free_port(),
        run_dir=out,
        server_cpu_count=len(split.server_cpus),
        overrides=overrides[stacks[0].name],
    )
    with running_stack(stacks[0], ctx, cpus=split.server_taskset()) as running:
        print(f"{running.name} serving {app.name} at {running.url}{app.load_path}", flush=True)
        for name, command in running.commands().items():
            print(f"  {name}: {' '.join(command)}")
        print(f"logs in {out}; press Ctrl-C to stop", flush=True)
        while True:
            gone = running.exited()
            if gone is not None:
                raise ServerbenchError(f"{running.name} stopped: {gone}")
            time.sleep(0.5)


def cmd_run(args: argparse.Namespace) -> int:
    if args.resume:
        plan, document = resume_plan(Path(args.resume))
    else:
        plan = _new_run_plan(args)
        document = new_document(plan, ["serverbench", *sys.argv[1:]])
    for profile in plan.profiles:
        check_connections_fit(profile.connections)
    check_wrk_available()
    for warning in document["host_warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if plan.split.shared:
        print(
            "warning: wrk and the servers share CPUs "
            f"({plan.split.server_taskset()}); numbers are lower bounds",
            file=sys.stderr,
        )
    print(f"results: {plan.out_dir / RESULTS_NAME}", file=sys.stderr)
    Runner(plan, document).run()
    print(summary_table(document))
    written = write_reports(document, plan.out_dir)
    print(f"\nresults: {plan.out_dir / RESULTS_NAME}")
    for path in written:
        print(f"report: {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from serverbench.report import FORMATS, write_report
    from serverbench.results import load, results_path

    document = load(Path(args.results))
    formats = tuple(FORMATS) if args.format == "all" else (args.format,)
    out = Path(args.out) if args.out else results_path(Path(args.results)).parent
    for fmt in formats:
        single_file = len(formats) == 1 and out.suffix != ""
        path = out if single_file else out / FORMATS[fmt][0]
        print(f"report: {write_report(document, fmt, path)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from serverbench.compare import compare, render_comparison
    from serverbench.results import load, results_path

    a, b = Path(args.a), Path(args.b)
    comparison = compare(load(a), load(b))
    print(render_comparison(comparison, str(results_path(a)), str(results_path(b))))
    if args.fail_if_slower is None:
        return 0
    slower = comparison.slower_than(args.fail_if_slower)
    for delta in slower:
        stack, app, profile = delta.key
        print(
            f"slower: {stack}/{app}/{profile} lost {-(delta.rps_change_pct or 0.0):.1f}% "
            f"req/s (limit {args.fail_if_slower:g}%)",
            file=sys.stderr,
        )
    return 1 if slower else 0


def _new_run_plan(args: argparse.Namespace) -> RunPlan:
    stacks = select_stacks(args.stack)
    overrides = parse_overrides(args.set, stacks)
    apps = [prepare_app(spec, _app_options(args)) for spec in (args.app or [DEFAULT_APP])]
    extra = load_profile_file(Path(args.config)) if args.config else {}
    profiles = select_profiles(
        args.profile,
        ProfileOverrides(
            duration_s=args.duration,
            connections=args.connections,
            threads=args.threads,
            warmup_s=args.warmup,
            timeout_s=args.timeout,
        ),
        extra,
    )
    if args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats}: at least one repeat is needed")
    split = plan_cpu_split(sorted(os.sched_getaffinity(0)), args.server_cpus, args.client_cpus)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("serverbench-results") / stamp
    if (out / RESULTS_NAME).exists():
        raise UsageError(
            f"{out / RESULTS_NAME} already exists; continue it with --resume {out} "
            "or choose another --out"
        )
    return RunPlan(
        stack_names=tuple(stack.name for stack in stacks),
        apps=tuple(apps),
        profiles=tuple(profiles),
        repeats=args.repeats,
        overrides=overrides,
        split=split,
        out_dir=out,
        references=not args.no_references,
        order_seed=random.randrange(2**31),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serverbench",
        description="Which Python server, settings and topology should my app run on, and what will it hold?",
    )
    parser.add_argument("--version", action="version", version=f"serverbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stacks = sub.add_parser("stacks", help="list the stacks and whether they can run here")
    stacks.set_defaults(handler=cmd_stacks)

    check = sub.add_parser("check", help="start, verify and stop each stack")
    _add_stack_options(check, many=True)
    _add_app_options(check, many=True)
    check.set_defaults(handler=cmd_check)

    serve = sub.add_parser("serve", help="run one stack in the foreground until Ctrl-C")
    _add_stack_options(serve, many=False)
    _add_app_options(serve, many=False)
    serve.add_argument("--port", type=int, help="port to listen on (default: a free one)")
    serve.add_argument("--out", help="folder for configs and logs (default: a new temporary one)")
    serve.set_defaults(handler=cmd_serve)

    run = sub.add_parser(
        "run", help="benchmark stacks x apps x profiles with wrk, write the report"
    )
    _add_stack_options(run, many=True)
    _add_app_options(run, many=True)
    run.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="quick (default: quick-moderate + quick-high), seed (moderate + high), moderate, "
        "high, smoke, or one from --config",
    )
    run.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="rounds (default 3)")
    run.add_argument("--duration", type=float, help="measured seconds, for every profile")
    run.add_argument("--connections", type=int, help="connections, for every profile")
    run.add_argument("--threads", type=int, help="wrk threads, for every profile")
    run.add_argument("--warmup", type=float, help="warm-up seconds, for every profile")
    run.add_argument("--timeout", type=float, help="wrk --timeout seconds, for every profile")
    run.add_argument("--config", help="TOML file with [profiles.NAME] tables")
    run.add_argument("--out", help="results folder (default serverbench-results/<time>)")
    run.add_argument("--resume", metavar="DIR", help="continue an interrupted run in DIR")
    run.add_argument(
        "--no-references",
        action="store_true",
        help="skip the nginx-static ceiling (the in-process app cost is always measured)",
    )
    run.set_defaults(handler=cmd_run)

    report = sub.add_parser(
        "report", help="write report.md / report.html from a results.json (measures nothing)"
    )
    report.add_argument("results", metavar="RESULTS", help="results.json or the folder holding it")
    report.add_argument(
        "--format", choices=("md", "html", "all"), default="all", help="default: all"
    )
    report.add_argument(
        "--out",
        metavar="PATH",
        help="folder to write into (default: the results folder); with one --format, "
        "a file name such as report.md also works",
    )
    report.set_defaults(handler=cmd_report)

    compare_cmd = sub.add_parser("compare", help="delta table between two results files")
    compare_cmd.add_argument("a", metavar="A", help="the baseline results.json (or its folder)")
    compare_cmd.add_argument("b", metavar="B", help="the new results.json (or its folder)")
    compare_cmd.add_argument(
        "--fail-if-slower",
        type=float,
        metavar="PCT",
        help="exit 1 when any matching entry lost more than PCT %% of its req/s",
    )
    compare_cmd.set_defaults(handler=cmd_compare)
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    previous = signal.signal(signal.SIGTERM, _terminate)
    atexit.register(process.stop_all)
    raise_nofile_limit()
    try:
        return handler(args)
    except ServerbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    except KeyboardInterrupt:
        print("interrupted; stopping everything serverbench started", file=sys.stderr)
        return 130
    finally:
        process.stop_all()
        signal.signal(signal.SIGTERM, previous)
