import dataclasses
import json
from pathlib import Path

from serverbench.apps.registry import BUILTIN_APPS, UserAppOptions, resolve_app
from serverbench.cli import build_parser
from serverbench.commands.run import new_run_plan
from serverbench.load.wrk import parse
from serverbench.load.wrk_engine import measurement_from_wrk
from serverbench.observe.host_limits import CpuSplit
from serverbench.plan.model import (
    REFERENCE_STACK,
    RunPlan,
    not_applicable,
    plan_jobs,
    reference_app,
)
from serverbench.plan.profiles import PROFILES
from serverbench.results.model import Measurement
from serverbench.run.verdicts import why_no_good_response


def make_plan(**changes: object) -> RunPlan:
    plan = RunPlan(
        stack_names=("gunicorn", "uvicorn", "bjoern"),
        apps=(BUILTIN_APPS["seed-flask"],),
        profiles=(PROFILES["quick-moderate"], PROFILES["quick-high"]),
        repeats=3,
        overrides={},
        split=CpuSplit(server_cpus=(0,), client_cpus=(1,), shared=False),
        out_dir=Path("/nonexistent"),
        order_seed=7,
    )
    return dataclasses.replace(plan, **changes)  # type: ignore[arg-type]


def test_every_stack_app_profile_repeat_once_plus_the_reference_in_the_first_round():
    jobs = plan_jobs(make_plan())
    ids = [job.id for job in jobs]
    assert len(ids) == len(set(ids)) == 3 * 2 * 3 + 2
    references = [job for job in jobs if job.role == "reference"]
    assert {job.stack for job in references} == {REFERENCE_STACK}
    assert [(job.round, job.profile.name) for job in references] == [
        (1, "quick-moderate"),
        (1, "quick-high"),
    ]


def test_rounds_are_in_order_and_profiles_stay_in_order_within_a_cell():
    jobs = plan_jobs(make_plan())
    assert [job.round for job in jobs] == sorted(job.round for job in jobs)
    for first, second in zip(jobs[::2], jobs[1::2], strict=True):
        assert (first.stack, first.round) == (second.stack, second.round)
        assert (first.profile.name, second.profile.name) == ("quick-moderate", "quick-high")


def test_the_order_of_stacks_is_shuffled_per_round_and_reproducible():
    plan = make_plan(repeats=8)
    jobs = plan_jobs(plan)
    orders = {
        tuple(job.stack for job in jobs if job.round == r and job.profile.name == "quick-high")
        for r in range(1, 9)
    }
    assert len(orders) > 1  # not the same order every round
    assert [j.id for j in plan_jobs(plan)] == [j.id for j in jobs]  # same seed, same plan


def test_no_reference_when_asked():
    assert all(job.role == "stack" for job in plan_jobs(make_plan(references=False)))


def test_the_reference_uses_a_seed_app_even_for_a_user_app():
    user_app = resolve_app("mymod:app", UserAppOptions(path="/x"))
    assert reference_app([user_app]) == BUILTIN_APPS["seed-flask"]
    assert reference_app([user_app, BUILTIN_APPS["seed-fastapi"]]).name == "seed-fastapi"


def test_a_stack_that_cannot_serve_the_apps_interface_is_not_planned_but_listed():
    plan = make_plan(
        stack_names=("gunicorn", "uvicorn"),
        apps=(BUILTIN_APPS["seed-flask"], BUILTIN_APPS["seed-fastapi"]),
        references=False,
    )
    pairs = {(job.stack, job.app.name) for job in plan_jobs(plan)}
    assert pairs == {
        ("gunicorn", "seed-flask"),
        ("uvicorn", "seed-flask"),
        ("uvicorn", "seed-fastapi"),
    }
    (skipped,) = not_applicable(plan)
    assert (skipped.stack, skipped.app) == ("gunicorn", "seed-fastapi")
    assert "WSGI apps only" in skipped.reason


def _captured(name: str) -> Measurement:
    wrk = parse(json.loads((Path(__file__).parent / "data" / "wrk" / name).read_text()))
    return measurement_from_wrk(wrk, connections=20)


def test_why_no_good_response_says_what_the_load_got_instead():
    profile = PROFILES["smoke"]
    late = why_no_good_response(_captured("all_timeouts.json"), profile)
    assert "responses arrived, but each after wrk's 2 s timeout" in late
    nothing = why_no_good_response(_captured("zero_requests.json"), profile)
    assert nothing.startswith("no response at all during the measurement")
    statuses = why_no_good_response(_captured("status_errors.json"), profile)
    assert "with a 4xx/5xx status" in statuses


def _plan_from_cli(tmp_path: Path, *argv: str) -> RunPlan:
    args = build_parser().parse_args(["run", "--out", str(tmp_path / "out"), *argv])
    return new_run_plan(args)


def test_the_ceiling_is_a_reference_never_one_more_stack(tmp_path: Path):
    everything = _plan_from_cli(tmp_path, "--stack", "all", "--no-references")
    assert REFERENCE_STACK not in everything.stack_names
    assert everything.references  # asked for by name through "all"
    assert len(everything.stack_names) > 3
    named = _plan_from_cli(tmp_path, "--stack", "gunicorn,nginx-static")
    assert named.stack_names == ("gunicorn",)
    assert named.references
    plain = _plan_from_cli(tmp_path, "--stack", "gunicorn", "--no-references")
    assert not plain.references
