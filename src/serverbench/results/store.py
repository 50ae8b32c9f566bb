"""The results file: reading and writing results.json, its schema history and migrations.

`results.json` is the one input of every report and comparison. It is rewritten atomically
(temporary file in the same folder, fsync, rename) after every measured run, so a crash or
Ctrl-C never leaves it half-written and never loses a finished measurement. On load it is
validated against the typed model (`serverbench.results.model`): a bad field is named.

Format history (SCHEMA_VERSION):
    1 - first version: environment, cpu split, host limits, plan, apps, stacks, references
        (app in-process cost, nginx-static ceiling), runs (one per stack x app x profile x
        repeat, with wrk measurement, derived throughput, resource usage, failure), events.
        Optional run fields, absent in the earliest files: process_exits, process_restarts,
        recovery_s, kernel (listen-queue counters over the measured window).
    2 - the built-in apps moved from `serverbench.seedapps` to `serverbench.apps.builtin`; their
        import strings in `apps` follow.
    3 - engine-neutral measurements: a run's `measurement` (engine, closed or open loop,
        requests, good responses, errors by kind, rates, latency percentiles and histogram)
        replaces `derived` and wrk's counts; `wrk` keeps only what wrk alone knows (its
        latency and per-thread spreads); `wrk_argv` is `load_argv`. Stacks record
        `variant_of` and `keeps_alive`, apps their `workload`. Optional, absent in earlier
        version-3 files: a run's `primer` and `noise`, the document's `doctor` findings and
        `precision` outcome, the plan's `precision` goal; a run's `logs` (bytes each server wrote
        to its log) and `warnings`; an `owner_gone` event's owner and leftovers.
        Optional top-level `capacity` (a capacity run, or a run with --capacity): its plan and
        one search per stack x app (peak_rps, settings, every step's observation and verdict,
        the outcome once it ended); its plan's `sources` (where the SLO and the error budget
        came from: a flag, the project file's `slo`, or the default), absent in earlier files;
        a step observation's `server_cpus_foreign` (the share of the server's CPUs processes
        outside the benchmark took; in earlier files none, so no step reads as contended);
        the plan's `repeats` and a search's `repeat` (`capacity --repeats`; earlier: 1); a step
        observation's `requests` and `latency_histogram_hdr`, an outcome's `pooled` and
        `latency_at_capacity_us` (a confirmed rate judged on all its measurements' requests
        together; earlier files have none, so their rates replay as each-must-pass).
        The capacity plan's `max_backoffs` (failed confirmations a search survives; absent
        in earlier files, whose searches ran with 3).
        A run's `leftover_connections_reset` (the load generator's connections still closing
        when its window ended, reset by serverbench; absent in earlier files, which did not).

Loading a file of a newer schema is refused; older schemas are migrated step by step by the
`_MIGRATIONS` chain, on the raw JSON, before the typed model reads them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from serverbench.errors import ResultsError
from serverbench.results.model import ResultsDocument

SCHEMA_VERSION = 3
RESULTS_NAME = "results.json"

RawDocument = dict[str, Any]


def _builtin_apps_moved(document: RawDocument) -> RawDocument:
    for app in document.get("apps", {}).values():
        if isinstance(app, dict) and isinstance(app.get("import_string"), str):
            app["import_string"] = app["import_string"].replace(
                "serverbench.seedapps.", "serverbench.apps.builtin.", 1
            )
    document["schema_version"] = 2
    return document


def _measurement_from_wrk(run: RawDocument, connections: int) -> RawDocument:
    wrk, derived = run["wrk"], run.get("derived") or {}
    socket_errors = wrk.get("socket_errors") or {}
    latency = wrk.get("latency_us") or {}
    duration_s = float(wrk["duration_s"])
    requests = int(wrk["requests"])
    status = int(wrk.get("non_2xx_3xx", 0))
    good = int(derived.get("good_responses", max(0, requests - status)))

    def rate(count: float) -> float:
        return count / duration_s if duration_s > 0 else 0.0

    return {
        "engine": "wrk",
        "loop": "closed",
        "duration_s": duration_s,
        "connections": connections,
        "requests": requests,
        "good_responses": good,
        "errors": {**socket_errors, "status": status},
        "bytes_read": int(wrk.get("bytes_read", 0)),
        "requests_per_sec": derived.get("requests_per_sec", rate(good)),
        "raw_requests_per_sec": derived.get("raw_requests_per_sec", rate(requests)),
        "transfer_bytes_per_sec": derived.get(
            "transfer_bytes_per_sec", rate(int(wrk.get("bytes_read", 0)))
        ),
        "latency_percentiles_us": wrk.get("latency_percentiles_us") or {},
        "latency_mean_us": latency.get("mean"),
        "latency_max_us": latency.get("max"),
        "latency_histogram_hdr": wrk.get("histogram_hdr"),
        "latency_histogram_exact": bool(wrk.get("histogram_exact", True)),
    }


_VARIANTS = {"nginx-gunicorn": "gunicorn", "nginx-bjoern": "bjoern"}


def _engine_neutral(document: RawDocument) -> RawDocument:
    profiles = document.get("plan", {}).get("profiles", [])
    connections = {p.get("name"): int(p.get("connections", 0)) for p in profiles}
    for run in document.get("runs", []):
        if run.get("wrk"):
            run["measurement"] = _measurement_from_wrk(run, connections.get(run["profile"], 0))
            wrk = run["wrk"]
            run["wrk"] = {
                "latency_us": wrk.get("latency_us"),
                "thread_rps": wrk.get("thread_rps"),
                "latency_samples": wrk.get("latency_samples", 0),
            }
        run.pop("derived", None)
        if "wrk_argv" in run:
            run["load_argv"] = run.pop("wrk_argv")
    # what the stacks and apps of those versions declare now, so their reports read the same
    for name, stack in document.get("stacks", {}).items():
        stack.setdefault("variant_of", _VARIANTS.get(name))
        stack.setdefault("keeps_alive", name != "gunicorn")
    for name, app in document.get("apps", {}).items():
        if name in ("seed-flask", "seed-fastapi"):
            app.setdefault("workload", "seed")
    document["schema_version"] = 3
    return document


_MIGRATIONS: dict[int, Callable[[RawDocument], RawDocument]] = {
    1: _builtin_apps_moved,
    2: _engine_neutral,
}

_ENCODER = msgspec.json.Encoder()


def encode(document: ResultsDocument) -> bytes:
    document.schema_version = SCHEMA_VERSION
    return msgspec.json.format(_ENCODER.encode(document), indent=1)


def save(document: ResultsDocument, path: Path) -> None:
    text = encode(document)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".results-", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise ResultsError(
            f"cannot write {path} ({error.strerror}); choose a results folder you can write (--out)"
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise ResultsError(
            f"cannot write {path} ({error.strerror}); free some space or choose another --out"
        ) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def results_path(path: Path) -> Path:
    """Accept either the results file or the folder that holds it."""
    return path / RESULTS_NAME if path.is_dir() else path


def load(path: Path) -> ResultsDocument:
    path = results_path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ResultsError(
            f"{path} does not exist; give a results.json written by `serverbench run`"
        ) from None
    try:
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as error:
        raise ResultsError(
            f"{path} is not valid JSON ({error}); was it written by serverbench?"
        ) from None
    return from_raw(raw, str(path))


def from_raw(raw: object, where: str = "the results") -> ResultsDocument:
    """The typed document from parsed JSON of any known schema, migrated and validated."""
    if not isinstance(raw, dict) or "schema_version" not in raw:
        raise ResultsError(f"{where} is not a serverbench results file (no schema_version)")
    version = raw["schema_version"]
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ResultsError(
            f"{where} has schema version {version}, newer than this serverbench understands "
            f"({SCHEMA_VERSION}); upgrade serverbench to read it"
        )
    while raw["schema_version"] < SCHEMA_VERSION:
        migrate = _MIGRATIONS.get(raw["schema_version"])
        if migrate is None:
            raise ResultsError(
                f"{where} has schema version {version}, which this serverbench can no longer read"
            )
        try:
            raw = migrate(raw)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ResultsError(
                f"{where} (schema version {version}) is damaged and cannot be migrated "
                f"({type(error).__name__}: {error}); re-run the benchmark"
            ) from None
    try:
        return msgspec.convert(raw, ResultsDocument)
    except msgspec.ValidationError as error:
        raise ResultsError(
            f"{where} does not match the results schema: {error}; the file is damaged or was "
            "edited by hand (docs/results.schema.json describes every field)"
        ) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of results.json, generated from the typed model."""
    schema: dict[str, Any] = msgspec.json.schema(ResultsDocument)
    schema["title"] = f"serverbench results.json, schema version {SCHEMA_VERSION}"
    return schema
