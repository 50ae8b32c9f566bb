"""The results file: the one input of every report and comparison.

`results.json` is a JSON document, rewritten atomically (temporary file in the same folder,
fsync, rename) after every measured run, so a crash or Ctrl-C never leaves it half-written
and never loses a finished measurement.

Format history (SCHEMA_VERSION):
    1 - first version: environment, cpu split, host limits, plan, apps, stacks, references
        (app in-process cost, nginx-static ceiling), runs (one per stack x app x profile x
        repeat, with wrk measurement, derived throughput, resource usage, failure), events.
        Optional run fields, absent in the earliest files: process_exits, process_restarts,
        recovery_s, kernel (listen-queue counters over the measured window).
    2 - the built-in apps moved from `serverbench.seedapps` to `serverbench.apps.builtin`; their
        import strings in `apps` follow.

Loading a file of a newer schema is refused; older schemas are migrated step by step by the
`_MIGRATIONS` chain.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serverbench.errors import ResultsError

SCHEMA_VERSION = 2
RESULTS_NAME = "results.json"

Document = dict[str, Any]


def _builtin_apps_moved(document: Document) -> Document:
    for app in document.get("apps", {}).values():
        if isinstance(app, dict) and isinstance(app.get("import_string"), str):
            app["import_string"] = app["import_string"].replace(
                "serverbench.seedapps.", "serverbench.apps.builtin.", 1
            )
    document["schema_version"] = 2
    return document


_MIGRATIONS: dict[int, Callable[[Document], Document]] = {1: _builtin_apps_moved}


def save(document: Document, path: Path) -> None:
    document["schema_version"] = SCHEMA_VERSION
    text = json.dumps(document, indent=1, sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".results-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def results_path(path: Path) -> Path:
    """Accept either the results file or the folder that holds it."""
    return path / RESULTS_NAME if path.is_dir() else path


def load(path: Path) -> Document:
    path = results_path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ResultsError(
            f"{path} does not exist; give a results.json written by `serverbench run`"
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ResultsError(
            f"{path} is not valid JSON ({error}); was it written by serverbench?"
        ) from None
    if not isinstance(document, dict) or "schema_version" not in document:
        raise ResultsError(f"{path} is not a serverbench results file (no schema_version)")
    version = document["schema_version"]
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ResultsError(
            f"{path} has schema version {version}, newer than this serverbench understands "
            f"({SCHEMA_VERSION}); upgrade serverbench to read it"
        )
    while document["schema_version"] < SCHEMA_VERSION:
        migrate = _MIGRATIONS.get(document["schema_version"])
        if migrate is None:
            raise ResultsError(
                f"{path} has schema version {version}, which this serverbench can no longer read"
            )
        document = migrate(document)
    result: Document = document
    return result
