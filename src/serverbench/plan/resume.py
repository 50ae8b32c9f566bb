"""Continuing an interrupted run: the plan rebuilt from its results file, finished jobs kept.

A `--url` run keeps its URL in the plan; it is checked again (loopback, or --allow-remote as
given when the run began) before anything is loaded.
"""

from __future__ import annotations

from pathlib import Path

from serverbench.errors import ResultsError
from serverbench.plan.model import RunPlan, app_from_record, plan_from_record
from serverbench.results.model import Event, ResultsDocument
from serverbench.results.store import load, results_path
from serverbench.run.url_target import parse_target_url, target_app


def resume_plan(folder: Path) -> tuple[RunPlan, ResultsDocument]:
    path = results_path(folder)
    document = load(path)
    if document.status == "complete":
        raise ResultsError(
            f"{path} is a complete run with its reports; there is nothing to resume (to write "
            f"its reports again: serverbench report {path.parent})"
        )
    saved = document.plan
    apps = tuple(app_from_record(document.apps[name]) for name in saved.apps)
    if saved.url is not None:
        target = parse_target_url(saved.url, allow_remote=saved.allow_remote)
        apps = tuple(target_app(target, app.expected) for app in apps)
    plan = plan_from_record(saved, apps, document.cpu_split, path.parent)
    document.status = "running"
    document.events.append(Event(kind="resumed", runs_kept=len(document.runs)))
    return plan, document
