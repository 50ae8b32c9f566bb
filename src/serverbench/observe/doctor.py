"""Is this machine ready to benchmark? The facts that make numbers noisy or wrong, checked.

Owns `HostFacts` (read once by `read_host_facts`, the only function here that touches the
host), `Finding` (one check's verdict with what it saw, why it matters and the command that
fixes it) and `CHECKS`, the ordered list of pure checks over the facts, after pyperf's
`system show` (the kernel settings' checks are one table, `SYSCTL_RULES`). `serverbench
doctor` prints the findings; `run` records them with the results.

A check that cannot see its fact (no cpufreq in a VM, no /proc/pressure) says so as `info`
rather than guessing; `fail` is kept for what makes a run impossible or refused.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from serverbench.load.leftovers import reset_problem
from serverbench.observe.environment import find_tool
from serverbench.observe.host_limits import NOFILE_HEADROOM
from serverbench.observe.noise import STEAL_LIMIT, ForeignProcess, noise_window, take_snapshot

Status = Literal["ok", "info", "warn", "fail"]

BUSY_PROCESS_SHARE = 0.05  # of one CPU
# from about this many connections a load overflows common listen queues and leaves thousands
# of connections closing when it ends (load/leftovers.py)
LEFTOVER_CONNECTIONS = 1000
BACKLOG_WHY = "connection bursts overflow the listen queue and show up as errors or slow connects"
BOOST_FILES = (
    # (path, the value that means boost is on, the value that turns it off)
    ("/sys/devices/system/cpu/intel_pstate/no_turbo", "0", "1"),
    ("/sys/devices/system/cpu/cpufreq/boost", "1", "0"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostFacts:
    cpu_count: int
    governors: dict[int, str]  # empty: no cpufreq (most VMs)
    boost_file: str | None  # the file that controls turbo boost, when there is one
    boost_on: bool | None
    sample_s: float  # how long steal and busy processes were watched
    steal_share: float | None  # of all CPU time during the sample; None without /proc/stat
    busy_processes: tuple[ForeignProcess, ...]  # cpu_s over the sample, busiest first
    sysctls: dict[str, str]
    nofile_soft: int  # -1: unlimited
    nofile_hard: int
    transparent_hugepages: str | None  # "always", "madvise" or "never"
    swap_total_bytes: int
    swap_used_bytes: int
    wrk: str | None  # its path
    nginx: str | None
    socket_reset_problem: str | None = None  # why the load's closing connections stay (None: ok)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    check: str
    status: Status
    found: str  # what it saw, with the numbers
    why: str = ""  # why it matters (empty when ok)
    fix: str = ""  # the command that fixes it, or what to do


# --- reading --------------------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _selected(text: str | None) -> str | None:
    """ "always [madvise] never" -> "madvise"."""
    if text is None or "[" not in text:
        return text
    return text[text.index("[") + 1 : text.index("]")]


def _meminfo_bytes(text: str, key: str) -> int:
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == key and rest.split():
            return int(rest.split()[0]) * 1024
    return 0


def read_host_facts(sample_s: float = 1.0, root: Path = Path("/")) -> HostFacts:
    """Read the host; steal and busy processes are watched for `sample_s` seconds."""
    cpu_dir = root / "sys/devices/system/cpu"
    governors = {}
    for path in sorted(cpu_dir.glob("cpu[0-9]*/cpufreq/scaling_governor")):
        value = _read(path)
        if value:
            governors[int(path.parent.parent.name[3:])] = value
    boost_file, boost_on = None, None
    for name, on_value, _ in BOOST_FILES:
        value = _read(root / name.lstrip("/"))
        if value is not None:
            boost_file, boost_on = name, value == on_value
            break
    before = take_snapshot(root / "proc", cpu_dir)
    started = time.monotonic()
    time.sleep(sample_s)
    after = take_snapshot(root / "proc", cpu_dir)
    elapsed = time.monotonic() - started
    cpus = tuple(sorted(after.cpus))
    window = noise_window(before, after, elapsed, cpus, (), {os.getpid()})
    busy = tuple(
        p for p in window.server.foreign if p.cpu_s >= BUSY_PROCESS_SHARE * window.window_s
    )
    sysctls = {}
    for name in (rule.name for rule in SYSCTL_RULES):
        value = _read(root / "proc/sys" / name.replace(".", "/"))
        if value is not None:
            sysctls[name] = " ".join(value.split())
    meminfo = _read(root / "proc/meminfo") or ""
    swap_total = _meminfo_bytes(meminfo, "SwapTotal")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return HostFacts(
        cpu_count=len(cpus) or (os.cpu_count() or 1),
        governors=governors,
        boost_file=boost_file,
        boost_on=boost_on,
        sample_s=round(elapsed, 2),
        steal_share=window.server.share(window.server.steal_s) if cpus else None,
        busy_processes=busy,
        sysctls=sysctls,
        nofile_soft=soft,
        nofile_hard=hard,
        transparent_hugepages=_selected(_read(root / "sys/kernel/mm/transparent_hugepage/enabled")),
        swap_total_bytes=swap_total,
        swap_used_bytes=swap_total - _meminfo_bytes(meminfo, "SwapFree"),
        wrk=find_tool("wrk"),
        nginx=find_tool("nginx"),
        socket_reset_problem=reset_problem(),
    )


# --- checks ---------------------------------------------------------------------------------


def check_governor(facts: HostFacts, connections: int) -> Finding:
    if not facts.governors:
        return Finding(
            check="CPU governor",
            status="info",
            found="not exposed (no cpufreq: in a VM the host sets the clock)",
        )
    slow = sorted(cpu for cpu, g in facts.governors.items() if g != "performance")
    names = ", ".join(sorted(set(facts.governors.values())))
    if not slow:
        return Finding(check="CPU governor", status="ok", found="performance on every CPU")
    return Finding(
        check="CPU governor",
        status="warn",
        found=f"{names} (CPUs {','.join(map(str, slow))} not on performance)",
        why="the clock follows the load, so the first seconds of every measurement run slower",
        fix="echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor",
    )


def check_boost(facts: HostFacts, connections: int) -> Finding:
    if facts.boost_on is None or facts.boost_file is None:
        return Finding(check="turbo boost", status="info", found="not exposed")
    if not facts.boost_on:
        return Finding(check="turbo boost", status="ok", found="off")
    off = next(off for name, _, off in BOOST_FILES if name == facts.boost_file)
    return Finding(
        check="turbo boost",
        status="warn",
        found="on",
        why="the clock then depends on temperature and on what the other cores do",
        fix=f"echo {off} | sudo tee {facts.boost_file}",
    )


def check_steal(facts: HostFacts, connections: int) -> Finding:
    if facts.steal_share is None:
        return Finding(check="CPU steal", status="info", found="/proc/stat not readable")
    found = f"{facts.steal_share * 100:.1f} % of CPU time over {facts.sample_s:g} s"
    if facts.steal_share <= STEAL_LIMIT:
        return Finding(check="CPU steal", status="ok", found=found)
    return Finding(
        check="CPU steal",
        status="warn",
        found=found,
        why="the hypervisor gives this VM's CPUs to other guests; throughput will move with them",
        fix="benchmark on a dedicated host, or repeat until precise: serverbench run --precision 5%",
    )


def check_busy_processes(facts: HostFacts, connections: int) -> Finding:
    if not facts.busy_processes:
        return Finding(
            check="busy processes",
            status="ok",
            found=f"none above {BUSY_PROCESS_SHARE * 100:.0f} % of a CPU over {facts.sample_s:g} s",
        )
    listed = ", ".join(
        f"{p.name} (pid {p.pid}, {p.cpu_s / facts.sample_s * 100:.0f} % of a CPU)"
        for p in facts.busy_processes[:5]
    )
    return Finding(
        check="busy processes",
        status="warn",
        found=listed,
        why="they compete with the server and wrk for the CPUs; a run records them per window",
        fix="stop them, or wait until they finish (pids "
        + " ".join(str(p.pid) for p in facts.busy_processes[:5])
        + ")",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SysctlRule:
    """A kernel setting the load needs enough of: `per_connection` of it for each connection."""

    name: str
    check: str
    per_connection: int
    why: str
    fix: str  # with {needed}


SYSCTL_RULES = (
    SysctlRule(
        name="net.core.somaxconn",
        check="somaxconn",
        per_connection=1,
        why=BACKLOG_WHY,
        fix="sudo sysctl -w net.core.somaxconn={needed}",
    ),
    SysctlRule(
        name="net.ipv4.tcp_max_syn_backlog",
        check="SYN backlog",
        per_connection=1,
        why=BACKLOG_WHY,
        fix="sudo sysctl -w net.ipv4.tcp_max_syn_backlog={needed}",
    ),
    # wrk's connections and the TIME_WAIT sockets of the run before both hold local ports
    SysctlRule(
        name="net.ipv4.ip_local_port_range",
        check="local port range",
        per_connection=2,
        why="reconnects and the previous run's TIME_WAIT sockets can run out of local ports",
        fix='sudo sysctl -w net.ipv4.ip_local_port_range="1024 65535"',
    ),
)


def _amount(raw: str) -> tuple[int, str] | None:
    """How much a sysctl value holds, and how to show it: a number is itself, a range
    `low high` is its size."""
    parts = raw.split()
    if not parts or not all(p.isdigit() for p in parts):
        return None
    if len(parts) == 1:
        return int(parts[0]), parts[0]
    if len(parts) == 2:
        size = int(parts[1]) - int(parts[0]) + 1
        return size, f"{parts[0]}-{parts[1]} ({size:,} ports)"
    return None


def check_sysctl(rule: SysctlRule, facts: HostFacts, connections: int) -> Finding:
    amount = _amount(facts.sysctls.get(rule.name, ""))
    if amount is None:
        return Finding(check=rule.check, status="info", found=f"{rule.name} not readable")
    held, shown = amount
    found = f"{rule.name} = {shown}"
    needed = rule.per_connection * connections
    if held >= needed:
        return Finding(check=rule.check, status="ok", found=found)
    return Finding(
        check=rule.check,
        status="warn",
        found=f"{found}, below the {needed:,} that {connections:,} connections need",
        why=rule.why,
        fix=rule.fix.format(needed=needed),
    )


def check_open_files(facts: HostFacts, connections: int) -> Finding:
    needed = connections + NOFILE_HEADROOM
    limit = "unlimited" if facts.nofile_hard == resource.RLIM_INFINITY else f"{facts.nofile_hard}"
    found = f"soft {facts.nofile_soft}, hard {limit}"
    if facts.nofile_hard == resource.RLIM_INFINITY or facts.nofile_hard >= needed:
        # run raises the soft limit to the hard one itself
        return Finding(check="open files (ulimit -n)", status="ok", found=found)
    return Finding(
        check="open files (ulimit -n)",
        status="fail",
        found=f"{found}; {connections:,} connections need about {needed:,}",
        why="run refuses a profile whose connections do not fit",
        fix=f"ulimit -n {needed} (as root), or `* hard nofile {needed}` in /etc/security/limits.conf",
    )


def check_transparent_hugepages(facts: HostFacts, connections: int) -> Finding:
    mode = facts.transparent_hugepages
    if mode is None:
        return Finding(check="transparent hugepages", status="info", found="not exposed")
    if mode != "always":
        return Finding(check="transparent hugepages", status="ok", found=mode)
    return Finding(
        check="transparent hugepages",
        status="warn",
        found=mode,
        why="khugepaged compacts memory behind the servers' backs: rare, long stalls",
        fix="echo madvise | sudo tee /sys/kernel/mm/transparent_hugepage/enabled",
    )


def check_swap(facts: HostFacts, connections: int) -> Finding:
    if facts.swap_total_bytes == 0:
        return Finding(check="swap", status="ok", found="none")
    used_mib = facts.swap_used_bytes / 2**20
    found = f"{used_mib:,.0f} MiB used of {facts.swap_total_bytes / 2**20:,.0f} MiB"
    if facts.swap_used_bytes == 0:
        return Finding(check="swap", status="ok", found=found)
    return Finding(
        check="swap",
        status="warn",
        found=found,
        why="a server or wrk page that was swapped out costs a disk read when touched",
        fix="sudo swapoff -a && sudo swapon -a (brings it back into memory, if it fits)",
    )


def _tool(name: str, path: str | None, missing: Status, why: str) -> Finding:
    if path:
        return Finding(check=name, status="ok", found=path)
    fix = f"sudo apt-get install {name} (or scripts/setup)"
    return Finding(check=name, status=missing, found="not found", why=why, fix=fix)


def check_wrk(facts: HostFacts, connections: int) -> Finding:
    return _tool("wrk", facts.wrk, "fail", "wrk applies every load")


def check_nginx(facts: HostFacts, connections: int) -> Finding:
    why = "the nginx-static ceiling and the nginx-* topologies need it"
    return _tool("nginx", facts.nginx, "warn", why)


def check_socket_reset(facts: HostFacts, connections: int) -> Finding:
    problem = facts.socket_reset_problem
    if problem is None:
        return Finding(check="socket reset", status="ok", found="ss -K resets closing sockets")
    return Finding(
        check="socket reset",
        status="warn" if connections >= LEFTOVER_CONNECTIONS else "info",
        found=problem,
        why="the connections a load leaves closing are not reset after it: past a full "
        "listen queue they reach the server for up to a minute more (the next window, the "
        "check after the load)",
        fix="run as root on a kernel with CONFIG_INET_DIAG_DESTROY (Debian's has it); "
        "sudo apt-get install iproute2",
    )


Check = Callable[[HostFacts, int], Finding]
CHECKS: tuple[Check, ...] = (
    check_governor,
    check_boost,
    check_steal,
    check_busy_processes,
    *(partial(check_sysctl, rule) for rule in SYSCTL_RULES),
    check_open_files,
    check_transparent_hugepages,
    check_swap,
    check_wrk,
    check_nginx,
    check_socket_reset,
)


def diagnose(facts: HostFacts, connections: int) -> list[Finding]:
    return [check(facts, connections) for check in CHECKS]


def render(findings: list[Finding]) -> str:
    width = max(len(f.check) for f in findings)
    lines = []
    for f in findings:
        lines.append(f"{f.status:<5} {f.check:<{width}}  {f.found}")
        indent = " " * (6 + width + 2)
        if f.why:
            lines.append(f"{indent}why: {f.why}")
        if f.fix:
            lines.append(f"{indent}fix: {f.fix}")
    return "\n".join(lines)


def finding_to_dict(finding: Finding) -> dict[str, str]:
    return {
        "check": finding.check,
        "status": finding.status,
        "found": finding.found,
        "why": finding.why,
        "fix": finding.fix,
    }


def warnings_of(findings: list[Finding]) -> list[str]:
    """The lines a run warns with: every finding that is not ok, with its fix."""
    return [
        f"{f.check}: {f.found}; {f.why}" + (f"; fix: {f.fix}" if f.fix else "")
        for f in findings
        if f.status in ("warn", "fail")
    ]
