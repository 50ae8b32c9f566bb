"""`serverbench init`: a commented starting configuration for the app found in a project folder.

With a pyproject.toml in the folder, a `[tool.serverbench]` table is appended to it (its other
content is left byte for byte as it was); otherwise a serverbench.toml is written. An existing
configuration is never overwritten.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

from serverbench.commands.options import DEFAULT_MAX_ERRORS, DEFAULT_SLO
from serverbench.errors import UsageError
from serverbench.plan.config import OWN_FILE, PYPROJECT, load_config
from serverbench.plan.detect import Detection, detect
from serverbench.plan.slo import parse_error_budget, parse_slo


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "init", help="write a commented [tool.serverbench] for the app found in this folder"
    )
    parser.add_argument(
        "--dir", default=".", metavar="DIR", help="the project folder (default: this one)"
    )
    parser.add_argument(
        "--stdout", action="store_true", help="print the configuration instead of writing it"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"--dir {args.dir}: not a folder; give your project's folder")
    detection = detect(folder)
    pyproject = folder / PYPROJECT
    target = pyproject if pyproject.is_file() else folder / OWN_FILE
    text = config_text(detection, in_pyproject=target.name == PYPROJECT)
    if args.stdout:
        print(text, end="")
        return 0
    if target.name == PYPROJECT:
        existing = target.read_text()
        if "serverbench" in _tool_tables(target):
            raise UsageError(
                f"{target} already has a [tool.serverbench] table; edit it, or remove it and "
                "run serverbench init again"
            )
        # a blank line before the new table; the file's own text is kept as it was
        separator = ("" if existing.endswith("\n") else "\n") + "\n" if existing else ""
        target.write_text(existing + separator + text)
    else:
        if target.exists():
            raise UsageError(
                f"{target} already exists; edit it, or remove it and run serverbench init again"
            )
        target.write_text(text)
    load_config(target)  # what init writes must be a valid configuration
    found = ", ".join(app.spec for app in detection.apps) or "no app (set apps in the file)"
    print(f"init: wrote {target} for {found}")
    print("next: serverbench run --profile smoke   (a few seconds per stack), then serverbench run")
    return 0


def _tool_tables(pyproject: Path) -> dict[str, object]:
    try:
        tool = tomllib.loads(pyproject.read_text()).get("tool", {})
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{pyproject} is not valid TOML ({error}); fix it first") from None
    return tool if isinstance(tool, dict) else {}


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def config_text(detection: Detection, *, in_pyproject: bool) -> str:
    """The commented configuration: every key a user may want, the detected values set."""
    lines = ["[tool.serverbench]" if in_pyproject else "# serverbench configuration"]
    if detection.framework:
        lines.append(f"# Written by `serverbench init` for a {detection.framework} project.")
    lines += [
        "# `serverbench run` in this folder uses these values; a flag overrides one.",
        "",
        "# The apps to serve, as module:attribute, imported from this folder (app_dir).",
    ]
    lines += [f"# note: {note}" for note in detection.notes]
    if detection.apps:
        lines.append("apps = [")
        lines += [
            f"    {_toml_string(app.spec)},  # {app.interface.upper()}, {app.source}"
            for app in detection.apps
        ]
        lines.append("]")
    else:
        lines.append('# apps = ["mypackage.wsgi:application"]')
    slo = parse_slo(DEFAULT_SLO)
    budget_pct = parse_error_budget(DEFAULT_MAX_ERRORS) * 100
    interfaces = {app.interface for app in detection.apps}
    stacks = ["uvicorn"] if interfaces == {"asgi"} else ["gunicorn", "uvicorn"]
    lines += [
        "",
        "# The path wrk loads and the answer every server must give ({msisdn} is filled in).",
        "# Point it at a cheap, representative page of your app.",
        'path = "/"',
        "expect_status = 200",
        '# expect_json = { status = "ok" }   # compared as parsed JSON',
        '# expect_regex = "ok"',
        "",
        "# The stacks to compare (`serverbench stacks` lists them and what to install).",
        f"stacks = [{', '.join(_toml_string(s) for s in stacks)}]",
        "# Load profiles, as --profile takes them: smoke (seconds), quick (the default), seed",
        "# (minutes), or your own defined in a [tool.serverbench.profiles.NAME] table with",
        "# base, connections, duration_s, warmup_s, timeout_s, threads.",
        'profile = ["quick"]',
        "repeats = 3",
        "",
        "# The Python your servers run on: your app's virtualenv, with the servers installed",
        "# in it (pip install gunicorn uvicorn). Default: the one serverbench runs on.",
    ]
    if detection.python:
        lines.append(f"python = {_toml_string(detection.python)}")
    else:
        lines.append('# python = ".venv/bin/python"')
    lines += [
        "",
        "# The environment of every server process. Values of keys that look like secrets",
        "# (SECRET_KEY, *_TOKEN, passwords in URLs) are never written to results or reports;",
        "# better still, pass them from your shell with --env KEY.",
    ]
    if detection.env:
        pairs = ", ".join(f"{k} = {_toml_string(v)}" for k, v in detection.env.items())
        lines.append(f"env = {{ {pairs} }}")
    else:
        lines.append('# env = { DATABASE_URL = "postgresql://127.0.0.1/app" }')
    lines += [
        "",
        "# Stack settings, as --set takes them.",
        '# set = { "gunicorn.workers" = 4 }',
        "",
        "# The service level `serverbench capacity` (and the default run's capacity search)",
        "# holds each stack to: one latency percentile and the share of requests allowed to",
        "# fail; --slo and --max-errors override it. Uncommented, this is the default:",
        f"# slo = {{ p{slo.key}_ms = {slo.limit_us / 1_000:g}, error_rate_pct = {budget_pct:g} }}",
    ]
    return "\n".join(lines) + "\n"
