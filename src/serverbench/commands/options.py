"""Command-line options shared by several commands: the app, the stack selection, the CPU split,
the latency SLO and error budget of a capacity search."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from serverbench.apps.registry import DEFAULT_APP, UserAppOptions
from serverbench.observe.host_limits import CpuSplit, plan_cpu_split
from serverbench.plan.config import ProjectConfig
from serverbench.plan.config import Slo as ConfigSlo
from serverbench.plan.inputs import check_expected_status
from serverbench.plan.slo import Slo, parse_error_budget, parse_slo
from serverbench.services.registry import SERVICE_NAMES
from serverbench.workloads.catalog import WORKLOADS

# p99 <= 100 ms: a tail a person does not notice on a page or an API call (the classic 0.1 s
# "instant" threshold), strict enough that only rates below a server's saturation hold it in
# an open loop, loose enough that loopback noise (a few ms) does not decide it.
DEFAULT_SLO = "p99=100ms"
DEFAULT_MAX_ERRORS = "0.1%"
DEFAULT_SOURCE = "serverbench's default"


def add_app_options(parser: argparse.ArgumentParser, *, many: bool) -> None:
    group = parser.add_argument_group("app")
    group.add_argument(
        "--app",
        action="append" if many else "store",
        metavar="APP",
        help=(
            f"seed-flask, seed-fastapi, a workload ({', '.join(WORKLOADS)}) as NAME-flask or "
            f"NAME-fastapi (NAME alone: both), or module:attr (default {DEFAULT_APP})"
        ),
    )
    group.add_argument(
        "--interface", choices=("wsgi", "asgi"), help="your app's interface (detected when omitted)"
    )
    group.add_argument(
        "--path", help="path to load for your app, '{msisdn}' is filled in (default /)"
    )
    group.add_argument("--app-dir", help="folder your app imports from (default: current folder)")
    group.add_argument("--expect-status", type=int, help="expected status (default 200)")
    group.add_argument("--expect-json", help="expected JSON body, compared parsed")
    group.add_argument("--expect-regex", help="regular expression the body must match")
    group.add_argument(
        "--service",
        action="append",
        default=[],
        choices=SERVICE_NAMES,
        help="a service your app needs, started per job (postgres: a throwaway PostgreSQL, "
        "its address in DATABASE_URL)",
    )


def add_stack_options(parser: argparse.ArgumentParser, *, many: bool) -> None:
    parser.add_argument(
        "--stack",
        action="append" if many else "store",
        metavar="NAME",
        help="stack name (repeatable, comma lists and 'all' work)"
        if many
        else "stack name (default: the first of the project file's stacks)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[STACK.]NAME=VALUE",
        help="override a stack setting, e.g. --set workers=4 or --set bjoern.processes=2",
    )
    parser.add_argument(
        "--allow-many-processes",
        action="store_true",
        help="let --set ask for more than 16 processes or 256 threads per server CPU",
    )
    parser.add_argument(
        "--server-cpus", help="CPUs for the servers, e.g. 0 or 0-2 (default: split)"
    )
    parser.add_argument(
        "--client-cpus",
        help="CPUs for the load generator (wrk, or the open-loop client processes), e.g. 1 "
        "(default: the rest)",
    )


def app_options(args: argparse.Namespace) -> UserAppOptions:
    check_expected_status(args.expect_status)
    return UserAppOptions(
        interface=args.interface,
        path=args.path,
        app_dir=args.app_dir,
        expect_status=200 if args.expect_status is None else args.expect_status,
        expect_json=args.expect_json,
        expect_regex=args.expect_regex,
        services=tuple(args.service),
    )


def cpu_split(args: argparse.Namespace) -> CpuSplit:
    """The --server-cpus/--client-cpus split over the CPUs this process may use."""
    return plan_cpu_split(sorted(os.sched_getaffinity(0)), args.server_cpus, args.client_cpus)


def add_slo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slo",
        help="latency objective, e.g. p99=50ms or p99.9=200ms (default: slo in the project "
        f"file, else {DEFAULT_SLO})",
    )
    parser.add_argument(
        "--max-errors",
        metavar="PCT",
        help="error budget: share of requests allowed to fail (default: slo.error_rate_pct in "
        f"the project file, else {DEFAULT_MAX_ERRORS.replace('%', '%%')})",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityTargets:
    """The SLO and error budget a capacity search holds each stack to, each with its source."""

    slo: Slo
    max_error_rate: float
    sources: dict[str, str]  # "slo", "max_errors" -> the flag, the project file, or the default


def capacity_targets(args: argparse.Namespace, config: ProjectConfig) -> CapacityTargets:
    """A flag given wins, then the project file's `slo`, then serverbench's default."""
    file_slo = config.slo or ConfigSlo()
    if args.slo is not None:
        slo, slo_source = parse_slo(args.slo), "--slo"
    elif (objective := file_slo.objective()) is not None:
        slo, slo_source = objective, config.where("slo")
    else:
        slo, slo_source = parse_slo(DEFAULT_SLO), DEFAULT_SOURCE
    if args.max_errors is not None:
        budget, budget_source = parse_error_budget(args.max_errors), "--max-errors"
    elif file_slo.error_rate_pct is not None:
        budget, budget_source = file_slo.error_rate_pct / 100, config.where("slo.error_rate_pct")
    else:
        budget, budget_source = parse_error_budget(DEFAULT_MAX_ERRORS), DEFAULT_SOURCE
    return CapacityTargets(
        slo=slo, max_error_rate=budget, sources={"slo": slo_source, "max_errors": budget_source}
    )
