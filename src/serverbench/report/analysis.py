"""Rule-based reading of a results document: per-cell facts, sanity warnings, per-stack
strengths and weaknesses, variant comparisons and the ranking.

Every sentence is produced by a rule from numbers in the results file and quotes the numbers it
relies on, so a reader can check it against the tables. Nothing here measures or guesses:
a rule that lacks its inputs (one profile only, no ceiling, no resource samples) stays silent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from serverbench.report.console import format_rate, format_us
from serverbench.results.aggregate import Cell, cells, throughput_order
from serverbench.results.stats import littles_law_connections, separated
from serverbench.results.store import Document

ERROR_RATE_LIMIT = 0.01  # above 1 % of attempts failed: the throughput is not a capacity figure
SPREAD_LIMIT_PCT = 10.0
LITTLE_TOLERANCE = 0.30
LATENCY_FLOOR_US = (35_000.0, 50_000.0)  # Nagle + delayed ACK shows up as a ~40 ms p50
CLIENT_SATURATION = 0.90
CPU_BOUND = 0.85
CPU_IDLE = 0.60
SCALING_TOLERANCE_PCT = 10.0
SLOW_RECOVERY_S = 2.0  # a server answering the verifier later than this after the load
TIGHT_TAIL = 3.0
LONG_TAIL = 10.0
REFERENCE_ROLE = "reference"


def pct(value: float) -> str:
    return f"{value:.1f} %"


def mib(value_bytes: float) -> str:
    return f"{value_bytes / 2**20:.1f} MiB"


def label(cell: Cell) -> str:
    return f"{cell.stack} · {cell.app} · {cell.profile}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """What the median repeat used: the server's components and wrk."""

    window_s: float
    server_cpu_s: float
    server_cpus: int
    rss_peak_bytes: dict[str, int]  # per server component
    client_cpu_percent: float | None  # wrk's mean, 100 = one CPU
    client_cpus: int
    client_connections: int | None  # established connections wrk held at most

    @property
    def server_utilisation(self) -> float:
        available = self.window_s * self.server_cpus
        return self.server_cpu_s / available if available > 0 else 0.0

    @property
    def client_utilisation(self) -> float | None:
        if self.client_cpu_percent is None or self.client_cpus == 0:
            return None
        return self.client_cpu_percent / (100.0 * self.client_cpus)


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """One cell with the numbers the rules read, derived once."""

    cell: Cell
    profile: dict[str, Any]
    resources: Resources | None

    @property
    def ok(self) -> bool:
        return self.cell.requests_per_sec is not None

    @property
    def rps(self) -> float:
        return self.cell.requests_per_sec.median if self.cell.requests_per_sec else 0.0

    @property
    def connections(self) -> int:
        return int(self.profile.get("connections", 0))

    @property
    def threads(self) -> int:
        return int(self.profile.get("threads", 1))

    @property
    def wrk_connections(self) -> int:
        """wrk opens connections // threads per thread, so a remainder is never opened."""
        return (self.connections // max(1, self.threads)) * max(1, self.threads)

    def percentile(self, key: str) -> float | None:
        return self.cell.latency_percentiles_us.get(key)

    @property
    def mean_latency_us(self) -> float | None:
        run = self.cell.median_run
        if run is None:
            return None
        mean = run["wrk"]["latency_us"].get("mean")
        return float(mean) if mean is not None else None

    @property
    def median_raw_rps(self) -> float:
        run = self.cell.median_run
        return float(run["derived"]["raw_requests_per_sec"]) if run else 0.0

    @property
    def tail_ratio(self) -> float | None:
        p50, p99 = self.percentile("50"), self.percentile("99")
        return p99 / p50 if p50 and p99 else None

    @property
    def requests_per_cpu_s(self) -> float | None:
        run, res = self.cell.median_run, self.resources
        if run is None or res is None or res.server_cpu_s <= 0:
            return None
        return float(run["derived"]["good_responses"]) / res.server_cpu_s


def _resources(run: Mapping[str, Any] | None, document: Document) -> Resources | None:
    if run is None or not run.get("usage") or not run["usage"].get("server"):
        return None
    server = run["usage"]["server"]
    client = run["usage"].get("client") or {}
    wrk = next((c for c in client.get("components", []) if c["name"] == "wrk"), None)
    split = document.get("cpu_split") or {}
    return Resources(
        window_s=float(server["window_s"]),
        server_cpu_s=sum(float(c["cpu_seconds"]) for c in server["components"]),
        server_cpus=len(split.get("server_cpus", [])) or 1,
        rss_peak_bytes={c["name"]: int(c["rss_peak_bytes"]) for c in server["components"]},
        client_cpu_percent=float(wrk["cpu_percent_mean"]) if wrk else None,
        client_cpus=len(split.get("client_cpus", [])) or 1,
        client_connections=int(wrk["connections_max"]) if wrk else None,
    )


def profiles_by_name(document: Document) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in document.get("plan", {}).get("profiles", [])}


def all_facts(document: Document) -> list[Facts]:
    profiles = profiles_by_name(document)
    return [
        Facts(
            cell=cell,
            profile=profiles.get(cell.profile, {}),
            resources=_resources(cell.median_run, document),
        )
        for cell in cells(document)
    ]


def profile_order(document: Document) -> list[str]:
    """Lighter to heavier: by connections, then by the plan's order."""
    plan = document.get("plan", {}).get("profiles", [])
    ranked = sorted(enumerate(plan), key=lambda item: (int(item[1]["connections"]), item[0]))
    return [p["name"] for _, p in ranked]


def stack_order(document: Document) -> list[str]:
    names = list(document.get("plan", {}).get("stacks", []))
    for run in document.get("runs", []):
        if run["stack"] not in names and run.get("role") != REFERENCE_ROLE:
            names.append(run["stack"])
    return names


def ceiling_for(facts: Sequence[Facts], profile: str) -> Facts | None:
    return next(
        (f for f in facts if f.cell.role == REFERENCE_ROLE and f.cell.profile == profile and f.ok),
        None,
    )


def app_rate(document: Document, app: str) -> float | None:
    cost = document.get("references", {}).get("app_cost", {}).get(app) or {}
    rate = cost.get("calls_per_sec")
    return float(rate) if rate else None


def app_cost_us(document: Document, app: str) -> float | None:
    cost = document.get("references", {}).get("app_cost", {}).get(app) or {}
    per_call = cost.get("per_call_us")
    return float(per_call) if per_call else None


def closes_connections(document: Document, stack: str) -> bool:
    model = str(document.get("stacks", {}).get(stack, {}).get("model", ""))
    return "closes the connection" in model or "no keep-alive" in model


# --- sanity warnings ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SanityWarning:
    kind: str  # errors, spread, littles_law, latency_floor, client_saturated, ...
    subject: str  # the cell, or "" for the whole run
    text: str


def error_breakdown(cell: Cell) -> str:
    parts = [f"{kind} {count:,}" for kind, count in cell.socket_errors.items() if count]
    if cell.non_2xx_3xx:
        parts.append(f"non-2xx/3xx {cell.non_2xx_3xx:,}")
    return ", ".join(parts) if parts else "none"


def littles_law(f: Facts) -> tuple[float, int] | None:
    """(requests in flight by L = lambda x W, connections wrk held) for the median repeat."""
    mean = f.mean_latency_us
    if not f.ok or mean is None or f.median_raw_rps <= 0:
        return None
    held = f.wrk_connections
    return littles_law_connections(f.median_raw_rps, mean), held


def _little_reason(document: Document, f: Facts, above: bool) -> str:
    run = f.cell.median_run or {}
    samples = int(run.get("wrk", {}).get("latency_samples", 0))
    requests = int(run.get("wrk", {}).get("requests", 0))
    if above:
        if samples > requests:
            return (
                f"wrk's coordinated-omission correction added {samples - requests:,} synthetic "
                f"samples to {requests:,} requests, which raises the mean latency"
            )
        return "the mean latency is higher than the loop can explain; check wrk's output"
    if closes_connections(document, f.cell.stack):
        return (
            f"{f.cell.stack} closes the connection after every response, so part of each cycle "
            "is wrk reconnecting, which its latency does not time; the loop is still closed"
        )
    return (
        "responses past the timeout and failed connections are outside wrk's histogram, or "
        "the server did not keep every connection busy"
    )


def warnings(document: Document, facts: Sequence[Facts]) -> list[SanityWarning]:
    found: list[SanityWarning] = []
    for f in facts:
        cell, name = f.cell, label(f.cell)
        if cell.status == "skipped":
            found.append(
                SanityWarning(kind="skipped", subject=name, text=f"skipped: {cell.skipped_reason}")
            )
            continue
        reasons = list(dict.fromkeys(r.splitlines()[0] for r in cell.failure_reasons))
        if reasons:
            repeats = len(cell.failed_runs) + len(cell.ok_runs)
            found.append(
                SanityWarning(
                    kind="failed",
                    subject=name,
                    text=f"{len(cell.failed_runs)} of {repeats} repeats failed ({'; '.join(reasons)})",
                )
            )
        if not f.ok:
            continue
        if cell.error_rate > ERROR_RATE_LIMIT:
            found.append(
                SanityWarning(
                    kind="errors",
                    subject=name,
                    text=f"{pct(cell.error_rate * 100)} of requests failed ({error_breakdown(cell)}); "
                    "its req/s counts good responses only and is not a capacity figure",
                )
            )
        raw = cell.raw_requests_per_sec
        if raw and f.rps and raw.median > f.rps * 1.01:
            found.append(
                SanityWarning(
                    kind="raw_rps",
                    subject=name,
                    text=f"wrk's own Requests/sec ({raw.median:,.2f}) counts failed responses; "
                    f"this report uses good responses only ({f.rps:,.2f})",
                )
            )
        summary = cell.requests_per_sec
        if summary and summary.count > 1 and summary.spread_pct > SPREAD_LIMIT_PCT:
            found.append(
                SanityWarning(
                    kind="spread",
                    subject=name,
                    text=f"req/s varied {pct(summary.spread_pct)} between repeats "
                    f"({format_rate(summary.minimum)}-{format_rate(summary.maximum)}, "
                    f"median {format_rate(summary.median)}); more or longer repeats would narrow it",
                )
            )
        little = littles_law(f)
        if little is not None:
            in_flight, held = little
            if held and abs(in_flight / held - 1) > LITTLE_TOLERANCE:
                why = _little_reason(document, f, in_flight > held)
                established = f.resources.client_connections if f.resources else None
                sampled = (
                    f"; wrk held at most {established:,} established when sampled"
                    if established is not None and established < held
                    else ""
                )
                found.append(
                    SanityWarning(
                        kind="littles_law",
                        subject=name,
                        text=f"Little's law puts {in_flight:,.1f} requests in flight "
                        f"({f.median_raw_rps:,.0f} req/s x {format_us(f.mean_latency_us)} mean) "
                        f"for {held:,} connections ({pct(in_flight / held * 100)}{sampled}): {why}",
                    )
                )
        p50 = f.percentile("50")
        if p50 is not None and LATENCY_FLOOR_US[0] <= p50 <= LATENCY_FLOOR_US[1]:
            found.append(
                SanityWarning(
                    kind="latency_floor",
                    subject=name,
                    text=f"p50 is {format_us(p50)}, near 40 ms: the signature of Nagle's algorithm "
                    "meeting delayed ACKs (a response written in two segments without TCP_NODELAY)",
                )
            )
        res = f.resources
        utilisation = res.client_utilisation if res is not None else None
        if res is not None and utilisation is not None and utilisation >= CLIENT_SATURATION:
            found.append(
                SanityWarning(
                    kind="client_saturated",
                    subject=name,
                    text=f"wrk used {pct(utilisation * 100)} of its "
                    f"{res.client_cpus} CPU(s): the load generator may be the limit, "
                    "so this is a lower bound",
                )
            )
        for r in (*cell.ok_runs, *cell.failed_runs):
            exits = r.get("process_exits") or []
            if exits:
                gone = ", ".join(f"{e['process']} (pid {e['pid']})" for e in exits)
                found.append(
                    SanityWarning(
                        kind="process_exits",
                        subject=name,
                        text=f"round {r['round']}: server processes exited during the "
                        f"measurement: {gone}; {r.get('process_restarts', 0)} new ones started",
                    )
                )
        median = cell.median_run or {}
        overflows = (median.get("kernel") or {}).get("listen_overflows", 0)
        if overflows:
            backlog = next(
                (
                    v
                    for k, v in (median.get("settings") or {}).items()
                    if "backlog" in k or k == "listen"
                ),
                None,
            )
            found.append(
                SanityWarning(
                    kind="listen_overflows",
                    subject=name,
                    text=f"the kernel dropped {overflows:,} connections because the listen queue "
                    f"was full (median repeat{f', backlog {backlog}' if backlog else ''}): the "
                    "server did not accept as fast as wrk connected; a larger backlog (with "
                    "net.core.somaxconn) only hides that for a while",
                )
            )
        for r in cell.ok_runs:
            recovery_s = r.get("recovery_s") or 0.0
            if recovery_s > SLOW_RECOVERY_S:
                found.append(
                    SanityWarning(
                        kind="slow_recovery",
                        subject=name,
                        text=f"round {r['round']}: after the load the server took "
                        f"{recovery_s:.1f} s to answer a new connection (its accept queue "
                        "was still full of the load's connections)",
                    )
                )
            if r.get("post_verify"):
                found.append(
                    SanityWarning(
                        kind="post_verify",
                        subject=name,
                        text=f"round {r['round']}: after the load the answer was {r['post_verify']}",
                    )
                )
    approximate = [
        label(f.cell)
        for f in facts
        if (f.cell.median_run or {}).get("wrk", {}).get("histogram_exact") is False
    ]
    if approximate:
        # one line for all: at high connection counts it is the rule, not the exception
        found.append(
            SanityWarning(
                kind="approximate_histogram",
                subject="",
                text="the merged percentiles of "
                + ", ".join(approximate)
                + " come from histograms rebuilt from wrk's percentile grid (exact to one grid "
                "step): wrk's latency range made its exact histogram too costly to export",
            )
        )
    split = document.get("cpu_split") or {}
    if split.get("shared"):
        found.append(
            SanityWarning(
                kind="shared_cpus",
                subject="",
                text="wrk and the servers shared CPUs; every throughput here is a lower bound",
            )
        )
    for text in document.get("host_warnings", []):
        found.append(SanityWarning(kind="host", subject="", text=str(text)))
    for event in document.get("events", []):
        if event.get("kind") == "time_wait_pause":
            found.append(
                SanityWarning(
                    kind="time_wait",
                    subject="",
                    text=f"paused {event.get('waited_s', 0)} s at {event.get('at', '?')} for "
                    f"{event.get('time_wait_before', '?'):,} TIME_WAIT sockets to drain "
                    f"({event.get('time_wait_after', '?'):,} left)",
                )
            )
    return found


# --- per-stack analysis ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StackAnalysis:
    stack: str
    strengths: tuple[str, ...]
    weaknesses: tuple[str, ...]
    reasons: tuple[str, ...]
    resources: tuple[str, ...]


def _peers(facts: Sequence[Facts], app: str, profile: str) -> list[Facts]:
    return [
        f
        for f in facts
        if f.ok
        and f.cell.role != REFERENCE_ROLE
        and f.cell.app == app
        and f.cell.profile == profile
    ]


def _ranking_sentences(
    mine: Facts, peers: Sequence[Facts], strengths: list[str], weaknesses: list[str]
) -> None:
    if len(peers) < 2:
        return
    where = f"{mine.cell.app}, {mine.cell.profile} ({mine.connections:,} connections)"
    by_rps = sorted(peers, key=lambda f: -f.rps)
    if by_rps[0] is mine:
        runner_up = by_rps[1]
        strengths.append(
            f"Highest throughput for {where}: {format_rate(mine.rps)} req/s, "
            f"{mine.rps / runner_up.rps:.2f}x {runner_up.cell.stack} ({format_rate(runner_up.rps)})."
            if runner_up.rps > 0
            else f"Highest throughput for {where}: {format_rate(mine.rps)} req/s."
        )
    elif by_rps[-1] is mine:
        best = by_rps[0]
        weaknesses.append(
            f"Lowest throughput for {where}: {format_rate(mine.rps)} req/s against "
            f"{format_rate(best.rps)} for {best.cell.stack} ({pct(mine.rps / best.rps * 100)} of it)."
        )
    with_p99 = [f for f in peers if f.percentile("99") is not None]
    if len(with_p99) < 2 or mine.percentile("99") is None:
        return
    by_p99 = sorted(with_p99, key=lambda f: f.percentile("99") or 0.0)
    if by_p99[0] is mine:
        strengths.append(
            f"Lowest p99 latency for {where}: {format_us(mine.percentile('99'))} "
            f"(next: {by_p99[1].cell.stack} at {format_us(by_p99[1].percentile('99'))})."
        )
    elif by_p99[-1] is mine:
        weaknesses.append(
            f"Highest p99 latency for {where}: {format_us(mine.percentile('99'))} "
            f"(best: {by_p99[0].cell.stack} at {format_us(by_p99[0].percentile('99'))})."
        )


def _scaling_sentence(
    light: Facts, heavy: Facts, strengths: list[str], weaknesses: list[str]
) -> None:
    change = (heavy.rps / light.rps - 1) * 100 if light.rps else 0.0
    p99_light, p99_heavy = light.percentile("99"), heavy.percentile("99")
    latency = (
        f"; p99 goes from {format_us(p99_light)} to {format_us(p99_heavy)}"
        if p99_light and p99_heavy
        else ""
    )
    text = (
        f"{light.cell.app}: from {light.cell.profile} ({light.connections:,} connections, "
        f"{format_rate(light.rps)} req/s) to {heavy.cell.profile} ({heavy.connections:,} "
        f"connections, {format_rate(heavy.rps)} req/s) throughput changes by {change:+.1f} %"
        f"{latency}."
    )
    if change < -SCALING_TOLERANCE_PCT:
        weaknesses.append(f"Loses throughput under heavier load. {text}")
    else:
        strengths.append(f"Holds its throughput under heavier load. {text}")


def analyse_stack(document: Document, facts: Sequence[Facts], stack: str) -> StackAnalysis:
    strengths: list[str] = []
    weaknesses: list[str] = []
    reasons: list[str] = []
    resources: list[str] = []
    mine = [f for f in facts if f.cell.stack == stack and f.cell.role != REFERENCE_ROLE]
    order = profile_order(document)
    apps = list(dict.fromkeys(f.cell.app for f in mine))
    for app in apps:
        ok = sorted(
            (f for f in mine if f.cell.app == app and f.ok),
            key=lambda f: order.index(f.cell.profile) if f.cell.profile in order else 0,
        )
        for f in ok:
            _ranking_sentences(f, _peers(facts, app, f.cell.profile), strengths, weaknesses)
        if len(ok) >= 2 and ok[0].connections != ok[-1].connections:
            _scaling_sentence(ok[0], ok[-1], strengths, weaknesses)
        for f in ok:
            _cell_sentences(document, facts, f, strengths, weaknesses, reasons, resources)
        for f in mine:
            if f.cell.app == app and not f.ok:
                reason = f.cell.skipped_reason or (f.cell.failure_reasons or ["no result"])[0]
                weaknesses.append(
                    f"{f.cell.status.capitalize()} for {app}, {f.cell.profile}: {reason.splitlines()[0]}"
                )
    model = document.get("stacks", {}).get(stack, {}).get("model")
    if model:
        reasons.insert(0, f"Model: {model}.")
    notes = sorted({n for f in mine for r in f.cell.ok_runs[:1] for n in r.get("notes", [])})
    reasons.extend(f"Note from the run: {n}." for n in notes)
    return StackAnalysis(
        stack=stack,
        strengths=tuple(strengths),
        weaknesses=tuple(weaknesses),
        reasons=tuple(reasons),
        resources=tuple(resources),
    )


def _cell_sentences(
    document: Document,
    facts: Sequence[Facts],
    f: Facts,
    strengths: list[str],
    weaknesses: list[str],
    reasons: list[str],
    resources: list[str],
) -> None:
    cell = f.cell
    where = f"{cell.app}, {cell.profile}"
    if cell.errors == 0:
        strengths.append(
            f"No errors for {where}: {cell.good_responses:,} good responses, no socket errors, "
            "no non-2xx answers."
        )
    elif cell.error_rate > ERROR_RATE_LIMIT:
        weaknesses.append(
            f"{pct(cell.error_rate * 100)} of requests failed for {where} ({error_breakdown(cell)} "
            f"against {cell.good_responses:,} good responses)."
        )
    else:
        weaknesses.append(
            f"A few errors for {where}: {cell.errors:,} ({pct(cell.error_rate * 100)}; "
            f"{error_breakdown(cell)})."
        )
    tail = f.tail_ratio
    if tail is not None:
        numbers = f"p99 {format_us(f.percentile('99'))} is {tail:.1f}x p50 {format_us(f.percentile('50'))}"
        if tail <= TIGHT_TAIL:
            strengths.append(f"Tight latency distribution for {where}: {numbers}.")
        elif tail >= LONG_TAIL:
            weaknesses.append(f"Long latency tail for {where}: {numbers}.")
    summary = cell.requests_per_sec
    if summary and summary.count > 1 and summary.spread_pct > SPREAD_LIMIT_PCT:
        weaknesses.append(
            f"Unsteady between repeats for {where}: req/s ranged {format_rate(summary.minimum)}-"
            f"{format_rate(summary.maximum)} ({pct(summary.spread_pct)} of the median)."
        )
    shares = []
    ceiling = ceiling_for(facts, cell.profile)
    if ceiling is not None and ceiling.rps > 0:
        shares.append(
            f"{pct(f.rps / ceiling.rps * 100)} of the nginx-static ceiling "
            f"({format_rate(ceiling.rps)} req/s)"
        )
    rate = app_rate(document, cell.app)
    res = f.resources
    if rate:
        cpus = res.server_cpus if res else 1
        shares.append(
            f"{pct(f.rps / (rate * cpus) * 100)} of the app's in-process limit "
            f"({format_rate(rate)} calls/s per CPU x {cpus} server CPU(s))"
        )
    if shares:
        reasons.append(
            f"For {where} it served {format_rate(f.rps)} req/s: " + " and ".join(shares) + "."
        )
    if res is None:
        return
    util = res.server_utilisation
    per_cpu = f.requests_per_cpu_s
    if util >= CPU_BOUND and per_cpu:
        cost_us = 1e6 / per_cpu
        app_us = app_cost_us(document, cell.app)
        split = (
            f"; the app itself needs {format_us(app_us)} of it ({pct(app_us / cost_us * 100)}), "
            "the rest is the server, HTTP parsing and the sockets"
            if app_us
            else ""
        )
        reasons.append(
            f"CPU-bound for {where}: the server used {pct(util * 100)} of its "
            f"{res.server_cpus} CPU(s), {format_us(cost_us)} of CPU per good response{split}."
        )
    elif util < CPU_IDLE:
        reasons.append(
            f"Not CPU-bound for {where}: the server used only {pct(util * 100)} of its "
            f"{res.server_cpus} CPU(s) with {f.connections:,} connections open, so requests "
            "wait for something other than CPU (busy workers, the accept queue, reconnects)."
        )
    rss = ", ".join(f"{name} {mib(value)}" for name, value in res.rss_peak_bytes.items())
    client = (
        f"; wrk used {pct(res.client_utilisation * 100)} of its {res.client_cpus} CPU(s)"
        if res.client_utilisation is not None
        else ""
    )
    resources.append(
        f"{where}: {res.server_cpu_s:.2f} server CPU-seconds in {res.window_s:.2f} s "
        f"({pct(util * 100)} of {res.server_cpus} CPU(s)), "
        + (f"{format_rate(per_cpu)} good responses per CPU-second, " if per_cpu else "")
        + f"RSS peak {rss}{client}."
    )


# --- variants and ranking -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantDelta:
    kind: str  # "topology" or "app"
    variant: Facts
    base: Facts

    @property
    def rps_change_pct(self) -> float:
        return (self.variant.rps / self.base.rps - 1) * 100 if self.base.rps else 0.0

    @property
    def beyond_spread(self) -> bool | None:
        a, b = self.base.cell.requests_per_sec, self.variant.cell.requests_per_sec
        if a is None or b is None:
            return False
        return separated(a, b)

    def sentence(self) -> str:
        v, b = self.variant, self.base
        what = (
            f"{v.cell.stack} vs {b.cell.stack} ({v.cell.app}, {v.cell.profile})"
            if self.kind == "topology"
            else f"{v.cell.app} vs {b.cell.app} on {v.cell.stack} ({v.cell.profile})"
        )
        beyond = self.beyond_spread
        verdict = (
            "one repeat each: the run-to-run spread is unknown"
            if beyond is None
            else "beyond the run-to-run spread"
            if beyond
            else "within the run-to-run spread (not a clear difference)"
        )
        return (
            f"{what}: {format_rate(v.rps)} vs {format_rate(b.rps)} req/s "
            f"({self.rps_change_pct:+.1f} %, {verdict}); p99 {format_us(v.percentile('99'))} vs "
            f"{format_us(b.percentile('99'))}; errors {pct(v.cell.error_rate * 100)} vs "
            f"{pct(b.cell.error_rate * 100)}."
        )


def variant_deltas(facts: Sequence[Facts]) -> list[VariantDelta]:
    by_key = {f.cell.key: f for f in facts if f.ok and f.cell.role != REFERENCE_ROLE}
    deltas: list[VariantDelta] = []
    for (stack, app, profile), f in by_key.items():
        if stack.startswith("nginx-"):
            base = by_key.get((stack.removeprefix("nginx-"), app, profile))
            if base is not None:
                deltas.append(VariantDelta(kind="topology", variant=f, base=base))
        if app == "seed-fastapi":
            base = by_key.get((stack, "seed-flask", profile))
            if base is not None:
                deltas.append(VariantDelta(kind="app", variant=f, base=base))
    return deltas


@dataclass(frozen=True, slots=True, kw_only=True)
class Ranked:
    facts: Facts
    disqualified: str | None  # why it ranks after every clean stack


def ranking(document: Document, facts: Sequence[Facts], app: str) -> list[Ranked]:
    """Stacks for one app, best first, judged on the heaviest profile that was measured.

    A stack whose error rate exceeds 1 % ranks after every stack that stayed under it: its
    throughput is not something the app can rely on.
    """
    order = profile_order(document)
    candidates = [f for f in facts if f.ok and f.cell.role != REFERENCE_ROLE and f.cell.app == app]
    if not candidates:
        return []
    heaviest = max(
        {f.cell.profile for f in candidates},
        key=lambda p: order.index(p) if p in order else -1,
    )
    chosen = [f for f in candidates if f.cell.profile == heaviest]
    ordered = throughput_order([f.cell for f in chosen])
    by_cell = {id(f.cell): f for f in chosen}
    ranked = [
        Ranked(
            facts=by_cell[id(c)],
            disqualified=f"{pct(c.error_rate * 100)} errors"
            if c.error_rate > ERROR_RATE_LIMIT
            else None,
        )
        for c in ordered
    ]
    return sorted(ranked, key=lambda r: r.disqualified is not None)
