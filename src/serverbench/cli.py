"""The command line: argv -> the right command, errors as one line, exit codes.

    serverbench stacks | check | serve | run | report | compare

Only ServerbenchError is caught and printed as `error: ...`; anything else is a bug and keeps
its traceback. Ctrl-C and SIGTERM stop every process serverbench started before it exits.
Files serverbench and its children create are owner-only (umask 077).
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
from serverbench.apps import (
    BUILTIN_APPS,
    DEFAULT_APP,
    ExpectedResponse,
    UserAppOptions,
    resolve_app,
)
from serverbench.errors import ServerbenchError, StackUnavailable, UsageError, VerificationError
from serverbench.external import TargetUrl, parse_target_url, target_app
from serverbench.host_limits import check_connections_fit, plan_cpu_split, raise_nofile_limit
from serverbench.lifecycle import free_port, port_in_use, running_stack
from serverbench.probe import verify
from serverbench.profiles import (
    DEFAULT_REPEATS,
    ProfileOverrides,
    load_profile_file,
    select_profiles,
)
from serverbench.report import write_reports
from serverbench.results import RESULTS_NAME, Document
from serverbench.resume import resume_plan
from serverbench.runner import (
    REFERENCE_STACK,
    TIME_WAIT_THRESHOLD,
    Runner,
    RunPlan,
    check_wrk_available,
    new_document,
)
from serverbench.selection import parse_overrides, prepare_app, select_stacks
from serverbench.stacks import STACKS, all_stacks
from serverbench.stacks.base import Stack, StackContext, TcpEndpoint, package_versions
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
    if args.port and port_in_use(TcpEndpoint(host="127.0.0.1", port=args.port)):
        # before the temporary folder exists, so that a refusal leaves nothing behind
        raise UsageError(
            f"port {args.port} is already in use on 127.0.0.1; "
            "stop what listens there or pick another with --port"
        )
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
    # everything that can refuse the run is checked before anything is started or measured
    check_wrk_available()
    if args.resume:
        plan, document = resume_plan(Path(args.resume))
        for profile in plan.profiles:
            check_connections_fit(profile.connections)
    else:
        plan = _new_run_plan(args)
        document = new_document(plan, ["serverbench", *sys.argv[1:]])
    if plan.url is not None:
        _check_url_answers(plan)
    for warning in document["host_warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    reference = document["stacks"].get(REFERENCE_STACK)
    if reference and reference["unavailable"]:
        print(
            f"warning: the {REFERENCE_STACK} ceiling is skipped: {reference['unavailable']}",
            file=sys.stderr,
        )
    if plan.split.shared:
        print(
            "warning: wrk and the servers share CPUs "
            f"({plan.split.server_taskset()}); numbers are lower bounds",
            file=sys.stderr,
        )
    print(f"results: {plan.out_dir / RESULTS_NAME}", file=sys.stderr)
    Runner(plan, document).run()
    print(summary_table(document))
    faults = fault_lines(document)
    if faults:
        print("\nfaults:\n" + "\n".join(f"  {line}" for line in faults))
    written = write_reports(document, plan.out_dir)
    print(f"\nresults: {plan.out_dir / RESULTS_NAME}")
    for path in written:
        print(f"report: {path}")
    return 0


def fault_lines(document: Document) -> list[str]:
    """One line per failed run and per run during which server processes exited."""
    lines = []
    for run in document["runs"]:
        where = f"{run['stack']} · {run['app']} · {run['profile']} · round {run['round']}"
        failure = run.get("failure") or {}
        if run["status"] == "failed":
            first = (str(failure.get("message", "")).splitlines() or [""])[0]
            lines.append(f"{where}: FAILED ({failure.get('kind', '?')}): {first}")
        exits = run.get("process_exits") or []
        if exits:
            which = ", ".join(f"{e['process']} (pid {e['pid']})" for e in exits)
            lines.append(
                f"{where}: {len(exits)} server process(es) exited during the measurement: "
                f"{which}; {run.get('process_restarts', 0)} replaced"
            )
    return lines


def _check_url_answers(plan: RunPlan) -> None:
    assert plan.url is not None
    target = parse_target_url(plan.url, allow_remote=plan.allow_remote)
    mismatch = verify(target.front, plan.apps[0], requests=1)
    if mismatch is not None:
        raise VerificationError(
            f"{plan.url} does not answer as expected: {mismatch}; start your server, or fix "
            "the URL or the expected response (--expect-status/--expect-json/--expect-regex)"
        )


_URL_EXCLUDES = ("stack", "app", "set", "path", "app_dir", "interface")


def _url_target(args: argparse.Namespace) -> TargetUrl | None:
    if args.url is None:
        if args.allow_remote:
            raise UsageError("--allow-remote only applies to --url; drop it or add --url URL")
        return None
    for name in _URL_EXCLUDES:
        if getattr(args, name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"--url measures a server you run and cannot be combined with {flag}; "
                f"drop {flag}, or drop --url to let serverbench start its own stacks"
            )
    return parse_target_url(args.url, allow_remote=args.allow_remote)


def _require_available(stacks: Sequence[Stack], names: Sequence[str] | None) -> None:
    """A stack the user named that cannot run here stops the run; ones from "all" are skipped."""
    named = {part.strip() for name in names or [] for part in name.split(",")}
    for stack in stacks:
        reason = stack.unavailable_reason()
        if reason is not None and (names is None or stack.name in named):
            raise StackUnavailable(f"stack {stack.name} is unavailable: {reason}")


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
    for profile in profiles:
        check_connections_fit(profile.connections)
    if args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats}: at least one repeat is needed")
    target = _url_target(args)
    if target is None:
        stacks = select_stacks(args.stack)
        _require_available(stacks, args.stack)
        overrides = parse_overrides(args.set, stacks)
        apps = [prepare_app(spec, _app_options(args)) for spec in (args.app or [DEFAULT_APP])]
    else:
        stacks, overrides = [], {}
        apps = [target_app(target, _url_expected(args))]
    split = plan_cpu_split(sorted(os.sched_getaffinity(0)), args.server_cpus, args.client_cpus)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = (Path(args.out) if args.out else Path("serverbench-results") / stamp).absolute()
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
        # the ceiling is a reference for serverbench's own stacks: on request only with --url
        references=args.references if args.references is not None else target is None,
        order_seed=random.randrange(2**31),
        time_wait_threshold=args.time_wait_threshold,
        url=target.url if target else None,
        allow_remote=bool(args.allow_remote),
    )


def _url_expected(args: argparse.Namespace) -> ExpectedResponse:
    # the same checks and messages as for a user's app; only the expectations are kept
    probe_app = resolve_app(
        "url:target",
        UserAppOptions(
            expect_status=args.expect_status,
            expect_json=args.expect_json,
            expect_regex=args.expect_regex,
        ),
    )
    return probe_app.expected


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
        "--time-wait-threshold",
        type=int,
        default=TIME_WAIT_THRESHOLD,
        metavar="N",
        help="before each job, wait (up to 60 s) while more than N TCP sockets are in "
        f"TIME_WAIT (default {TIME_WAIT_THRESHOLD})",
    )
    run.add_argument(
        "--references",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the nginx-static ceiling alongside (default: yes, except with --url; "
        "the in-process app cost is always measured for your own stacks)",
    )
    run.add_argument(
        "--url",
        help="benchmark a server you run yourself at this http:// URL instead of starting "
        "stacks (its host must be loopback unless --allow-remote)",
    )
    run.add_argument(
        "--allow-remote",
        action="store_true",
        help="let --url name a host other than this machine's loopback; load only servers "
        "you are allowed to load",
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
    # configs, logs and results, ours and our children's, are for this user only
    previous_umask = os.umask(0o077)
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
        os.umask(previous_umask)
