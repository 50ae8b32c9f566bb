"""Continuing an interrupted run: the plan rebuilt from its results file, finished jobs kept.

A `--url` run keeps its URL in the plan; it is checked again (loopback, or --allow-remote as
given when the run began) before anything is loaded.
"""

from __future__ import annotations

from pathlib import Path

from serverbench.apps.registry import app_from_dict
from serverbench.errors import ResultsError
from serverbench.observe.host_limits import cpu_split_from_dict
from serverbench.plan.profiles import profile_from_dict
from serverbench.results.store import Document, load, results_path
from serverbench.run.runner import RECOVERY_S, RunPlan
from serverbench.run.url_target import parse_target_url, target_app


def resume_plan(folder: Path) -> tuple[RunPlan, Document]:
    path = results_path(folder)
    document = load(path)
    if document.get("status") == "complete":
        raise ResultsError(f"{path} is a complete run; there is nothing to resume")
    saved = document["plan"]
    apps = tuple(app_from_dict(document["apps"][name]) for name in saved["apps"])
    url = saved.get("url")
    allow_remote = bool(saved.get("allow_remote", False))
    if url is not None:
        target = parse_target_url(url, allow_remote=allow_remote)
        apps = tuple(target_app(target, app.expected) for app in apps)
    plan = RunPlan(
        stack_names=tuple(saved["stacks"]),
        apps=apps,
        profiles=tuple(profile_from_dict(p) for p in saved["profiles"]),
        repeats=int(saved["repeats"]),
        overrides={k: dict(v) for k, v in saved["overrides"].items()},
        split=cpu_split_from_dict(document["cpu_split"]),
        out_dir=path.parent,
        references=bool(saved["references"]),
        time_wait_threshold=int(saved["time_wait_threshold"]),
        max_drain_s=float(saved["max_drain_s"]),
        recovery_s=float(saved.get("recovery_s", RECOVERY_S)),
        order_seed=int(saved["order_seed"]),
        url=url,
        allow_remote=allow_remote,
    )
    document["status"] = "running"
    document.setdefault("events", []).append(
        {"kind": "resumed", "runs_kept": len(document["runs"])}
    )
    return plan, document
