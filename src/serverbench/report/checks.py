"""The sanity checks: one function per rule, each listed once in a registry.

A cell rule reads one cell's `Facts` and returns the warnings it raises (a text each); its
registry entry names the warning's kind and the loops it applies to (`closed`, `open`), or none
for a rule that also reads cells that measured nothing (failed, skipped). A document rule reads
the whole run. `warnings()` runs every cell rule over every cell, in registry order, then the
document rules. Each text quotes the numbers it relies on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from serverbench.report.evidence import grouped, littles_law_gap, nagle_signature
from serverbench.report.facts import Facts, all_facts, closes_connections, label
from serverbench.report.numbers import error_breakdown, format_rate, format_us, pct, rate_range
from serverbench.results.model import Loop, ResultsDocument

ERROR_RATE_LIMIT = 0.01  # above 1 % of attempts failed: the throughput is not a capacity figure
SPREAD_LIMIT_PCT = 10.0
CLIENT_SATURATION = 0.90
SLOW_RECOVERY_S = 2.0  # a server answering the verifier later than this after the load

CHECKED = (
    "error rate above 1 %, spread between repeats above 10 %, Little's law off by more than "
    "30 % from counted requests where no timeouts, reconnects or synthetic samples explain "
    "it, a p50 near 40 ms in the low-concurrency primer, wrk above 90 % of its CPUs, shared "
    "CPUs, host limits and the doctor's checks, windows disturbed by CPU steal, foreign "
    "processes or memory pressure, cells that missed --precision, TIME_WAIT pauses, failed "
    "repeats, server processes exiting during a measurement, slow recovery after the load, "
    "listen-queue overflows"
)

ANY_LOOP: frozenset[Loop] = frozenset({"closed", "open"})
CLOSED_LOOP: frozenset[Loop] = frozenset({"closed"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SanityWarning:
    kind: str  # errors, spread, littles_law, latency_floor, client_saturated, ...
    subject: str  # the cell, or "" for the whole run
    text: str


CellRule = Callable[[ResultsDocument, Facts], list[str]]
DocumentRule = Callable[[ResultsDocument, Sequence[Facts]], list[str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class CellCheck:
    kind: str
    loops: frozenset[Loop] | None  # None: every cell, measured or not
    rule: CellRule

    def applies_to(self, facts: Facts) -> bool:
        if self.loops is None:
            return True
        return facts.ok and facts.loop in self.loops


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentCheck:
    kind: str
    rule: DocumentRule


# --- cell rules -----------------------------------------------------------------------------


def skipped(document: ResultsDocument, f: Facts) -> list[str]:
    return [f"skipped: {f.cell.skipped_reason}"] if f.cell.status == "skipped" else []


def failed_repeats(document: ResultsDocument, f: Facts) -> list[str]:
    cell = f.cell
    reasons = list(dict.fromkeys(r.splitlines()[0] for r in cell.failure_reasons))
    if cell.status == "skipped" or not reasons:
        return []
    repeats = len(cell.failed_runs) + len(cell.ok_runs)
    return [f"{len(cell.failed_runs)} of {repeats} repeats failed ({'; '.join(reasons)})"]


def error_rate(document: ResultsDocument, f: Facts) -> list[str]:
    cell = f.cell
    if cell.error_rate <= ERROR_RATE_LIMIT:
        return []
    return [
        f"{pct(cell.error_rate * 100)} of requests failed ({error_breakdown(cell)}); "
        "its req/s counts good responses only and is not a capacity figure"
    ]


def raw_rps(document: ResultsDocument, f: Facts) -> list[str]:
    raw = f.cell.raw_requests_per_sec
    if not (raw and f.rps and raw.median > f.rps * 1.01) or f.measurement is None:
        return []
    return [
        f"{f.measurement.engine}'s own Requests/sec ({raw.median:,.2f}) counts failed "
        f"responses; this report uses good responses only ({f.rps:,.2f})"
    ]


def spread(document: ResultsDocument, f: Facts) -> list[str]:
    summary = f.cell.requests_per_sec
    if not (summary and summary.count > 1 and summary.spread_pct > SPREAD_LIMIT_PCT):
        return []
    return [
        f"req/s varied {pct(summary.spread_pct)} between repeats ({rate_range(summary)}, "
        f"median {format_rate(summary.median)}); more or longer repeats would narrow it"
    ]


def littles_law(document: ResultsDocument, f: Facts) -> list[str]:
    """In a closed loop every held connection has one request in flight: L = lambda x W, from
    the requests counted, and only where nothing measured explains a gap (report/evidence.py)."""
    m, run = f.measurement, f.cell.median_run
    if m is None or run is None:
        return []
    errors = m.errors
    gap = littles_law_gap(
        requests=m.requests,
        duration_s=m.duration_s,
        mean_latency_us=m.latency_mean_us,
        latency_samples=run.wrk.latency_samples if run.wrk else m.requests,
        connections=f.wrk_connections,
        errors=errors.connect + errors.read + errors.write + errors.timeout,
        closed_loop=m.loop == "closed",
        reconnects=closes_connections(document, f.cell.stack),
    )
    if gap is None:
        return []
    return [
        f"Little's law puts {gap.in_flight:,.1f} requests in flight "
        f"({gap.requests_per_sec:,.0f} requests counted per second x "
        f"{format_us(gap.mean_latency_us)} mean) for {gap.connections:,} connections "
        f"({pct(gap.ratio * 100)}), with no timeouts, socket errors, reconnects or synthetic "
        "samples to explain it: the server did not keep every connection busy, or wrk could not"
    ]


def latency_floor(document: ResultsDocument, f: Facts) -> list[str]:
    """Nagle meeting delayed ACKs, read from the primer (a few connections), never from a p50
    under a heavy load, which is mostly the queue."""
    run = f.cell.median_run
    primer = run.primer if run is not None else None
    found = nagle_signature(primer.latency_p50_us, primer.connections) if primer else None
    return [found] if found else []


def noise(document: ResultsDocument, f: Facts) -> list[str]:
    """Each measured window the noise probe found disturbed, with its numbers."""
    return [
        f"round {run.round}: {d.text}"
        for run in f.cell.ok_runs
        if run.noise is not None
        for d in run.noise.disturbances
    ]


def client_saturated(document: ResultsDocument, f: Facts) -> list[str]:
    res = f.resources
    utilisation = res.client_utilisation if res is not None else None
    if res is None or utilisation is None or utilisation < CLIENT_SATURATION:
        return []
    return [
        f"{res.client_name} used {pct(utilisation * 100)} of its {res.client_cpus} CPU(s): "
        "the load generator may be the limit, so this is a lower bound; more CPUs for it "
        "(`--client-cpus`) measure further"
    ]


def process_exits(document: ResultsDocument, f: Facts) -> list[str]:
    found = []
    for run in (*f.cell.ok_runs, *f.cell.failed_runs):
        if run.process_exits:
            gone = ", ".join(f"{e.process} (pid {e.pid})" for e in run.process_exits)
            found.append(
                f"round {run.round}: server processes exited during the measurement: {gone}; "
                f"{run.process_restarts} new ones started"
            )
    return found


def run_warnings(document: ResultsDocument, f: Facts) -> list[str]:
    """What a run recorded about itself, e.g. a server writing its log heavily under load."""
    return [
        f"round {run.round}: {text}"
        for run in (*f.cell.ok_runs, *f.cell.failed_runs)
        for text in run.warnings
    ]


def listen_overflows(document: ResultsDocument, f: Facts) -> list[str]:
    run = f.cell.median_run
    overflows = run.kernel.get("listen_overflows", 0) if run else 0
    if run is None or not overflows:
        return []
    backlog = next(
        (v for k, v in run.settings.items() if "backlog" in k or k == "listen"),
        None,
    )
    leftover = run.leftover_connections_reset
    return [
        f"the kernel dropped {overflows:,} connections because the listen queue "
        f"was full (median repeat{f', backlog {backlog}' if backlog else ''}): the "
        "server did not accept as fast as wrk connected; a larger backlog (with "
        "net.core.somaxconn) only hides that for a while"
        + (
            f"; {leftover:,} of the load's connections were still closing when it ended "
            "(the full queue had held up their handshake or close), and were reset so that "
            "they did not reach the server after the load"
            if leftover
            else ""
        )
    ]


def slow_recovery(document: ResultsDocument, f: Facts) -> list[str]:
    return [
        f"round {run.round}: after the load the server took {run.recovery_s:.1f} s to answer "
        "a new connection (its accept queue was still full of the load's connections)"
        for run in f.cell.ok_runs
        if run.recovery_s is not None and run.recovery_s > SLOW_RECOVERY_S
    ]


def post_verify(document: ResultsDocument, f: Facts) -> list[str]:
    answers = [
        f"after the load the answer was {run.post_verify}"
        for run in f.cell.ok_runs
        if run.post_verify
    ]
    return grouped(answers, len(f.cell.ok_runs))


CELL_CHECKS: tuple[CellCheck, ...] = (
    CellCheck(kind="skipped", loops=None, rule=skipped),
    CellCheck(kind="failed", loops=None, rule=failed_repeats),
    CellCheck(kind="errors", loops=ANY_LOOP, rule=error_rate),
    CellCheck(kind="raw_rps", loops=ANY_LOOP, rule=raw_rps),
    CellCheck(kind="spread", loops=ANY_LOOP, rule=spread),
    CellCheck(kind="littles_law", loops=CLOSED_LOOP, rule=littles_law),
    CellCheck(kind="latency_floor", loops=ANY_LOOP, rule=latency_floor),
    CellCheck(kind="client_saturated", loops=ANY_LOOP, rule=client_saturated),
    CellCheck(kind="process_exits", loops=ANY_LOOP, rule=process_exits),
    CellCheck(kind="run_warnings", loops=ANY_LOOP, rule=run_warnings),
    CellCheck(kind="listen_overflows", loops=ANY_LOOP, rule=listen_overflows),
    CellCheck(kind="slow_recovery", loops=ANY_LOOP, rule=slow_recovery),
    CellCheck(kind="post_verify", loops=ANY_LOOP, rule=post_verify),
    CellCheck(kind="noise", loops=ANY_LOOP, rule=noise),
)


# --- document rules -------------------------------------------------------------------------


def approximate_histogram(document: ResultsDocument, facts: Sequence[Facts]) -> list[str]:
    approximate = [
        label(f.cell)
        for f in facts
        if f.measurement is not None and not f.measurement.latency_histogram_exact
    ]
    if not approximate:
        return []
    # one line for all: at high connection counts it is the rule, not the exception
    return [
        "the merged percentiles of "
        + ", ".join(approximate)
        + " come from histograms rebuilt from wrk's percentile grid (exact to one grid "
        "step): wrk's latency range made its exact histogram too costly to export"
    ]


def precision(document: ResultsDocument, facts: Sequence[Facts]) -> list[str]:
    """The cells --precision could not make precise enough, and what stopped each."""
    goal, outcome = document.plan.precision, document.precision
    if goal is None or outcome is None:
        return []
    return [
        f"{cell.stack} · {cell.app} · {cell.profile}: req/s did not reach ±{goal.target_pct:g} % "
        f"(--precision): {cell.why}"
        for cell in outcome.not_reached
    ]


def shared_cpus(document: ResultsDocument, facts: Sequence[Facts]) -> list[str]:
    if not document.cpu_split.shared:
        return []
    return ["wrk and the servers shared CPUs; every throughput here is a lower bound"]


def host_limits(document: ResultsDocument, facts: Sequence[Facts]) -> list[str]:
    return list(document.host_warnings)


def time_wait_pauses(document: ResultsDocument, facts: Sequence[Facts]) -> list[str]:
    def count(value: int | None) -> str:
        return f"{value:,}" if value is not None else "?"

    return [
        f"paused {event.waited_s or 0} s at {event.at or '?'} for "
        f"{count(event.time_wait_before)} TIME_WAIT sockets to drain "
        f"({count(event.time_wait_after)} left)"
        for event in document.events
        if event.kind == "time_wait_pause"
    ]


DOCUMENT_CHECKS: tuple[DocumentCheck, ...] = (
    DocumentCheck(kind="approximate_histogram", rule=approximate_histogram),
    DocumentCheck(kind="precision", rule=precision),
    DocumentCheck(kind="shared_cpus", rule=shared_cpus),
    DocumentCheck(kind="host", rule=host_limits),
    DocumentCheck(kind="time_wait", rule=time_wait_pauses),
)


def warnings(
    document: ResultsDocument, facts: Sequence[Facts] | None = None
) -> list[SanityWarning]:
    """Every rule of the registry over the document's cells, then over the whole run."""
    if facts is None:
        facts = all_facts(document)
    found: list[SanityWarning] = []
    for f in facts:
        subject = label(f.cell)
        for check in CELL_CHECKS:
            if check.applies_to(f):
                found.extend(
                    SanityWarning(kind=check.kind, subject=subject, text=text)
                    for text in check.rule(document, f)
                )
    for whole in DOCUMENT_CHECKS:
        found.extend(
            SanityWarning(kind=whole.kind, subject="", text=text)
            for text in whole.rule(document, facts)
        )
    return found
