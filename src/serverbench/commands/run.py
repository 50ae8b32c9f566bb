"""`serverbench run`: the plan from the command line (or a results file to resume), checked
before anything starts, then measured, summarised and reported."""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

from serverbench.apps.registry import ExpectedResponse, UserAppOptions, resolve_app
from serverbench.commands.exclusive import add_lock_option, exclusive, record_owner_gone
from serverbench.commands.options import (
    add_app_options,
    add_slo_options,
    add_stack_options,
    capacity_targets,
    cpu_split,
)
from serverbench.commands.project import add_project_options, project_config, resolve
from serverbench.errors import ResultsError, UsageError, VerificationError
from serverbench.load.open_loop.schedule import ARRIVALS
from serverbench.load.open_loop_engine import OpenLoopEngine
from serverbench.load.wrk_engine import WrkEngine
from serverbench.observe.host_limits import check_connections_fit
from serverbench.plan.inputs import check_duration, check_expected_status, check_out_dir
from serverbench.plan.model import RECOVERY_S, REFERENCE_STACK, TIME_WAIT_THRESHOLD, RunPlan
from serverbench.plan.profiles import (
    DEFAULT_REPEATS,
    Profile,
    ProfileOverrides,
    at_rates,
    at_shares,
    profiles_from_tables,
    select_profiles,
)
from serverbench.plan.resume import resume_plan
from serverbench.plan.selection import prepare_app, require_available, select_stacks
from serverbench.plan.slo import parse_rate
from serverbench.report import write_reports
from serverbench.report.capacity_console import capacity_summary
from serverbench.report.console import fault_lines, summary_table
from serverbench.results.inference import PrecisionGoal, repeats_for
from serverbench.results.model import ResultsDocument
from serverbench.results.store import RESULTS_NAME, load, results_path, save
from serverbench.run.capacity import (
    CapacityRunner,
    capacity_section,
    closed_loop_peaks,
    short_capacity_plan,
)
from serverbench.run.lock import run_lock
from serverbench.run.records import new_document
from serverbench.run.runner import Runner
from serverbench.run.url_target import TargetUrl, parse_target_url, target_app
from serverbench.run.verify import verify


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "run", help="benchmark stacks x apps x profiles with wrk, write the report"
    )
    add_stack_options(parser, many=True)
    add_app_options(parser, many=True)
    add_project_options(parser)
    parser.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="quick (default: quick-moderate + quick-high), seed (moderate + high), moderate, "
        "high, smoke, or one from --config",
    )
    parser.add_argument("--repeats", type=int, help=f"rounds (default {DEFAULT_REPEATS})")
    parser.add_argument(
        "--precision",
        metavar="PCT",
        help="after --repeats rounds, keep adding rounds for the cells whose req/s is not yet "
        "known to +-PCT %% (95 %% confidence interval; needs at least 6 repeats), e.g. 5%%",
    )
    parser.add_argument(
        "--max-repeats",
        type=int,
        default=10,
        metavar="N",
        help="with --precision: at most N repeats of a cell (default 10)",
    )
    parser.add_argument(
        "--time-budget",
        metavar="DURATION",
        help="with --precision: stop adding rounds after this long, e.g. 15m or 900s",
    )
    parser.add_argument("--duration", type=float, help="measured seconds, for every profile")
    parser.add_argument("--connections", type=int, help="connections, for every profile")
    parser.add_argument("--threads", type=int, help="wrk threads, for every profile")
    parser.add_argument("--warmup", type=float, help="warm-up seconds, for every profile")
    parser.add_argument("--timeout", type=float, help="wrk --timeout seconds, for every profile")
    parser.add_argument(
        "--engine",
        choices=("wrk", "open"),
        default="wrk",
        help="wrk: closed loop, fixed connections (default); open: requests at a fixed offered "
        "rate (--rate), latency from each request's intended send time",
    )
    parser.add_argument(
        "--rate",
        action="append",
        metavar="R",
        help="with --engine open: offered requests per second, or a share of each stack's "
        "closed-loop peak measured with wrk just before in the same run (50%%); repeat for "
        "several rates (each profile is measured at each rate, its connections bound the pool)",
    )
    parser.add_argument(
        "--arrivals",
        choices=ARRIVALS,
        default="constant",
        help="with --engine open: evenly spaced requests (constant, default) or Poisson "
        "arrivals (random, the same rate on average)",
    )
    parser.add_argument("--out", help="results folder (default serverbench-results/<time>)")
    parser.add_argument("--resume", metavar="DIR", help="continue an interrupted run in DIR")
    parser.add_argument(
        "--time-wait-threshold",
        type=int,
        default=TIME_WAIT_THRESHOLD,
        metavar="N",
        help="before each job, wait (up to 60 s) while more than N TCP sockets are in "
        f"TIME_WAIT (default {TIME_WAIT_THRESHOLD})",
    )
    parser.add_argument(
        "--recovery-timeout",
        type=float,
        default=RECOVERY_S,
        metavar="S",
        help="after each measurement, how long a server may take to answer again before it "
        f"counts as unresponsive (default {RECOVERY_S:g}); the time it took is recorded",
    )
    parser.add_argument(
        "--references",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the nginx-static ceiling alongside (default: yes, except with --url; "
        "the in-process app cost is always measured for your own stacks)",
    )
    parser.add_argument(
        "--url",
        help="benchmark a server you run yourself at this http:// URL instead of starting "
        "stacks (its host must be loopback unless --allow-remote)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="let --url name a host other than this machine's loopback; load only servers "
        "you are allowed to load",
    )
    parser.add_argument(
        "--capacity",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after the wrk matrix, search each stack's capacity at --slo with short "
        "open-loop steps (default: yes for the default run; no with --profile, --url or "
        "--engine open)",
    )
    add_slo_options(parser)
    add_lock_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # everything that can refuse the run is checked before anything is started or measured
    if args.resume and _complete_without_reports(Path(args.resume)):
        return 0
    if args.resume:
        plan, document = resume_plan(Path(args.resume))
        for profile in plan.profiles:
            check_connections_fit(profile.connections)
    else:
        plan = new_run_plan(args)
        document = new_document(plan, ["serverbench", *args.argv])
        searched = (
            args.capacity
            if args.capacity is not None
            else not (args.profile or args.url or args.engine == "open")
        )
        if searched and args.url:
            raise UsageError(
                "--capacity starts a fresh stack for every step and cannot load a server you "
                "run (--url); drop one of them"
            )
        if searched:
            targets = capacity_targets(args, project_config(args))
            short = short_capacity_plan(targets.slo, targets.max_error_rate)
            document.capacity = capacity_section(replace(short, sources=targets.sources))
    if any(profile.open_loop for profile in plan.profiles):
        OpenLoopEngine().check_available()
    if any(not profile.open_loop for profile in plan.profiles):
        WrkEngine().check_available()
    if plan.url is not None:
        _check_url_answers(plan)
    command = " ".join(["serverbench", *args.argv])
    with exclusive(args, args.argv):
        plan.out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        owner, takeover = run_lock(plan.out_dir, command)
        try:
            if takeover is not None and args.resume:
                record_owner_gone(document, plan.out_dir, takeover)
            _warn(plan, document)
            Runner(plan, document).run()
            if document.capacity is not None:
                # the matrix is complete, the run is not: killed during the search, results.json
                # must not say complete (a report would present it as finished, --resume refuse)
                document.status = "running"
                save(document, results_path(plan.out_dir))
                CapacityRunner(plan, document.capacity.plan, document).run(
                    peaks=closed_loop_peaks(document)
                )
        finally:
            owner.release()
    print(summary_table(document))
    if document.capacity is not None:
        print("\n" + capacity_summary(document))
    faults = fault_lines(document)
    if faults:
        print("\nfaults:\n" + "\n".join(f"  {line}" for line in faults))
    written = write_reports(document, plan.out_dir)
    print(f"\nresults: {plan.out_dir / RESULTS_NAME}")
    for path in written:
        print(f"report: {path}")
    return _exit_code(document)


def _warn(plan: RunPlan, document: ResultsDocument) -> None:
    for warning in document.host_warnings:
        print(f"warning: {warning}", file=sys.stderr)
    reference = document.stacks.get(REFERENCE_STACK)
    if reference and reference.unavailable:
        print(
            f"warning: the {REFERENCE_STACK} ceiling is skipped: {reference.unavailable}",
            file=sys.stderr,
        )
    if plan.split.shared:
        print(
            "warning: wrk and the servers share CPUs "
            f"({plan.split.server_taskset()}); numbers are lower bounds",
            file=sys.stderr,
        )
    print(f"results: {plan.out_dir / RESULTS_NAME}", file=sys.stderr)


def _exit_code(document: ResultsDocument) -> int:
    """1 when no job of the user's own targets produced a measurement; how many failed."""
    jobs = [run for run in document.runs if run.role != "reference"]
    failed = sum(run.status == "failed" for run in jobs)
    if jobs and not any(run.status == "ok" for run in jobs):
        print(
            f"error: no job produced a measurement: {failed} of {len(jobs)} failed "
            f"({len(jobs) - failed} skipped); see the faults above and the report",
            file=sys.stderr,
        )
        return 1
    if failed:
        print(
            f"warning: {failed} of {len(jobs)} jobs failed; see the faults above", file=sys.stderr
        )
    return 0


REPORT_NAMES = ("report.md", "report.html")


def _complete_without_reports(folder: Path) -> bool:
    """A complete run whose report step was interrupted gets its reports now."""
    path = results_path(folder)
    try:
        document = load(path)
    except ResultsError:
        return False  # resume_plan says what is wrong with it
    if document.status != "complete":
        return False
    if all((path.parent / name).exists() for name in REPORT_NAMES):
        return False
    print(
        "the run is complete but its reports were missing (the report step was interrupted); "
        "writing them now",
        file=sys.stderr,
    )
    for written in write_reports(document, path.parent):
        print(f"report: {written}")
    return True


def _check_url_answers(plan: RunPlan) -> None:
    assert plan.url is not None
    target = parse_target_url(plan.url, allow_remote=plan.allow_remote)
    mismatch = verify(target.front, plan.apps[0], requests=1)
    if mismatch is not None:
        raise VerificationError(
            f"{plan.url} does not answer as expected: {mismatch}; start your server, or fix "
            "the URL or the expected response (--expect-status/--expect-json/--expect-regex)"
        )


_URL_EXCLUDES = ("stack", "app", "set", "path", "app_dir", "interface", "service")


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


def new_run_plan(args: argparse.Namespace) -> RunPlan:
    project = resolve(args)
    for flag, seconds in (
        ("--duration", args.duration),
        ("--warmup", args.warmup),
        ("--timeout", args.timeout),
    ):
        check_duration(flag, seconds)
    check_expected_status(args.expect_status)
    extra = profiles_from_tables(project.config.profile_tables, project.config.source)
    profiles = select_profiles(
        list(project.profiles) if project.profiles else None,
        ProfileOverrides(
            duration_s=args.duration,
            connections=args.connections,
            threads=args.threads,
            warmup_s=args.warmup,
            timeout_s=args.timeout,
        ),
        extra,
    )
    profiles = _with_engine(args, profiles)
    for profile in profiles:
        check_connections_fit(profile.connections)
        for field in ("duration_s", "warmup_s", "timeout_s"):
            check_duration(f"profile {profile.name} {field}", getattr(profile, field))
    repeats = project.repeats if project.repeats is not None else DEFAULT_REPEATS
    if args.recovery_timeout < 0:
        raise UsageError(f"--recovery-timeout {args.recovery_timeout:g}: cannot be negative")
    if repeats < 1:
        raise UsageError(f"--repeats {repeats}: at least one repeat is needed")
    target = _url_target(args)
    references = args.references if args.references is not None else target is None
    python = project.interpreter()
    split = cpu_split(args)
    if target is None:
        stack_names = list(project.stacks) if project.stacks else None
        stacks = select_stacks(stack_names)
        require_available(stacks, stack_names, python)
        overrides = project.overrides(
            stacks, server_cpus=len(split.server_cpus), many=args.allow_many_processes
        )
        # the ceiling is measured once per round as the reference, never as one more stack
        if any(stack.name == REFERENCE_STACK for stack in stacks):
            stacks = [stack for stack in stacks if stack.name != REFERENCE_STACK]
            references = True
        apps = [prepare_app(c.spec, c.options, python, project.env) for c in project.apps]
    else:
        stacks, overrides = [], {}
        apps = [target_app(target, _url_expected(args))]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results_dir = Path(project.config.out) if project.config.out else Path("serverbench-results")
    out = (Path(args.out) if args.out else results_dir / stamp).absolute()
    check_out_dir(out)
    if (out / RESULTS_NAME).exists():
        raise UsageError(
            f"{out / RESULTS_NAME} already exists; continue it with --resume {out} "
            "or choose another --out"
        )
    return RunPlan(
        stack_names=tuple(stack.name for stack in stacks),
        apps=tuple(apps),
        profiles=tuple(profiles),
        repeats=repeats,
        overrides=overrides,
        split=split,
        out_dir=out,
        # the ceiling is a reference for serverbench's own stacks: on request only with --url
        references=references,
        order_seed=random.randrange(2**31),
        time_wait_threshold=args.time_wait_threshold,
        recovery_s=args.recovery_timeout,
        url=target.url if target else None,
        allow_remote=bool(args.allow_remote),
        python=None if python.own else python.executable,
        env=project.env,
        config=project.record(),
        precision=precision_goal(args, repeats),
    )


def _number(text: str, option: str, units: dict[str, float]) -> float:
    for suffix, factor in units.items():
        if suffix and text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    else:
        scale = units[""]
    try:
        value = float(text) * scale
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a number; e.g. {option} 5") from None
    if value <= 0:
        raise UsageError(f"{option} {text}: must be above zero")
    return value


def precision_goal(args: argparse.Namespace, repeats: int) -> PrecisionGoal | None:
    """--precision, --max-repeats and --time-budget as a goal; None without --precision."""
    if args.precision is None:
        if args.time_budget is not None:
            raise UsageError("--time-budget only applies with --precision; add e.g. --precision 5%")
        return None
    if args.max_repeats < max(repeats, 1):
        raise UsageError(
            f"--max-repeats {args.max_repeats} is below --repeats {repeats}; raise it "
            f"(a 95 % interval needs at least {repeats_for()} repeats)"
        )
    budget = (
        _number(args.time_budget, "--time-budget", {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0})
        if args.time_budget
        else None
    )
    return PrecisionGoal(
        target_pct=_number(args.precision.strip(), "--precision", {"%": 1.0, "": 1.0}),
        max_repeats=args.max_repeats,
        budget_s=budget,
    )


def _with_engine(args: argparse.Namespace, profiles: list[Profile]) -> list[Profile]:
    specs = [parse_rate(text) for text in args.rate or []]
    if args.engine == "wrk":
        if specs or args.arrivals != "constant":
            raise UsageError(
                "--rate and --arrivals set the open-loop engine's load; add --engine open "
                "(wrk holds connections, not a rate)"
            )
        return profiles
    if not specs:
        raise UsageError(
            "--engine open needs an offered rate; give one or more --rate R (req/s, or a share "
            "of the peak such as 50%)"
        )
    absolute = [spec.rps for spec in specs if spec.rps is not None]
    shares = [spec.peak_share for spec in specs if spec.peak_share is not None]
    return [
        *(at_shares(profiles, shares, args.arrivals) if shares else []),
        *(at_rates(profiles, absolute, args.arrivals) if absolute else []),
    ]


def _url_expected(args: argparse.Namespace) -> ExpectedResponse:
    # the same checks and messages as for a user's app; only the expectations are kept
    probe_app = resolve_app(
        "url:target",
        UserAppOptions(
            expect_status=200 if args.expect_status is None else args.expect_status,
            expect_json=args.expect_json,
            expect_regex=args.expect_regex,
        ),
    )
    return probe_app.expected
