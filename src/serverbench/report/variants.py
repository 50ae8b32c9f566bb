"""Variants and their base: what the report's "Further optimizations" section compares and
proposes.

Two kinds, both read from the records, never from names: a topology (`StackRecord.variant_of`:
nginx-gunicorn is gunicorn with a proxy in front) against its bare stack, and an app against
its twin on the same stack (`AppRecord.workload`: the same work as a sync WSGI app and as an
async ASGI app). What was measured is compared; what was not is proposed with the command that
measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from serverbench.apps.registry import BUILTIN_APPS
from serverbench.report.facts import REFERENCE_ROLE, Facts, app_workload, stack_order
from serverbench.report.numbers import format_rate, format_us, pct
from serverbench.report.uncertainty import describe_change
from serverbench.results.inference import Change, pair_by_round, paired_change
from serverbench.results.model import ResultsDocument
from serverbench.stacks import all_stacks

SYNC, ASYNC = "wsgi", "asgi"


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantDelta:
    kind: str  # "topology" or "app"
    variant: Facts
    base: Facts

    @property
    def rps_change_pct(self) -> float:
        return (self.variant.rps / self.base.rps - 1) * 100 if self.base.rps else 0.0

    @property
    def change(self) -> Change | None:
        """Variant/base paired by round: both were measured in the same shuffled rounds, so a
        slow period of the machine hits both and cancels out of each round's ratio."""
        base, variant = pair_by_round(self.base.cell.rps_by_round, self.variant.cell.rps_by_round)
        if len(base) < 2 or min(base + variant) <= 0:
            return None
        return paired_change(base, variant)

    def sentence(self) -> str:
        v, b = self.variant, self.base
        what = (
            f"{v.cell.stack} vs {b.cell.stack} ({v.cell.app}, {v.cell.profile})"
            if self.kind == "topology"
            else f"{v.cell.app} vs {b.cell.app} on {v.cell.stack} ({v.cell.profile})"
        )
        change = self.change
        verdict = (
            f"{self.rps_change_pct:+.1f} %; fewer than 2 rounds measured both: no interval"
            if change is None
            else describe_change(change)
        )
        return (
            f"{what}: {format_rate(v.rps)} vs {format_rate(b.rps)} req/s (medians), "
            f"{verdict}; p99 {format_us(v.percentile('99'))} vs "
            f"{format_us(b.percentile('99'))}; errors {pct(v.cell.error_rate * 100)} vs "
            f"{pct(b.cell.error_rate * 100)}."
        )


def _workloads(document: ResultsDocument) -> dict[str, tuple[str, str]]:
    """app -> (workload, interface): the document's own apps as recorded, and the built-in apps
    it did not run (a twin worth proposing)."""
    known: dict[str, tuple[str, str]] = {
        name: (app.workload, app.interface)
        for name, app in BUILTIN_APPS.items()
        if app.workload is not None and name not in document.apps
    }
    known.update(
        (name, (app.workload, app.interface))
        for name, app in document.apps.items()
        if app.workload is not None
    )
    return known


def twin(document: ResultsDocument, app: str, interface: str) -> str | None:
    """The app doing `app`'s work through `interface`, if one is known."""
    workloads = _workloads(document)
    mine = workloads.get(app)
    if mine is None or mine[1] == interface:
        return None
    return next((name for name, w in workloads.items() if w == (mine[0], interface)), None)


def variant_deltas(document: ResultsDocument, facts: Sequence[Facts]) -> list[VariantDelta]:
    by_key = {f.cell.key: f for f in facts if f.ok and f.cell.role != REFERENCE_ROLE}
    first_app = document.plan.apps[0] if document.plan.apps else None
    deltas: list[VariantDelta] = []
    for (stack, app, profile), f in by_key.items():
        record = document.stacks.get(stack)
        if record is not None and record.variant_of is not None:
            base = by_key.get((record.variant_of, app, profile))
            if base is not None:
                deltas.append(VariantDelta(kind="topology", variant=f, base=base))
        info = document.apps.get(app)
        sync_app = twin(document, app, SYNC) if info and info.interface == ASYNC else None
        # without a twin, an app is measured against the run's first app: the baseline and a
        # candidate measured in one run, paired by round
        paired_twins = first_app is not None and twin(document, first_app, SYNC) == app
        base_app = sync_app or (
            first_app
            if first_app != app and not paired_twins and _same_work(document, app, first_app)
            else None
        )
        if base_app is not None:
            base = by_key.get((stack, base_app, profile))
            if base is not None:
                deltas.append(VariantDelta(kind="app", variant=f, base=base))
    return deltas


def _topology_suggestion(measured: Sequence[str], app_flags: str) -> str | None:
    topologies = [(s.name, s.variant_of) for s in all_stacks() if s.variant_of is not None]
    missing = {
        bare: [name for name, base in topologies if base == bare and name not in measured]
        for bare in measured
    }
    missing = {bare: names for bare, names in missing.items() if names}
    if not missing:
        return None
    # a topology is named "<front>-<bare stack>": what it puts in front of the bare stack
    fronts = dict.fromkeys(
        name.removesuffix(f"-{bare}") for bare, names in missing.items() for name in names
    )
    front = " or ".join(fronts)
    stacks = ",".join(x for bare, names in missing.items() for x in (bare, *names))
    return (
        f"**{front} in front** (the seed's proposal for "
        + " and ".join(missing)
        + f"): {front} holds the client connections and keeps a few upstream ones busy. "
        f"Measure it: `serverbench run --stack {stacks} {app_flags}`."
    )


def _twin_suggestions(
    document: ResultsDocument,
    facts: Sequence[Facts],
    measured: Sequence[str],
    deltas: Sequence[VariantDelta],
) -> list[str]:
    compared = {d.variant.cell.stack for d in deltas if d.kind == "app"}
    pairs: dict[tuple[str, str], list[str]] = {}
    for stack in measured:
        record = document.stacks.get(stack)
        if record is None or not {SYNC, ASYNC} <= set(record.interfaces) or stack in compared:
            continue
        for app in dict.fromkeys(f.cell.app for f in facts if f.cell.stack == stack):
            info = document.apps.get(app)
            interface = info.interface if info else None
            other = twin(document, app, ASYNC if interface == SYNC else SYNC)
            if info is not None and other is not None:
                pair = (app, other) if interface == SYNC else (other, app)
                pairs.setdefault(pair, []).append(stack)
    return [
        f"**An asynchronous framework on {' and '.join(stacks)}** (the seed's proposal): the "
        f"same workload as an ASGI app ({async_app}) instead of the WSGI one ({sync_app}). "
        f"Measure it: `serverbench run --stack {','.join(stacks)} --app {sync_app} "
        f"--app {async_app}`."
        + (
            ""
            if _waits(document, sync_app)
            else " An event loop pays off only when requests wait, which this app never does: "
            f"`serverbench run --stack {','.join(stacks)} --app io-wait --app db` measures both "
            "variants of waiting workloads."
        )
        for (sync_app, async_app), stacks in pairs.items()
    ]


def _same_work(document: ResultsDocument, app: str, other: str | None) -> bool:
    """Whether two apps may do the same work: not two different built-in workloads (db and
    io-wait are no baseline and candidate of each other)."""
    a = app_workload(document, app)
    b = app_workload(document, other) if other is not None else None
    return a is None or b is None or a == b


def _waits(document: ResultsDocument, app: str) -> bool:
    """Whether the app's requests wait on I/O (a built-in waiting workload)."""
    workload = app_workload(document, app)
    return workload is not None and not workload.cpu_bound


def _processes_suggestions(
    document: ResultsDocument, facts: Sequence[Facts], measured: Sequence[str], app_flags: str
) -> list[str]:
    server_cpus = len(document.cpu_split.server_cpus)
    if server_cpus <= 1:
        return []
    found = []
    for stack in measured:
        run = next(
            (f.cell.median_run for f in facts if f.cell.stack == stack and f.cell.median_run),
            None,
        )
        if run is not None and run.settings.get("processes") == 1:
            found.append(
                f"**Several {stack} processes**: one process used at most one of the "
                f"{server_cpus} server CPUs. Measure it: `serverbench run --stack {stack} "
                f"--set {stack}.processes={server_cpus} {app_flags}`."
            )
    return found


def suggestions(
    document: ResultsDocument, facts: Sequence[Facts], deltas: Sequence[VariantDelta]
) -> list[str]:
    """Variants of the measured stacks and apps that were not measured, each with its command."""
    present = {f.cell.stack for f in facts if f.cell.role != REFERENCE_ROLE}
    measured = [s for s in stack_order(document) if s in present]
    app_flags = " ".join(f"--app {a}" for a in sorted({f.cell.app for f in facts}))
    topology = _topology_suggestion(measured, app_flags)
    return [
        *([topology] if topology else []),
        *_twin_suggestions(document, facts, measured, deltas),
        *_processes_suggestions(document, facts, measured, app_flags),
    ]
