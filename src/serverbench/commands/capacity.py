"""`serverbench capacity`: each stack's highest offered rate within a latency SLO and an error
budget, found by an open-loop search after a closed-loop (wrk) peak; written to results.json
after every step, reported, resumable."""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from serverbench.commands.exclusive import add_lock_option, exclusive, record_owner_gone
from serverbench.commands.options import (
    add_app_options,
    add_slo_options,
    add_stack_options,
    capacity_targets,
    cpu_split,
)
from serverbench.commands.project import add_project_options, project_config, resolve
from serverbench.errors import ResultsError, UsageError
from serverbench.load.wrk_engine import WrkEngine
from serverbench.observe.host_limits import check_connections_fit
from serverbench.plan.capacity import MAX_BACKOFFS, MAX_RPS, CapacityPlan
from serverbench.plan.model import RunPlan
from serverbench.plan.profiles import Profile, ProfileOverrides, select_profiles
from serverbench.plan.resume import resume_plan
from serverbench.plan.selection import prepare_app, require_available, select_stacks
from serverbench.plan.slo import parse_error_budget, parse_rate
from serverbench.report import write_reports
from serverbench.report.capacity_console import capacity_summary
from serverbench.results.store import RESULTS_NAME
from serverbench.run.capacity import CapacityRunner
from serverbench.run.lock import run_lock
from serverbench.run.records import new_document

# The closed-loop peak the search scales from: enough connections to saturate the servers'
# CPUs, few enough that a slow server answers them within wrk's timeout (at 1000 connections
# a server doing 500 req/s answers in about 2 s, and the timeouts hide its real rate).
PEAK_PROFILE = Profile(
    name="capacity-peak",
    threads=2,
    connections=64,
    duration_s=5,
    warmup_s=2,
    description="the closed-loop peak the capacity search starts from",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "capacity",
        help="each stack's highest open-loop rate within a latency SLO and an error budget",
    )
    add_stack_options(parser, many=True)
    add_app_options(parser, many=True)
    add_slo_options(parser)
    # the project file gives the stacks, apps, settings, interpreter, environment and SLO
    add_project_options(parser)
    parser.add_argument(
        "--step-duration",
        type=float,
        default=5.0,
        metavar="S",
        help="measured seconds per step (default 5)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        metavar="S",
        help="warm-up at the step's rate, discarded (default 2)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="a request unanswered this long after it was due is a timeout (default 2)",
    )
    parser.add_argument(
        "--confirmations",
        type=int,
        default=2,
        metavar="N",
        help="extra measurements of the final rate, each on a fresh stack; the rate is judged "
        "on all their requests together (default 2)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="N",
        help="search each stack N times, in rounds, and report their spread: the run-to-run "
        "variation one search cannot show (default 1)",
    )
    parser.add_argument(
        "--precision",
        default="5%",
        metavar="PCT",
        help="bisect until the highest holding and lowest failing rate are this close (default 5%%)",
    )
    parser.add_argument(
        "--start-rate",
        metavar="R",
        help="first rate, req/s or a share of the closed-loop peak (default 25%%)",
    )
    parser.add_argument(
        "--max-rate",
        metavar="R",
        help=f"the search's ceiling in req/s (default {MAX_RPS:,.0f})",
    )
    parser.add_argument(
        "--peak-profile",
        default=PEAK_PROFILE.name,
        metavar="NAME",
        help="the wrk profile that measures each stack's closed-loop peak first "
        f"(default {PEAK_PROFILE.name}: {PEAK_PROFILE.connections} connections, "
        f"{PEAK_PROFILE.duration_s:g} s)",
    )
    parser.add_argument(
        "--out", help="results folder (default serverbench-results/capacity-<time>)"
    )
    parser.add_argument(
        "--resume", metavar="DIR", help="continue an interrupted capacity run in DIR"
    )
    add_lock_option(parser)
    parser.set_defaults(handler=capacity)


def _share(text: str, flag: str) -> float:
    try:
        value = parse_error_budget(text)
    except UsageError:
        raise UsageError(f"{flag} {text!r}: give a percentage, e.g. 5%") from None
    if value <= 0:
        raise UsageError(f"{flag} {text!r}: must be above 0 %, e.g. 5%")
    return value


def capacity_plan(args: argparse.Namespace) -> CapacityPlan:
    if args.step_duration <= 0 or args.warmup < 0 or args.timeout <= 0:
        raise UsageError(
            "--step-duration and --timeout must be above 0 and --warmup 0 or more; e.g. "
            "--step-duration 5 --warmup 2 --timeout 2"
        )
    if args.confirmations < 0:
        raise UsageError(f"--confirmations {args.confirmations}: give 0 or more")
    if args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats}: give 1 or more, e.g. --repeats 3")
    start = parse_rate(args.start_rate) if args.start_rate else None
    max_rps = parse_rate(args.max_rate).rps if args.max_rate else MAX_RPS
    if max_rps is None:
        raise UsageError(f"--max-rate {args.max_rate}: give req/s, e.g. 20000")
    targets = capacity_targets(args, project_config(args))
    return CapacityPlan(
        slo=targets.slo,
        max_error_rate=targets.max_error_rate,
        step_s=args.step_duration,
        warmup_s=args.warmup,
        timeout_s=args.timeout,
        confirmations=args.confirmations,
        precision=_share(args.precision, "--precision"),
        start_rps=start.rps if start and not start.relative else None,
        start_share=start.peak_share if start and start.relative else None,
        max_rps=max_rps,
        sources=targets.sources,
        repeats=args.repeats,
        max_backoffs=MAX_BACKOFFS,
    )


def capacity(args: argparse.Namespace) -> int:
    WrkEngine().check_available()
    if args.resume:
        run_plan, document = resume_plan(Path(args.resume))
        if document.capacity is None:
            raise ResultsError(
                f"{args.resume} holds a `serverbench run`, not a capacity run; resume it with "
                "`serverbench run --resume`"
            )
        plan = document.capacity.plan
    else:
        plan = capacity_plan(args)
        run_plan = new_capacity_run_plan(args)
        document = new_document(run_plan, ["serverbench", *sys.argv[1:]])
    for warning in document.host_warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if run_plan.split.shared:
        print(
            "warning: the load generator and the servers share CPUs "
            f"({run_plan.split.server_taskset()}); capacities are lower bounds",
            file=sys.stderr,
        )
    print(f"capacity at {plan.targets_text}", file=sys.stderr)
    print(f"results: {run_plan.out_dir / RESULTS_NAME}", file=sys.stderr)
    with exclusive(args, args.argv):
        run_plan.out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # as `run` does: a second writer of the folder is refused, and `report` can tell a
        # search still going from one whose serverbench was killed
        owner, takeover = run_lock(run_plan.out_dir, " ".join(["serverbench", *args.argv]))
        try:
            if takeover is not None and args.resume:
                record_owner_gone(document, run_plan.out_dir, takeover)
            CapacityRunner(run_plan, plan, document).run()
        finally:
            owner.release()
    print(capacity_summary(document))
    written = write_reports(document, run_plan.out_dir)
    print(f"\nresults: {run_plan.out_dir / RESULTS_NAME}")
    for path in written:
        print(f"report: {path}")
    return 0


def new_capacity_run_plan(args: argparse.Namespace) -> RunPlan:
    profiles = (
        [PEAK_PROFILE]
        if args.peak_profile == PEAK_PROFILE.name
        else select_profiles([args.peak_profile], ProfileOverrides())
    )
    check_connections_fit(profiles[0].connections)
    project = resolve(args)
    python = project.interpreter()
    stack_names = list(project.stacks) if project.stacks else None
    stacks = select_stacks(stack_names)
    require_available(stacks, stack_names, python)
    stacks = [s for s in stacks if s.name != "nginx-static"] or stacks
    apps = [prepare_app(c.spec, c.options, python, project.env) for c in project.apps]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results_dir = Path(project.config.out) if project.config.out else Path("serverbench-results")
    out = (Path(args.out) if args.out else results_dir / f"capacity-{stamp}").absolute()
    if (out / RESULTS_NAME).exists():
        raise UsageError(
            f"{out / RESULTS_NAME} already exists; continue it with --resume {out} "
            "or choose another --out"
        )
    split = cpu_split(args)
    return RunPlan(
        stack_names=tuple(s.name for s in stacks),
        apps=tuple(apps),
        profiles=tuple(profiles),
        repeats=1,
        overrides=project.overrides(
            stacks, server_cpus=len(split.server_cpus), many=args.allow_many_processes
        ),
        split=split,
        out_dir=out,
        references=False,
        order_seed=random.randrange(2**31),
        python=None if python.own else python.executable,
        env=project.env,
        config=project.record(),
    )
