"""The report's content, format-neutral: a results document turned into a list of blocks.

Markdown and HTML render the same blocks, so both reports say the same thing. The outline
follows the seed report (Introduction, Test setup, Results, Analysis, Further optimizations,
Conclusion) and adds a Methodology and warnings section. Inline markup inside text is limited
to `code` and **bold**, which both renderers understand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serverbench.apps.registry import BUILTIN_APPS
from serverbench.report.analysis import (
    Facts,
    all_facts,
    analyse_stack,
    app_rate,
    error_breakdown,
    pct,
    profile_order,
    ranking,
    stack_order,
    variant_deltas,
    warnings,
)
from serverbench.report.console import format_rate, format_us
from serverbench.results.aggregate import Cell, throughput_order
from serverbench.results.store import Document


@dataclass(frozen=True, slots=True, kw_only=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Paragraph:
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Bullets:
    items: tuple[str, ...]
    numbered: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: tuple[int, ...] = ()  # right-aligned (numeric) columns


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    text: str
    language: str = "text"


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    """A figure only the HTML report draws; it carries the cells its bars are built from."""

    kind: str  # "throughput", "latency", "errors"
    title: str
    cells: tuple[Cell, ...]


Block = Heading | Paragraph | Bullets | Table | Code | Chart


# --- wrk's own text layout, rebuilt from the measurement ------------------------------------


def _units(value: float, scale: float, base: str, units: Sequence[str], precision: int) -> str:
    """wrk's format_units: divide while the value is at least 85 % of the next unit."""
    amount, unit = value, base
    for name in units:
        if amount < scale * 0.85:
            break
        amount /= scale
        unit = name
    return f"{amount:.{precision}f}{unit}"


def wrk_time_us(value_us: float) -> str:
    if value_us >= 1e6:
        return _units(value_us / 1e6, 60, "s", ("m", "h"), 2)
    return _units(value_us, 1000, "us", ("ms", "s"), 2)


def wrk_time_s(value_s: float) -> str:
    return _units(value_s, 60, "s", ("m", "h"), 0)


def wrk_metric(value: float) -> str:
    return _units(value, 1000, "", ("k", "M", "G"), 2)


def wrk_binary(value: float) -> str:
    return _units(value, 1024, "", ("K", "M", "G", "T"), 2)


def _column(text: str, width: int) -> str:
    """wrk's print_units: right-aligned, unit letters eat into the two spaces of padding."""
    pad = 2 - sum(1 for ch in text[-2:] if ch.isalpha())
    return text.rjust(width - pad)[: width - pad] + " " * pad


def _stats_line(name: str, spread: dict[str, Any], fmt: Any) -> str:
    if spread.get("mean") is None:
        return f"    {name:<10}{'-':>8}{'-':>10}{'-':>9}{'-':>9}"
    return (
        f"    {name:<10}"
        + _column(fmt(spread["mean"]), 8)
        + _column(fmt(spread["stdev"] or 0.0), 10)
        + _column(fmt(spread["max"] or 0.0), 9)
        + f"{spread.get('within_stdev_pct') or 0.0:8.2f}%"
    )


def wrk_text(run: dict[str, Any], profile: dict[str, Any]) -> str:
    """The median repeat in the layout wrk prints, so it reads like the seed report."""
    wrk = run["wrk"]
    url = run.get("wrk_argv", [""])[-1]
    duration = math.ceil(float(profile.get("duration_s", wrk["duration_s"])))
    errors = wrk["socket_errors"]
    lines = [
        f"Running {wrk_time_s(duration)} test @ {url}",
        f"  {profile.get('threads', '?')} threads and {profile.get('connections', '?')} connections",
        f"  Thread Stats{'Avg':>6}{'Stdev':>11}{'Max':>8}{'+/- Stdev':>12}",
        _stats_line("Latency", wrk["latency_us"], wrk_time_us),
        _stats_line("Req/Sec", wrk["thread_rps"], wrk_metric),
        f"  {wrk['requests']} requests in {wrk_time_us(float(wrk['duration_s']) * 1e6)}, "
        f"{wrk_binary(float(wrk['bytes_read']))}B read",
    ]
    if any(errors.values()):
        lines.append(
            f"  Socket errors: connect {errors['connect']}, read {errors['read']}, "
            f"write {errors['write']}, timeout {errors['timeout']}"
        )
    if wrk["non_2xx_3xx"]:
        lines.append(f"  Non-2xx or 3xx responses: {wrk['non_2xx_3xx']}")
    lines.append(f"Requests/sec: {run['derived']['raw_requests_per_sec']:9.2f}")
    lines.append(f"Transfer/sec: {wrk_binary(run['derived']['transfer_bytes_per_sec']):>10}B")
    return "\n".join(lines)


# --- the sections ---------------------------------------------------------------------------


def percentile_text(cell: Cell) -> str:
    p = cell.latency_percentiles_us
    return " · ".join(f"p{key} {format_us(p.get(key))}" for key in ("50", "90", "99", "99.9"))


def rate_text(cell: Cell) -> str:
    s = cell.requests_per_sec
    if s is None:
        return cell.status.upper()
    if s.count > 1:
        return f"{format_rate(s.median)} [{format_rate(s.minimum)}-{format_rate(s.maximum)}]"
    return format_rate(s.median)


def status_text(cell: Cell) -> str:
    if cell.status == "skipped":
        return f"skipped: {cell.skipped_reason}"
    reasons = [r.splitlines()[0] for r in cell.failure_reasons]
    if cell.status == "failed":
        return "FAILED: " + "; ".join(dict.fromkeys(reasons))
    if cell.status == "partial":
        return f"{len(cell.failed_runs)} of {len(cell.failed_runs) + len(cell.ok_runs)} repeats failed: {reasons[0]}"
    return "ok"


def stack_title(document: Document, stack: str) -> str:
    info = document.get("stacks", {}).get(stack, {})
    interfaces = "/".join(i.upper() for i in info.get("interfaces", []))
    return f"{stack} ({interfaces})" if interfaces else stack


def cpu_list(cpus: Sequence[int] | None) -> str:
    return ",".join(str(c) for c in cpus) if cpus else "?"


def _profile_line(p: dict[str, Any]) -> str:
    return (
        f"**{p['name']}**: {p['threads']} threads, {p['connections']:,} connections, "
        f"{p['duration_s']:g} s measured after "
        + (f"a {p['primer_s']:g} s primer and " if p.get("primer_s") else "")
        + f"{p.get('warmup_s', 0):g} s warm-up, wrk --timeout {p.get('timeout_s', 2):g} s"
        + (f" ({p['description']})" if p.get("description") else "")
    )


def introduction(document: Document, facts: Sequence[Facts]) -> list[Block]:
    env = document.get("environment", {})
    stacks = [stack_title(document, s) for s in stack_order(document)]
    apps = list(document.get("apps", {}))
    profiles = [p["name"] for p in document.get("plan", {}).get("profiles", [])]
    memory = env.get("memory_bytes")
    machine = (
        f"{env.get('cpu_model', 'an unknown CPU')}, {env.get('cpu_count', '?')} CPUs"
        + (f", {memory / 2**30:.1f} GiB RAM" if memory else "")
        + f", {env.get('os_release', '?')}, kernel {env.get('kernel', '?')}, "
        f"Python {env.get('python_version', '?')} (host `{env.get('hostname', '?')}`)"
    )
    ok = sum(1 for f in facts if f.ok)
    return [
        Heading(level=2, text="Introduction"),
        Paragraph(
            text=f"This report compares {', '.join(stacks)} serving {', '.join(apps)} "
            f"under the load profile(s) {', '.join(profiles)}, "
            f"{document.get('plan', {}).get('repeats', '?')} repeat(s) each. "
            f"It was written by serverbench {document.get('serverbench_version', '?')} from "
            f"the results file alone: every figure below is read from it."
        ),
        Paragraph(
            text=f"Machine: {machine}. Run started {document.get('created_at', '?')}, last "
            f"updated {document.get('updated_at', '?')} (status: {document.get('status', '?')}); "
            f"{ok} of {len(facts)} stack x app x profile cells produced a measurement."
        ),
        Paragraph(text="Command: `" + " ".join(document.get("command", [])) + "`"),
    ]


def _app_blocks(document: Document, name: str, info: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading(level=3, text=f"Application: {name}")]
    import_string = info.get("import_string", "?")
    facts = [
        f"{str(info.get('interface', '?')).upper()} app `{import_string}`",
        f"load path `{info.get('load_path', '?')}`",
    ]
    rate = app_rate(document, name)
    if rate:
        facts.append(
            f"in-process cost {format_us(1e6 / rate)} per call ({format_rate(rate)} calls/s on one "
            "CPU, no server, no sockets): the app's own limit"
        )
    blocks.append(Paragraph(text="; ".join(facts) + "."))
    builtin = BUILTIN_APPS.get(name)
    source = builtin.source_file if builtin and builtin.import_string == import_string else None
    if source is not None and source.is_file():
        blocks.append(Code(text=source.read_text().rstrip("\n"), language="python"))
    return blocks


def test_setup(document: Document, facts: Sequence[Facts]) -> list[Block]:
    env = document.get("environment", {})
    blocks: list[Block] = [Heading(level=2, text="Test setup")]
    for name, info in document.get("apps", {}).items():
        blocks.extend(_app_blocks(document, name, info))
    blocks.append(Heading(level=3, text="Benchmarking tool"))
    blocks.append(
        Bullets(
            items=(
                f"wrk {env.get('wrk_version', '?')}: closed-loop HTTP/1.1 load with keep-alive, "
                "driven by serverbench's Lua script that exports the full latency histogram.",
                f"nginx {env.get('nginx_version') or 'not installed'} for the nginx-static "
                "ceiling and nginx topologies.",
            )
        )
    )
    blocks.append(Heading(level=3, text="Benchmark configurations"))
    blocks.append(
        Bullets(items=tuple(_profile_line(p) for p in document.get("plan", {}).get("profiles", [])))
    )
    split = document.get("cpu_split") or {}
    blocks.append(
        Paragraph(
            text=f"CPU split: servers on CPU(s) {cpu_list(split.get('server_cpus'))}, wrk on CPU(s) "
            f"{cpu_list(split.get('client_cpus'))}"
            + (" (shared: numbers are lower bounds)." if split.get("shared") else " (disjoint).")
        )
    )
    sysctls = ", ".join(f"`{k}` {v}" for k, v in env.get("sysctls", {}).items())
    blocks.append(
        Paragraph(
            text=f"Host limits: {sysctls or 'not recorded'}; open files (ulimit -n) "
            f"{env.get('nofile_soft', '?')}."
        )
    )
    blocks.append(Heading(level=3, text="Servers tested"))
    by_stack: dict[str, Facts] = {}
    for f in facts:
        if f.cell.median_run is not None:
            by_stack.setdefault(f.cell.stack, f)
    numbered = [*stack_order(document), *[s for s in by_stack if s not in stack_order(document)]]
    for index, stack in enumerate(numbered, start=1):
        info = document.get("stacks", {}).get(stack, {})
        blocks.append(Heading(level=4, text=f"{index}. {stack_title(document, stack)}"))
        packages = ", ".join(f"{k} {v}" for k, v in info.get("packages", {}).items())
        blocks.append(
            Paragraph(text=f"{info.get('summary', '')}" + (f" ({packages})." if packages else "."))
        )
        shown = by_stack.get(stack)
        run = shown.cell.median_run if shown else None
        if run is None:
            blocks.append(Paragraph(text="No repeat ran, so no command line was recorded."))
            continue
        sources = info.get("setting_sources", {})
        blocks.append(
            Table(
                headers=("setting", "value", "where the default comes from"),
                rows=tuple(
                    (str(k), str(v), str(sources.get(k, "serverbench")))
                    for k, v in run.get("settings", {}).items()
                ),
            )
        )
        commands = "\n".join(
            f"# {component}\n{' '.join(argv)}"
            for component, argv in run.get("commands", {}).items()
        )
        blocks.append(Code(text=commands, language="sh"))
    not_run = document.get("not_applicable", [])
    if not_run:
        blocks.append(
            Paragraph(
                text="Not run, as the server cannot serve the app: "
                + "; ".join(pair["reason"] for pair in not_run)
                + "."
            )
        )
    return blocks


def results(document: Document, facts: Sequence[Facts]) -> list[Block]:
    profiles = {p["name"]: p for p in document.get("plan", {}).get("profiles", [])}
    order = profile_order(document)
    blocks: list[Block] = [
        Heading(level=2, text="Results"),
        Paragraph(
            text="Each block is the median repeat in wrk's own layout (its Requests/sec counts "
            "every response, good or not). The line under it is serverbench's figure: good "
            "responses only, median [min-max] over the repeats, percentiles from the repeats' "
            "merged latency histograms."
        ),
    ]
    reference = [f for f in facts if f.cell.role == "reference"]
    stacks = [*stack_order(document), *dict.fromkeys(f.cell.stack for f in reference)]
    for stack in stacks:
        mine = [f for f in facts if f.cell.stack == stack]
        if not mine:
            continue
        suffix = " — reference ceiling" if mine[0].cell.role == "reference" else ""
        blocks.append(Heading(level=3, text=stack_title(document, stack) + suffix))
        mine.sort(
            key=lambda f: (
                f.cell.app,
                order.index(f.cell.profile) if f.cell.profile in order else 0,
            )
        )
        for f in mine:
            cell = f.cell
            blocks.append(Heading(level=4, text=f"{cell.app} · {cell.profile}"))
            if cell.median_run is None:
                blocks.append(Paragraph(text=f"**{status_text(cell)}**"))
                continue
            blocks.append(Code(text=wrk_text(cell.median_run, profiles.get(cell.profile, {}))))
            s = cell.requests_per_sec
            repeats = f"{s.count} repeat(s)" if s else "no repeat"
            line = (
                f"**{rate_text(cell)} req/s** (good responses, median [min-max] of {repeats}) · "
                f"{percentile_text(cell)} · errors {cell.errors:,} "
                f"({pct(cell.error_rate * 100)}: {error_breakdown(cell)})"
            )
            if cell.failed_runs:
                line += f" · **{status_text(cell)}**"
            blocks.append(Paragraph(text=line))
    blocks.append(Heading(level=3, text="Summary"))
    blocks.append(summary_table(facts))
    ok_cells = tuple(f.cell for f in facts)
    blocks.append(
        Chart(kind="throughput", title="Throughput per stack and profile", cells=ok_cells)
    )
    blocks.append(Chart(kind="latency", title="Latency percentiles (log scale)", cells=ok_cells))
    blocks.append(Chart(kind="errors", title="Errors per stack", cells=ok_cells))
    return blocks


def summary_table(facts: Sequence[Facts]) -> Table:
    rows = []
    for cell in throughput_order([f.cell for f in facts]):
        p = cell.latency_percentiles_us
        measured = cell.requests_per_sec is not None
        rows.append(
            (
                cell.stack + (" (ceiling)" if cell.role == "reference" else ""),
                cell.app,
                cell.profile,
                rate_text(cell),
                format_us(p.get("50")) if measured else "-",
                format_us(p.get("99")) if measured else "-",
                pct(cell.error_rate * 100) if measured else "-",
                status_text(cell),
            )
        )
    return Table(
        headers=(
            "stack",
            "app",
            "profile",
            "req/s median [min-max]",
            "p50",
            "p99",
            "errors",
            "status",
        ),
        rows=tuple(rows),
        right=(3, 4, 5, 6),
    )


def analysis(document: Document, facts: Sequence[Facts]) -> list[Block]:
    blocks: list[Block] = [Heading(level=2, text="Analysis")]
    for stack in stack_order(document):
        result = analyse_stack(document, facts, stack)
        blocks.append(Heading(level=3, text=stack_title(document, stack)))
        for title, items in (
            ("Strengths", result.strengths),
            ("Weaknesses", result.weaknesses),
            ("Reasons for behavior", result.reasons),
            ("Resources (median repeat)", result.resources),
        ):
            blocks.append(Heading(level=4, text=title))
            blocks.append(Bullets(items=items or ("None found in these numbers.",)))
    return blocks


def further_optimizations(document: Document, facts: Sequence[Facts]) -> list[Block]:
    blocks: list[Block] = [Heading(level=2, text="Further optimizations")]
    deltas = variant_deltas(facts)
    measured = {f.cell.stack for f in facts if f.cell.role != "reference"}
    apps = {f.cell.app for f in facts}
    app_flags = " ".join(f"--app {a}" for a in sorted(apps)) or "--app seed-flask"
    if deltas:
        blocks.append(Heading(level=3, text="Measured variants against their base"))
        blocks.append(Bullets(items=tuple(d.sentence() for d in deltas)))
    suggestions: list[str] = []
    topo = [s for s in ("gunicorn", "bjoern") if s in measured and f"nginx-{s}" not in measured]
    if topo:
        stacks = ",".join(x for s in topo for x in (s, f"nginx-{s}"))
        suggestions.append(
            "**nginx in front** (the seed's proposal for "
            + " and ".join(topo)
            + "): nginx holds the client connections and keeps a few upstream ones busy. "
            f"Measure it: `serverbench run --stack {stacks} {app_flags}`."
        )
    if "uvicorn" in measured and not any(
        d.kind == "app" and d.variant.cell.stack == "uvicorn" for d in deltas
    ):
        suggestions.append(
            "**An asynchronous framework on uvicorn** (the seed's proposal): the same endpoint "
            "in FastAPI instead of Flask behind a2wsgi. Measure it: "
            "`serverbench run --stack uvicorn --app seed-flask --app seed-fastapi`."
        )
    split = document.get("cpu_split") or {}
    server_cpus = len(split.get("server_cpus", []))
    for f in facts:
        run = f.cell.median_run
        if f.cell.stack == "bjoern" and run and run.get("settings", {}).get("processes") == 1:
            if server_cpus > 1:
                suggestions.append(
                    f"**Several bjoern processes**: one process used at most one of the "
                    f"{server_cpus} server CPUs. Measure it: "
                    f"`serverbench run --stack bjoern --set bjoern.processes={server_cpus} {app_flags}`."
                )
            break
    if suggestions:
        blocks.append(Heading(level=3, text="Not measured yet"))
        blocks.append(Bullets(items=tuple(suggestions)))
    if not deltas and not suggestions:
        blocks.append(Paragraph(text="Every variant serverbench knows of was measured above."))
    return blocks


def conclusion(document: Document, facts: Sequence[Facts]) -> list[Block]:
    blocks: list[Block] = [Heading(level=2, text="Conclusion")]
    env = document.get("environment", {})
    for app in document.get("apps", {}):
        ranked = ranking(document, facts, app)
        if not ranked:
            blocks.append(Paragraph(text=f"No stack produced a measurement for {app}."))
            continue
        profile = ranked[0].facts.cell.profile
        blocks.append(
            Paragraph(
                text=f"For **{app}** on this machine ({env.get('cpu_count', '?')} CPUs), ranked by "
                f"good responses per second under the heaviest profile measured, **{profile}**:"
            )
        )
        items = []
        for r in ranked:
            f = r.facts
            why = f" — ranked last: {r.disqualified}" if r.disqualified else ""
            items.append(
                f"**{f.cell.stack}**: {rate_text(f.cell)} req/s, p50 {format_us(f.percentile('50'))}, "
                f"p99 {format_us(f.percentile('99'))}, errors {pct(f.cell.error_rate * 100)}{why}"
            )
        blocks.append(Bullets(items=tuple(items), numbered=True))
        unranked = [
            f.cell
            for f in facts
            if f.cell.app == app
            and f.cell.profile == profile
            and f.cell.role == "stack"
            and f.cell.status in ("failed", "skipped")
        ]
        if unranked:
            blocks.append(
                Paragraph(
                    text="Not ranked, with no good measurement under "
                    f"{profile}: "
                    + "; ".join(
                        f"**{c.stack}** ({status_text(c).splitlines()[0]})" for c in unranked
                    )
                    + "."
                )
            )
        caveats = []
        if len(ranked) > 1:
            a, b = ranked[0].facts.cell.requests_per_sec, ranked[1].facts.cell.requests_per_sec
            if a and b and a.minimum <= b.maximum and b.minimum <= a.maximum:
                caveats.append(
                    f"{ranked[0].facts.cell.stack} and {ranked[1].facts.cell.stack} overlap "
                    f"between repeats ({format_rate(a.minimum)}-{format_rate(a.maximum)} vs "
                    f"{format_rate(b.minimum)}-{format_rate(b.maximum)}): treat them as tied."
                )
        top = ranked[0].facts
        if top.profile.get("duration_s", 60) < 10:
            caveats.append(
                f"{profile} measures {top.profile.get('duration_s')} s per repeat: fine to compare, "
                "too short for capacity planning (use --profile seed)."
            )
        caveats.append(
            "Latency is closed-loop (each connection waits for its answer), on loopback, with "
            "client and server on one host; production traffic is open-loop and remote."
        )
        blocks.append(Paragraph(text="Caveats: " + " ".join(caveats)))
    return blocks


def methodology(document: Document, facts: Sequence[Facts]) -> list[Block]:
    env = document.get("environment", {})
    plan = document.get("plan", {})
    split = document.get("cpu_split") or {}
    items = [
        f"Tool: serverbench {document.get('serverbench_version', '?')}, wrk "
        f"{env.get('wrk_version', '?')}, Python {env.get('python_version', '?')}.",
        "Each repeat starts a fresh stack, verifies its answer, runs a primer (1 thread, few "
        "connections) and a warm-up with the profile's shape, both discarded, then measures; "
        "the stack is verified again after the load.",
        f"{plan.get('repeats', '?')} repeat(s) per cell, in shuffled order per round (seed "
        f"{plan.get('order_seed', '?')}). Throughput is the median with min-max over the "
        "repeats and counts only good responses (no socket error, no timeout, no 4xx/5xx).",
        "Percentiles come from the repeats' latency HDR histograms merged exactly, never from "
        "averaged percentiles.",
        f"CPU split: servers pinned to CPU(s) {cpu_list(split.get('server_cpus'))}, wrk to "
        f"{cpu_list(split.get('client_cpus'))}" + (" — shared." if split.get("shared") else "."),
        "Latency is closed-loop: a connection sends its next request when the previous answer "
        "arrived. wrk applies its coordinated-omission correction to the histogram; responses "
        "past the timeout count as timeout errors and are not in the histogram.",
        "Resources: every process tree (server components and wrk) sampled during the "
        "measured window; CPU-seconds, RSS peak and connections per component.",
    ]
    blocks: list[Block] = [
        Heading(level=2, text="Methodology and warnings"),
        Bullets(items=tuple(items)),
        Heading(level=3, text="Sanity checks"),
    ]
    found = warnings(document, facts)
    checks = (
        "error rate above 1 %, spread between repeats above 10 %, Little's law off by more than "
        "30 %, p50 near 40 ms, wrk above 90 % of its CPUs, shared CPUs, host limits, TIME_WAIT "
        "pauses, failed repeats, server processes exiting during a measurement, slow recovery "
        "after the load, listen-queue overflows"
    )
    if found:
        blocks.append(Paragraph(text=f"Checked: {checks}. Raised:"))
        blocks.append(
            Bullets(
                items=tuple(
                    (f"**{w.subject}** ({w.kind}): " if w.subject else f"**{w.kind}**: ") + w.text
                    for w in found
                )
            )
        )
    else:
        blocks.append(Paragraph(text=f"Checked: {checks}. None raised."))
    return blocks


def build(document: Document) -> list[Block]:
    facts = all_facts(document)
    stacks = ", ".join(stack_title(document, s) for s in stack_order(document))
    return [
        Heading(level=1, text=f"Performance Comparison Report: {stacks}"),
        *introduction(document, facts),
        *test_setup(document, facts),
        *results(document, facts),
        *analysis(document, facts),
        *further_optimizations(document, facts),
        *conclusion(document, facts),
        *methodology(document, facts),
    ]
