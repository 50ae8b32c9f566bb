"""The report's content, format-neutral: a results document turned into a list of blocks.

Markdown and HTML render the same blocks, so both reports say the same thing. The outline
follows the seed report (Introduction, Test setup, Results, Analysis, Further optimizations,
Conclusion) and adds a Methodology and warnings section. Inline markup inside text is limited
to `code` and **bold**, which both renderers understand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from serverbench.apps.registry import BUILTIN_APPS
from serverbench.plan.profiles import Profile
from serverbench.report.analysis import analyse_stack
from serverbench.report.blocks import Block as Block
from serverbench.report.blocks import Bullets as Bullets
from serverbench.report.blocks import Chart as Chart
from serverbench.report.blocks import Code as Code
from serverbench.report.blocks import Heading as Heading
from serverbench.report.blocks import Paragraph as Paragraph
from serverbench.report.blocks import Table as Table
from serverbench.report.capacity import capacity_section, loop_methodology
from serverbench.report.checks import CHECKED, warnings
from serverbench.report.facts import (
    REFERENCE_ROLE,
    Facts,
    all_facts,
    app_cost_skipped,
    app_rate,
    app_workload,
    profile_index,
    profile_order,
    stack_order,
)
from serverbench.report.numbers import (
    error_breakdown,
    format_rate,
    format_us,
    pct,
    rate_with_unit,
)
from serverbench.report.ranking import ranking
from serverbench.report.summary import HEADERS, RIGHT, status_text, summary_rows
from serverbench.report.uncertainty import describe_change, plus_minus
from serverbench.report.variants import suggestions, variant_deltas
from serverbench.report.wrk_text import wrk_text
from serverbench.results.aggregate import Cell
from serverbench.results.inference import pair_by_round, paired_change
from serverbench.results.model import AppRecord, Loop, ResultsDocument, ServiceRecord

# --- the sections ---------------------------------------------------------------------------


def loop_label(loop: Loop | None) -> str:
    """How a latency was measured: closed loop (each connection waits for its answer) or open."""
    return f"{loop}-loop" if loop else ""


def percentile_text(cell: Cell) -> str:
    p = cell.latency_percentiles_us
    run = cell.median_run
    loop = loop_label(run.measurement.loop if run and run.measurement else None)
    return (f"{loop} " if loop else "") + " · ".join(
        f"p{key} {format_us(p.get(key))}" for key in ("50", "90", "99", "99.9")
    )


def stack_title(document: ResultsDocument, stack: str) -> str:
    record = document.stacks.get(stack)
    interfaces = "/".join(i.upper() for i in record.interfaces) if record else ""
    return f"{stack} ({interfaces})" if interfaces else stack


def cpu_list(cpus: Sequence[int]) -> str:
    return ",".join(str(c) for c in cpus) if cpus else "?"


def _profile_line(p: Profile) -> str:
    return (
        f"**{p.name}**: {p.threads} threads, {p.connections:,} connections, "
        f"{p.duration_s:g} s measured after "
        + (f"a {p.primer_s:g} s primer and " if p.primer_s else "")
        + f"{p.warmup_s:g} s warm-up, wrk --timeout {p.timeout_s:g} s"
        + (f" ({p.description})" if p.description else "")
        + (f"; request mix: {p.request_mix.describe()}" if p.request_mix else "")
    )


def introduction(document: ResultsDocument, facts: Sequence[Facts]) -> list[Block]:
    env = document.environment
    stacks = [stack_title(document, s) for s in stack_order(document)]
    profiles = [p.name for p in document.plan.profiles]
    machine = (
        f"{env.cpu_model or 'an unknown CPU'}, {env.cpu_count or '?'} CPUs"
        + (f", {env.memory_bytes / 2**30:.1f} GiB RAM" if env.memory_bytes else "")
        + f", {env.os_release or '?'}, kernel {env.kernel or '?'}, "
        f"Python {env.python_version or '?'} (host `{env.hostname or '?'}`)"
    )
    ok = sum(1 for f in facts if f.ok)
    return [
        Heading(level=2, text="Introduction"),
        Paragraph(
            text=f"This report compares {', '.join(stacks)} serving {', '.join(document.apps)} "
            f"under the load profile(s) {', '.join(profiles)}, "
            f"{document.plan.repeats} repeat(s) each. "
            f"It was written by serverbench {document.serverbench_version} from "
            f"the results file alone: every figure below is read from it."
        ),
        Paragraph(
            text=f"Machine: {machine}. Run started {document.created_at}, last "
            f"updated {document.updated_at} (status: {document.status}); "
            f"{ok} of {len(facts)} stack x app x profile cells produced a measurement."
        ),
        Paragraph(text="Command: `" + " ".join(document.command) + "`"),
        *_project_blocks(document),
    ]


def _project_blocks(document: ResultsDocument) -> list[Block]:
    """The servers' interpreter, their environment, the project configuration and where the
    capacity targets came from, when given."""
    plan = document.plan
    lines = []
    if plan.python:
        lines.append(f"Servers ran with `{plan.python}` (Python {plan.python_version or '?'}).")
    if plan.env:
        pairs = ", ".join(f"`{key}={value}`" for key, value in sorted(plan.env.items()))
        lines.append(f"Server environment: {pairs} (secret values are not recorded).")
    if plan.config is not None:
        lines.append(f"Configuration read from `{plan.config.source}`.")
    capacity = document.capacity.plan if document.capacity else None
    if capacity is not None and capacity.sources:
        lines.append(f"Capacity searched at {capacity.targets_text}.")
    return [Paragraph(text=" ".join(lines))] if lines else []


def _app_blocks(
    document: ResultsDocument, name: str, info: AppRecord, shown_sources: set[Path]
) -> list[Block]:
    blocks: list[Block] = [Heading(level=3, text=f"Application: {name}")]
    facts = [
        f"{info.interface.upper()} app `{info.import_string}`",
        f"load path `{info.load_path}`",
    ]
    workload = app_workload(document, name)
    if workload is not None:
        facts.append(f"workload {workload.name}: {workload.exercises}")
    if info.services:
        facts.append(
            "started for every job: " + ", ".join(info.services) + " (address in `DATABASE_URL`)"
        )
    facts.extend(f"`{s.name}` = {s.value} ({s.source})" for s in info.settings)
    rate = app_rate(document, name)
    skipped = app_cost_skipped(document, name)
    if rate:
        facts.append(
            f"in-process cost {format_us(1e6 / rate)} per call ({format_rate(rate)} calls/s on one "
            "CPU, no server, no sockets): the app's own limit"
        )
    elif skipped:
        facts.append(f"no in-process limit: {skipped}")
    blocks.append(Paragraph(text="; ".join(facts) + "."))
    builtin = BUILTIN_APPS.get(name)
    source = (
        builtin.source_file if builtin and builtin.import_string == info.import_string else None
    )
    if source is not None and source in shown_sources:
        blocks.append(Paragraph(text=f"Source: `{info.import_string}`, shown above."))
    elif source is not None and source.is_file():
        shown_sources.add(source)
        blocks.append(Code(text=source.read_text().rstrip("\n"), language="python"))
    return blocks


def _services_blocks(document: ResultsDocument) -> list[Block]:
    """Each service's version and settings with their sources, from the first run that had it."""
    seen: dict[str, ServiceRecord] = {}
    for run in document.runs:
        for name, record in run.services.items():
            seen.setdefault(name, record)
    blocks: list[Block] = []
    for name, record in seen.items():
        blocks.append(Heading(level=3, text=f"Service: {name} ({record.version})"))
        blocks.append(
            Paragraph(
                text="Started by serverbench for every job that needs it, in the job's folder, "
                "on the server CPUs (it serves the server, so its CPU counts in the stack's), "
                "and removed after the job."
            )
        )
        blocks.append(
            Bullets(items=tuple(f"`{s.name}` = `{s.value}` ({s.source})" for s in record.settings))
        )
    return blocks


def _servers(document: ResultsDocument, facts: Sequence[Facts]) -> list[Block]:
    """Each stack: what it is, its resolved settings and the command lines of a repeat."""
    blocks: list[Block] = [Heading(level=3, text="Servers tested")]
    by_stack: dict[str, Facts] = {}
    for f in facts:
        if f.cell.median_run is not None:
            by_stack.setdefault(f.cell.stack, f)
    order = stack_order(document)
    numbered = [*order, *[s for s in by_stack if s not in order]]
    for index, stack in enumerate(numbered, start=1):
        record = document.stacks.get(stack)
        blocks.append(Heading(level=4, text=f"{index}. {stack_title(document, stack)}"))
        packages = ", ".join(f"{k} {v}" for k, v in record.packages.items()) if record else ""
        summary = record.summary if record else ""
        blocks.append(Paragraph(text=summary + (f" ({packages})." if packages else ".")))
        shown = by_stack.get(stack)
        run = shown.cell.median_run if shown else None
        if run is None:
            blocks.append(Paragraph(text="No repeat ran, so no command line was recorded."))
            continue
        sources = record.setting_sources if record else {}
        blocks.append(
            Table(
                headers=("setting", "value", "where the default comes from"),
                rows=tuple(
                    (str(k), str(v), str(sources.get(k, "serverbench")))
                    for k, v in run.settings.items()
                ),
            )
        )
        commands = "\n".join(
            f"# {component}\n{' '.join(argv)}" for component, argv in run.commands.items()
        )
        blocks.append(Code(text=commands, language="sh"))
    return blocks


def test_setup(document: ResultsDocument, facts: Sequence[Facts]) -> list[Block]:
    env = document.environment
    blocks: list[Block] = [Heading(level=2, text="Test setup")]
    shown_sources: set[Path] = set()
    for name, info in document.apps.items():
        blocks.extend(_app_blocks(document, name, info, shown_sources))
    blocks.extend(_services_blocks(document))
    blocks.append(Heading(level=3, text="Benchmarking tool"))
    blocks.append(
        Bullets(
            items=(
                f"wrk {env.wrk_version or '?'}: closed-loop HTTP/1.1 load with keep-alive, "
                "driven by serverbench's Lua script that exports the full latency histogram.",
                f"nginx {env.nginx_version or 'not installed'} for the nginx-static "
                "ceiling and nginx topologies.",
            )
        )
    )
    blocks.append(Heading(level=3, text="Benchmark configurations"))
    blocks.append(Bullets(items=tuple(_profile_line(p) for p in document.plan.profiles)))
    split = document.cpu_split
    blocks.append(
        Paragraph(
            text=f"CPU split: servers on CPU(s) {cpu_list(split.server_cpus)}, wrk on CPU(s) "
            f"{cpu_list(split.client_cpus)}"
            + (" (shared: numbers are lower bounds)." if split.shared else " (disjoint).")
        )
    )
    sysctls = ", ".join(f"`{k}` {v}" for k, v in env.sysctls.items())
    blocks.append(
        Paragraph(
            text=f"Host limits: {sysctls or 'not recorded'}; open files (ulimit -n) "
            f"{env.nofile_soft}."
        )
    )
    blocks.extend(_servers(document, facts))
    if document.not_applicable:
        blocks.append(
            Paragraph(
                text="Not run, as the server cannot serve the app: "
                + "; ".join(pair.reason for pair in document.not_applicable)
                + "."
            )
        )
    return blocks


def _cell_blocks(document: ResultsDocument, cell: Cell) -> list[Block]:
    """One cell in Results: wrk's block for the median repeat, then serverbench's line."""
    blocks: list[Block] = [Heading(level=4, text=f"{cell.app} · {cell.profile}")]
    if cell.median_run is None:
        return [*blocks, Paragraph(text=f"**{status_text(cell)}**")]
    text = wrk_text(cell.median_run, document.profile(cell.profile))
    if text is not None:
        blocks.append(Code(text=text))
    estimate = cell.rps_estimate
    spread = f" {plus_minus(estimate)}" if estimate and estimate.count > 1 else ""
    line = (
        f"**{format_rate(estimate.median) if estimate else '-'} req/s**{spread} "
        "(good responses, median of the repeats) · "
        f"{percentile_text(cell)} · errors {cell.error_count:,} "
        f"({pct(cell.error_rate * 100)}: {error_breakdown(cell)})"
    )
    if cell.failed_runs:
        line += f" · **{status_text(cell)}**"
    return [*blocks, Paragraph(text=line)]


def results(document: ResultsDocument, facts: Sequence[Facts]) -> list[Block]:
    order = profile_order(document)
    blocks: list[Block] = [
        Heading(level=2, text="Results"),
        Paragraph(
            text="Each block is the median repeat in wrk's own layout (its Requests/sec counts "
            "every response, good or not). The line under it is serverbench's figure: good "
            "responses only, the median of the repeats with its confidence interval (between "
            "two order statistics, which holds for any distribution: fewer than 6 repeats "
            "cannot give 95 %, and the interval then says how sure it is), percentiles from "
            "the repeats' merged latency histograms."
            + (
                " Every figure here is **closed-loop** (wrk): the closed-loop peak the capacity "
                "search started from, and latency at that saturation, not at a given rate."
                if document.capacity is not None
                else ""
            )
        ),
    ]
    reference = [f for f in facts if f.cell.role == REFERENCE_ROLE]
    stacks = [*stack_order(document), *dict.fromkeys(f.cell.stack for f in reference)]
    for stack in stacks:
        mine = [f for f in facts if f.cell.stack == stack]
        if not mine:
            continue
        suffix = " — reference ceiling" if mine[0].cell.role == REFERENCE_ROLE else ""
        blocks.append(Heading(level=3, text=stack_title(document, stack) + suffix))
        mine.sort(key=lambda f: (f.cell.app, profile_index(order, f.cell.profile)))
        for f in mine:
            blocks.extend(_cell_blocks(document, f.cell))
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
    rows = summary_rows(
        [f.cell for f in facts], error_rate=lambda rate: pct(rate * 100), last=status_text
    )
    return Table(headers=(*HEADERS, "status"), rows=tuple(rows), right=RIGHT)


def analysis(document: ResultsDocument, facts: Sequence[Facts]) -> list[Block]:
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


def further_optimizations(document: ResultsDocument, facts: Sequence[Facts]) -> list[Block]:
    blocks: list[Block] = [Heading(level=2, text="Further optimizations")]
    deltas = variant_deltas(document, facts)
    if deltas:
        blocks.append(Heading(level=3, text="Measured variants against their base"))
        blocks.append(Bullets(items=tuple(d.sentence() for d in deltas)))
    proposed = suggestions(document, facts, deltas)
    if proposed:
        blocks.append(Heading(level=3, text="Not measured yet"))
        blocks.append(Bullets(items=tuple(proposed)))
    if not deltas and not proposed:
        blocks.append(Paragraph(text="Every variant serverbench knows of was measured above."))
    return blocks


def _tie_caveat(first: Facts, second: Facts) -> list[str]:
    """The first two of a ranking, paired by round: tied unless the change is significant."""
    base, lead = pair_by_round(second.cell.rps_by_round, first.cell.rps_by_round)
    names = f"{first.cell.stack} against {second.cell.stack}"
    if len(base) < 2 or min(base + lead) <= 0:
        return [f"{names}: fewer than 2 rounds measured both, so their order is not tested."]
    change = paired_change(base, lead)
    if change is None or change.significant:
        return []
    return [f"{names}: {describe_change(change)}: treat them as tied."]


def _caveats(profile: str, ranked: Sequence[Facts]) -> list[str]:
    caveats = []
    if len(ranked) > 1:
        caveats.extend(_tie_caveat(ranked[0], ranked[1]))
    top = ranked[0]
    if top.profile is not None and top.profile.duration_s < 10:
        caveats.append(
            f"{profile} measures {top.profile.duration_s} s per repeat: fine to compare, "
            "too short for capacity planning (use --profile seed)."
        )
    if top.loop == "open":
        caveats.append(
            "Latency is open-loop (from each request's intended send time), on loopback, with "
            "client and server on one host."
        )
    else:
        caveats.append(
            "Latency is closed-loop (each connection waits for its answer), on loopback, with "
            "client and server on one host; production traffic is open-loop and remote."
        )
    return caveats


def _app_conclusion(document: ResultsDocument, facts: Sequence[Facts], app: str) -> list[Block]:
    ranked = ranking(document, facts, app)
    if not ranked:
        return [Paragraph(text=f"No stack produced a measurement for {app}.")]
    profile = ranked[0].facts.cell.profile
    blocks: list[Block] = [
        Paragraph(
            text=f"For **{app}** on this machine ({document.environment.cpu_count or '?'} CPUs), "
            "ranked by good responses per second under the heaviest profile measured, "
            f"**{profile}**:"
        )
    ]
    items = []
    for r in ranked:
        f = r.facts
        why = f" — ranked last: {r.disqualified}" if r.disqualified else ""
        items.append(
            f"**{f.cell.stack}**: {rate_with_unit(f.cell)}, p50 {format_us(f.percentile('50'))}, "
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
                + "; ".join(f"**{c.stack}** ({status_text(c).splitlines()[0]})" for c in unranked)
                + "."
            )
        )
    caveats = _caveats(profile, [r.facts for r in ranked])
    blocks.append(Paragraph(text="Caveats: " + " ".join(caveats)))
    return blocks


def conclusion(document: ResultsDocument, facts: Sequence[Facts]) -> list[Block]:
    blocks: list[Block] = [Heading(level=2, text="Conclusion")]
    for app in document.apps:
        blocks.extend(_app_conclusion(document, facts, app))
    return blocks


def methodology(document: ResultsDocument, facts: Sequence[Facts]) -> list[Block]:
    env, plan, split = document.environment, document.plan, document.cpu_split
    items = [
        f"Tool: serverbench {document.serverbench_version}, wrk "
        f"{env.wrk_version or '?'}, Python {env.python_version or '?'}.",
        "Each repeat starts a fresh stack, verifies its answer, runs a primer (1 thread, few "
        "connections) and a warm-up with the profile's shape, both discarded, then measures; "
        + (
            "after each window the load's connections still closing are reset, and "
            if document.resets_leftovers
            else ""
        )
        + "the stack is verified again after the load.",
        f"{plan.repeats} repeat(s) per cell, in shuffled order per round (seed "
        f"{plan.order_seed})"
        + (
            "; the nginx-static ceiling once, in the first round"
            if any(
                f.cell.role == REFERENCE_ROLE and len(f.cell.ok_runs) + len(f.cell.failed_runs) == 1
                for f in facts
            )
            else ""
        )
        + ". Throughput is the median with min-max over the repeats and counts only good "
        "responses (no socket error, no timeout, no 4xx/5xx).",
        "Percentiles come from the repeats' latency HDR histograms merged exactly, never from "
        "averaged percentiles.",
        f"CPU split: servers pinned to CPU(s) {cpu_list(split.server_cpus)}, wrk to "
        f"{cpu_list(split.client_cpus)}" + (" — shared." if split.shared else "."),
        "Latency is closed-loop: a connection sends its next request when the previous answer "
        "arrived. wrk applies its coordinated-omission correction to the histogram; responses "
        "past the timeout count as timeout errors and are not in the histogram.",
        "Resources: every process tree (server components and wrk) sampled during the "
        "measured window; CPU-seconds, RSS peak and connections per component.",
    ]
    if document.capacity is not None:
        items.extend(loop_methodology(document.capacity.searches))
    blocks: list[Block] = [
        Heading(level=2, text="Methodology and warnings"),
        Bullets(items=tuple(items)),
        Heading(level=3, text="Sanity checks"),
    ]
    found = warnings(document, facts)
    if found:
        blocks.append(Paragraph(text=f"Checked: {CHECKED}. Raised:"))
        blocks.append(
            Bullets(
                items=tuple(
                    (f"**{w.subject}** ({w.kind}): " if w.subject else f"**{w.kind}**: ") + w.text
                    for w in found
                )
            )
        )
    else:
        blocks.append(Paragraph(text=f"Checked: {CHECKED}. None raised."))
    return blocks


def build(document: ResultsDocument, notes: Sequence[str] = ()) -> list[Block]:
    """The report's blocks; `notes` (what results.json alone cannot say, such as a run marked
    running whose owner is gone) come first."""
    facts = all_facts(document)
    stacks = ", ".join(stack_title(document, s) for s in stack_order(document))
    return [
        Heading(level=1, text=f"Performance Comparison Report: {stacks}"),
        *(Paragraph(text=f"**Note:** {note}") for note in notes),
        # when capacity was measured it is the answer the reader came for, so it leads
        *capacity_section(document.capacity.searches if document.capacity else []),
        *introduction(document, facts),
        *test_setup(document, facts),
        *results(document, facts),
        *analysis(document, facts),
        *further_optimizations(document, facts),
        *conclusion(document, facts),
        *methodology(document, facts),
    ]
