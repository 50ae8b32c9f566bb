"""What else the machine did during a measured window: the noise a slow result may come from.

Owns `Snapshot` (the host read at one instant: per-CPU times from /proc/stat, every process's
CPU time and last CPU from /proc/<pid>/stat, the CPU frequency from cpufreq when the kernel
exposes it, pressure totals from /proc/pressure) and `NoiseWindow`, the difference of two
snapshots for the server and client CPU sets: steal and iowait time, the busy time of the CPUs,
processes outside the benchmark that used CPU on them (named), frequency at both ends, and the
share of the window tasks stalled on memory or CPU. `disturbances()` turns a window into the
findings a report shows, each with its numbers.

Why these: on a VM the host takes CPU away (steal) without the guest seeing it as busy; a
process of someone else's running on the server's CPU looks like a slow server; a frequency
change makes every request cheaper or dearer; memory pressure stalls the server in reclaim.
A process is attributed to the CPU set of the CPU it last ran on (/proc/<pid>/stat field 39):
exact for pinned processes, a good guess for others over a window of seconds.

Kernel threads (children of kthreadd) are listed apart and never count as foreign: on
loopback, ksoftirqd and kworkers do the benchmark's own network work.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KTHREADD_PID = 2

# Above these a window is disturbed: the share of the set's CPU time, or of the window.
STEAL_LIMIT = 0.02
IOWAIT_LIMIT = 0.05
FOREIGN_CPU_LIMIT = 0.05  # foreign processes' CPU over the set's CPU time
MEMORY_PRESSURE_LIMIT = 0.01  # some task stalled on memory for 1 % of the window
FREQUENCY_CHANGE_LIMIT = 0.05
# A foreign process is named when it used at least this share of one CPU.
NAMED_PROCESS_SHARE = 0.01


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuTicks:
    """One CPU's line of /proc/stat, in clock ticks since boot."""

    busy: int  # user + nice + system + irq + softirq
    idle: int
    iowait: int
    steal: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessTicks:
    name: str
    start_ticks: int  # with the pid, identifies the process across pid reuse
    cpu_ticks: int  # utime + stime
    last_cpu: int
    kernel_thread: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    cpus: dict[int, CpuTicks]
    processes: dict[int, ProcessTicks]
    frequency_khz: dict[int, int]  # empty when the kernel exposes no cpufreq (many VMs)
    pressure_us: dict[str, int]  # "cpu_some", "memory_some", "memory_full", "io_some", ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ForeignProcess:
    pid: int
    name: str
    cpu_s: float
    cpu: int  # the CPU it last ran on


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuSetNoise:
    """What happened on one CPU set (the server's or the client's) during the window."""

    cpus: tuple[int, ...]
    capacity_s: float  # window x CPUs: the set's CPU time
    busy_s: float
    steal_s: float
    iowait_s: float
    foreign_cpu_s: float
    foreign: tuple[ForeignProcess, ...]  # busiest first, those above NAMED_PROCESS_SHARE
    kernel_cpu_s: float  # kernel threads: the benchmark's own network work, mostly
    frequency_khz: tuple[tuple[int, int], ...] = ()  # (at the start, at the end) per CPU

    def share(self, seconds: float) -> float:
        return seconds / self.capacity_s if self.capacity_s > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Disturbance:
    kind: str  # steal, iowait, foreign_cpu, frequency, memory_pressure
    side: str  # "server", "client" or "" for the host
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NoiseWindow:
    """The noise of one measured window, as a run records it, with what was found disturbed
    (judged when measured, by the limits of that time)."""

    window_s: float
    server: CpuSetNoise
    client: CpuSetNoise
    pressure_share: dict[str, float] = field(default_factory=dict)  # stalled time / window
    disturbances: tuple[Disturbance, ...] = ()


# --- reading ------------------------------------------------------------------------------------


def parse_proc_stat(text: str) -> dict[int, CpuTicks]:
    """Per-CPU ticks from /proc/stat's "cpuN" lines (the all-CPU "cpu" line is skipped)."""
    cpus: dict[int, CpuTicks] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        try:
            number = int(name[3:])
            values = [int(v) for v in rest.split()]
        except ValueError:
            continue
        values += [0] * (8 - len(values))
        user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
        cpus[number] = CpuTicks(
            busy=user + nice + system + irq + softirq, idle=idle, iowait=iowait, steal=steal
        )
    return cpus


def parse_pid_stat(raw: str) -> ProcessTicks | None:
    """One /proc/<pid>/stat line; None if it is cut short."""
    open_paren, close_paren = raw.find("("), raw.rfind(")")
    if open_paren < 0 or close_paren < 0:
        return None
    # comm may hold spaces and parentheses: the fields start after the last ")"
    fields = raw[close_paren + 2 :].split()
    if len(fields) < 37:
        return None
    try:
        return ProcessTicks(
            name=raw[open_paren + 1 : close_paren],
            start_ticks=int(fields[19]),
            cpu_ticks=int(fields[11]) + int(fields[12]),
            last_cpu=int(fields[36]),
            kernel_thread=int(fields[1]) == KTHREADD_PID or int(fields[1]) == 0,
        )
    except ValueError:
        return None


def parse_pressure(resource: str, text: str) -> dict[str, int]:
    """{"<resource>_some": total_us, "<resource>_full": total_us} from a /proc/pressure file."""
    totals: dict[str, int] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        for item in rest.split():
            key, _, value = item.partition("=")
            if key == "total" and value.isdigit():
                totals[f"{resource}_{kind}"] = int(value)
    return totals


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def read_processes(proc: Path = Path("/proc")) -> dict[int, ProcessTicks]:
    found: dict[int, ProcessTicks] = {}
    try:
        entries = os.listdir(proc)
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        raw = _read(proc / entry / "stat")
        parsed = parse_pid_stat(raw) if raw else None
        if parsed is not None:
            found[int(entry)] = parsed
    return found


def read_frequencies(sys_cpu: Path = Path("/sys/devices/system/cpu")) -> dict[int, int]:
    found: dict[int, int] = {}
    for path in sys_cpu.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"):
        text = _read(path)
        if text and text.strip().isdigit():
            found[int(path.parent.parent.name[3:])] = int(text.strip())
    return found


def take_snapshot(
    proc: Path = Path("/proc"), sys_cpu: Path = Path("/sys/devices/system/cpu")
) -> Snapshot:
    """The host now. Anything unreadable is left out: a snapshot never fails."""
    pressure: dict[str, int] = {}
    for resource in ("cpu", "memory", "io"):
        text = _read(proc / "pressure" / resource)
        if text:
            pressure.update(parse_pressure(resource, text))
    return Snapshot(
        cpus=parse_proc_stat(_read(proc / "stat") or ""),
        processes=read_processes(proc),
        frequency_khz=read_frequencies(sys_cpu),
        pressure_us=pressure,
    )


# --- the window -------------------------------------------------------------------------------


def _cpu_set(
    before: Snapshot,
    after: Snapshot,
    cpus: Collection[int],
    window_s: float,
    used: Mapping[int, tuple[ProcessTicks, float]],
) -> CpuSetNoise:
    def ticks(attr: str) -> float:
        total = 0
        for cpu in cpus:
            if cpu in before.cpus and cpu in after.cpus:
                total += getattr(after.cpus[cpu], attr) - getattr(before.cpus[cpu], attr)
        return total / CLOCK_TICKS

    mine = [(pid, p, s) for pid, (p, s) in used.items() if p.last_cpu in cpus]
    foreign = [(pid, p, s) for pid, p, s in mine if not p.kernel_thread]
    capacity_s = window_s * len(cpus)
    named = sorted(
        (
            ForeignProcess(pid=pid, name=p.name, cpu_s=round(s, 3), cpu=p.last_cpu)
            for pid, p, s in foreign
            if s >= NAMED_PROCESS_SHARE * window_s
        ),
        key=lambda f: -f.cpu_s,
    )
    return CpuSetNoise(
        cpus=tuple(sorted(cpus)),
        capacity_s=capacity_s,
        busy_s=ticks("busy"),
        steal_s=ticks("steal"),
        iowait_s=ticks("iowait"),
        foreign_cpu_s=sum(s for _, _, s in foreign),
        foreign=tuple(named),
        kernel_cpu_s=sum(s for _, p, s in mine if p.kernel_thread),
        frequency_khz=tuple(
            (before.frequency_khz[cpu], after.frequency_khz[cpu])
            for cpu in sorted(cpus)
            if cpu in before.frequency_khz and cpu in after.frequency_khz
        ),
    )


def noise_window(
    before: Snapshot,
    after: Snapshot,
    window_s: float,
    server_cpus: Collection[int],
    client_cpus: Collection[int],
    benchmark_pids: Collection[int],
) -> NoiseWindow:
    """The noise between two snapshots; `benchmark_pids` (the stack's processes, wrk,
    serverbench itself) are the measurement, everything else is noise."""
    used: dict[int, tuple[ProcessTicks, float]] = {}
    for pid, now in after.processes.items():
        if pid in benchmark_pids:
            continue
        then = before.processes.get(pid)
        # a process born in the window counts from zero
        start = then.cpu_ticks if then is not None and then.start_ticks == now.start_ticks else 0
        seconds = (now.cpu_ticks - start) / CLOCK_TICKS
        if seconds > 0:
            used[pid] = (now, seconds)
    pressure = {
        key: (after.pressure_us[key] - before.pressure_us[key]) / 1e6 / window_s
        for key in after.pressure_us
        if key in before.pressure_us and window_s > 0
    }
    window = NoiseWindow(
        window_s=window_s,
        server=_cpu_set(before, after, server_cpus, window_s, used),
        client=_cpu_set(before, after, client_cpus, window_s, used),
        pressure_share=pressure,
    )
    return replace(window, disturbances=tuple(disturbances(window)))


# --- findings -----------------------------------------------------------------------------------


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def _processes(items: Iterable[ForeignProcess], limit: int = 3) -> str:
    listed = list(items)
    shown = ", ".join(f"{p.name} (pid {p.pid}, {p.cpu_s:.2f} s)" for p in listed[:limit])
    more = len(listed) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def disturbances(window: NoiseWindow) -> list[Disturbance]:
    """Each way the window was disturbed beyond its limit, with the numbers that show it."""
    found: list[Disturbance] = []
    for side, noise in (("server", window.server), ("client", window.client)):
        where = f"the {side} CPUs ({','.join(map(str, noise.cpus))})"
        steal = noise.share(noise.steal_s)
        if steal > STEAL_LIMIT:
            found.append(
                Disturbance(
                    kind="steal",
                    side=side,
                    text=f"the hypervisor took {_pct(steal)} of {where} "
                    f"({noise.steal_s:.2f} s of {noise.capacity_s:.1f} s, CPU steal)",
                )
            )
        iowait = noise.share(noise.iowait_s)
        if iowait > IOWAIT_LIMIT:
            found.append(
                Disturbance(
                    kind="iowait",
                    side=side,
                    text=f"{where} waited on disk I/O for {_pct(iowait)} of the window "
                    f"({noise.iowait_s:.2f} s)",
                )
            )
        foreign = noise.share(noise.foreign_cpu_s)
        if foreign > FOREIGN_CPU_LIMIT:
            named = f": {_processes(noise.foreign)}" if noise.foreign else ""
            found.append(
                Disturbance(
                    kind="foreign_cpu",
                    side=side,
                    text=f"processes outside the benchmark used {_pct(foreign)} of {where} "
                    f"({noise.foreign_cpu_s:.2f} s){named}",
                )
            )
        for cpu, (start, end) in zip(noise.cpus, noise.frequency_khz, strict=False):
            if start and abs(end - start) / start > FREQUENCY_CHANGE_LIMIT:
                found.append(
                    Disturbance(
                        kind="frequency",
                        side=side,
                        text=f"CPU {cpu} ran at {start / 1000:.0f} MHz at the start of the "
                        f"window and {end / 1000:.0f} MHz at its end",
                    )
                )
    memory = window.pressure_share.get("memory_some", 0.0)
    if memory > MEMORY_PRESSURE_LIMIT:
        found.append(
            Disturbance(
                kind="memory_pressure",
                side="",
                text=f"tasks stalled on memory for {_pct(memory)} of the window "
                "(/proc/pressure/memory): reclaim or swapping slowed the host",
            )
        )
    return found


class NoiseProbe:
    """Snapshot at start(), snapshot at stop(): the noise of the window between them."""

    def __init__(self, server_cpus: Collection[int], client_cpus: Collection[int]) -> None:
        self._server_cpus = tuple(server_cpus)
        self._client_cpus = tuple(client_cpus)
        self._before: Snapshot | None = None
        self._started_s = 0.0

    def start(self) -> None:
        self._before = take_snapshot()
        self._started_s = time.monotonic()

    def stop(self, benchmark_pids: Collection[int]) -> NoiseWindow:
        if self._before is None:
            raise RuntimeError("NoiseProbe.stop() called before start()")
        after = take_snapshot()
        return noise_window(
            self._before,
            after,
            time.monotonic() - self._started_s,
            self._server_cpus,
            self._client_cpus,
            {*benchmark_pids, os.getpid()},
        )
