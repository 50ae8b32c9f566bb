"""Resource use of the benchmarked processes during a measured window.

Owns `Monitor`, a daemon thread that samples named components (each a process tree: a root pid
and every descendant found at each sample, since workers fork and respawn) at a fixed interval,
and `Usage`, what it measured: CPU seconds and percent, peak and mean RSS, threads, processes
and established TCP connections per component.

How it is measured, and why:
- One scan of /proc per sample gives every process's parent, state and start time; the trees are
  built from it for all components at once (psutil's children() rescans /proc per call), and a
  process is identified by (pid, start time) so a recycled pid is never mistaken for a worker.
- CPU: user+system time of each process, from psutil. A process seen at the first sample counts
  from its value then; one that appears later counts from its start (it was born in the window);
  one that vanishes counts up to its last sample. Reaped children's times (children_user) are
  not added: the children were already sampled themselves.
  A process born and gone between two samples is missed (its time lands in its parent's
  children_user only once reaped); keep the interval short next to worker lifetimes.
- A process that leaves the tree but is still alive (reparented when its parent died) is kept.
- Connections: distinct established TCP sockets held by the tree (a socket a forked worker
  inherited counts once), found by parsing /proc/net/tcp{,6} once per sample and matching
  socket inodes against each process's /proc/<pid>/fd (psutil's net_connections re-reads those
  files once per process). Even so this is costly with thousands of sockets: the kernel takes
  ~19 ms to print 10,000 lines of /proc/net/tcp and readlink costs ~5 us per descriptor. So
  connections are sampled at the first sample and then at most every `connections_every`-th
  sample (4 by default: once a second at 0.25 s), further apart when one connection sample costs
  more than `connections_cpu_budget` (2%) of the time until the next.
- Processes that vanish or deny access mid-sample are normal and skipped; the sampler never
  raises into the benchmark for them. Its own CPU time is recorded as `Usage.sampler_cpu_s`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

import psutil

from serverbench.observe.host_limits import PROC_NET_TCP_FILES, TCP_ESTABLISHED

# Identity of a process that survives pid reuse: (pid, start time in clock ticks since boot).
ProcKey = tuple[int, int]

ESTABLISHED_HEX = b"%02X" % TCP_ESTABLISHED


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentUsage:
    name: str  # "gunicorn", "nginx", "supervisord", "bjoern-1", "wrk"
    processes_max: int  # most processes seen at once in the tree
    cpu_seconds: float  # user+system CPU consumed in the window
    cpu_percent_mean: float  # cpu_seconds / window * 100; above 100 with several cores
    cpu_percent_max: float  # highest value over one sampling interval
    rss_peak_bytes: int  # summed over the tree
    rss_mean_bytes: int
    threads_max: int
    connections_max: int  # established TCP connections held by the tree


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    window_s: float
    interval_s: float
    samples: int
    components: tuple[ComponentUsage, ...]
    sampler_cpu_s: float = 0.0  # CPU time the sampler itself spent, for judging its overhead

    def component(self, name: str) -> ComponentUsage:
        for usage in self.components:
            if usage.name == name:
                return usage
        raise KeyError(name)

    def cpu_seconds_for(self, names: Iterable[str]) -> float:
        """Total CPU seconds of the named components (e.g. every server-side component)."""
        return sum(self.component(name).cpu_seconds for name in names)


@dataclass(frozen=True, slots=True)
class _ProcStat:
    ppid: int
    start_ticks: int
    zombie: bool


def _scan_proc() -> dict[int, _ProcStat]:
    """Parent, start time and zombie state of every process, from /proc/<pid>/stat."""
    table: dict[int, _ProcStat] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    # This runs over every process of the host at each sample: raw os calls, no pathlib.
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{entry}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            raw = os.read(fd, 4096)
        except OSError:
            continue
        finally:
            os.close(fd)
        # comm may contain spaces and parentheses; the fields start after the last ")".
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) < 20:
            continue
        try:
            table[int(entry)] = _ProcStat(
                ppid=int(fields[1]), start_ticks=int(fields[19]), zombie=fields[0] in (b"Z", b"X")
            )
        except ValueError:
            continue
    return table


def _established_inodes() -> set[int]:
    """Inodes of the host's established TCP sockets (IPv4 and IPv6)."""
    inodes: set[int] = set()
    for path in PROC_NET_TCP_FILES:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        # Hot with thousands of sockets: split and compare bytes, build nothing per line.
        for line in raw.splitlines()[1:]:
            fields = line.split(None, 10)
            if len(fields) > 9 and fields[3] == ESTABLISHED_HEX:
                inodes.add(int(fields[9]))
    return inodes


def _socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets a process holds open, from readlink of /proc/<pid>/fd/*."""
    inodes: set[int] = set()
    try:
        dir_fd = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return inodes
    try:
        for fd in os.listdir(dir_fd):
            try:
                target = os.readlink(fd, dir_fd=dir_fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1].isdigit():
                inodes.add(int(target[8:-1]))
    finally:
        os.close(dir_fd)
    return inodes


@dataclass(slots=True)
class _Component:
    name: str
    root_pid: int
    known: set[ProcKey] = field(default_factory=set)  # every process ever in the tree
    initial: set[ProcKey] = field(default_factory=set)  # in the tree when the window opened
    baseline_cpu: dict[ProcKey, float] = field(default_factory=dict)
    last_cpu: dict[ProcKey, float] = field(default_factory=dict)
    processes_max: int = 0
    cpu_percent_max: float = 0.0
    rss_peak: int = 0
    rss_sum: int = 0
    threads_max: int = 0
    connections_max: int = 0


class Monitor:
    """Sample process trees from start() to stop(); also a context manager (`.usage` after)."""

    def __init__(
        self,
        components: Mapping[str, int],
        interval_s: float = 0.25,
        connections_every: int = 4,
        connections_cpu_budget: float = 0.02,
    ) -> None:
        if interval_s <= 0 or connections_every < 1 or connections_cpu_budget <= 0:
            raise ValueError("interval_s, connections_every and connections_cpu_budget must be > 0")
        self._components = [_Component(name, pid) for name, pid in components.items()]
        self._interval_s = interval_s
        self._connections_every = connections_every
        self._connections_cpu_budget = connections_cpu_budget
        self._next_connections_t = 0.0
        self._processes: dict[ProcKey, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._samples = 0
        self._first_t = 0.0
        self._last_t = 0.0
        self._sampler_cpu_s = 0.0
        self._usage: Usage | None = None

    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def usage(self) -> Usage:
        if self._usage is None:
            raise RuntimeError("Monitor.usage read before stop()")
        return self._usage

    def start(self) -> None:
        """Take the baseline sample now, then keep sampling in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("Monitor.start() called twice")
        self._sample()
        self._thread = threading.Thread(target=self._run, name="serverbench-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> Usage:
        """Stop the thread, take a last sample now, and return the usage; idempotent."""
        if self._usage is not None:
            return self._usage
        if self._thread is None:
            raise RuntimeError("Monitor.stop() called before start()")
        self._stop.set()
        self._thread.join()
        self._sample()
        self._usage = self._result()
        return self._usage

    def _run(self) -> None:
        next_t = time.monotonic() + self._interval_s
        while not self._stop.wait(max(0.0, next_t - time.monotonic())):
            self._sample()
            next_t += self._interval_s
            now = time.monotonic()
            if next_t < now:
                # Fell behind (a slow sample or a stalled CPU): skip missed ticks, keep the phase.
                next_t += (int((now - next_t) / self._interval_s) + 1) * self._interval_s

    def _sample(self) -> None:
        with self._lock:
            cpu_before = time.thread_time()
            now = time.monotonic()
            self._sample_locked(now)
            self._sampler_cpu_s += time.thread_time() - cpu_before

    def _sample_locked(self, now: float) -> None:
        cpu_before = time.thread_time()
        first = self._samples == 0
        dt = now - self._last_t
        table = _scan_proc()
        children: dict[int, list[int]] = {}
        for pid, stat in table.items():
            children.setdefault(stat.ppid, []).append(pid)
        sample_connections = now >= self._next_connections_t
        # CPU is read first, at the sample's time; the connections after it, since parsing
        # /proc/net/tcp with thousands of TIME_WAIT sockets (a server that closes every
        # connection) can take longer than the step, and would move the CPU baseline late
        sockets: dict[str, set[int]] = {}

        for comp in self._components:
            tree = self._tree(comp, table, children)
            if first:
                comp.initial.update(tree)
            cpu_delta = 0.0
            rss = threads = processes = 0
            # A set, not a count: forked workers inherit their parent's sockets.
            tree_sockets: set[int] = set()
            for key in tree:
                proc = self._process(key)
                if proc is None:
                    continue
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        rss_bytes = proc.memory_info().rss
                        num_threads = proc.num_threads()
                except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                    continue
                cpu = times.user + times.system
                if key not in comp.last_cpu:
                    comp.baseline_cpu[key] = cpu if key in comp.initial else 0.0
                    comp.last_cpu[key] = comp.baseline_cpu[key]
                cpu_delta += cpu - comp.last_cpu[key]
                comp.last_cpu[key] = cpu
                processes += 1
                rss += rss_bytes
                threads += num_threads
                if sample_connections:
                    tree_sockets |= _socket_inodes(key[0])
            comp.processes_max = max(comp.processes_max, processes)
            comp.rss_peak = max(comp.rss_peak, rss)
            comp.rss_sum += rss
            comp.threads_max = max(comp.threads_max, threads)
            sockets[comp.name] = tree_sockets
            if not first and dt > 0:
                comp.cpu_percent_max = max(comp.cpu_percent_max, cpu_delta / dt * 100.0)
        if sample_connections:
            established = _established_inodes()
            for comp in self._components:
                held = len(sockets[comp.name] & established)
                comp.connections_max = max(comp.connections_max, held)
            cost_s = time.thread_time() - cpu_before
            gap_s = max(
                self._connections_every * self._interval_s, cost_s / self._connections_cpu_budget
            )
            # Half an interval early, so timer jitter does not push it one sample later.
            self._next_connections_t = now + gap_s - self._interval_s / 2
        if first:
            self._first_t = now
        self._last_t = now
        self._samples += 1

    def _tree(
        self, comp: _Component, table: Mapping[int, _ProcStat], children: Mapping[int, list[int]]
    ) -> list[ProcKey]:
        """The live, non-zombie processes of a component: root, descendants, and earlier members."""
        found: dict[int, None] = {}
        stack = [comp.root_pid] if comp.root_pid in table else []
        while stack:
            pid = stack.pop()
            if pid in found:
                continue
            found[pid] = None
            stack.extend(children.get(pid, ()))
        for pid, start_ticks in comp.known:
            stat = table.get(pid)
            if stat is not None and stat.start_ticks == start_ticks and pid not in found:
                found[pid] = None
                stack.append(pid)
        # Descendants of reparented members belong to the tree too.
        while stack:
            pid = stack.pop()
            for child in children.get(pid, ()):
                if child not in found:
                    found[child] = None
                    stack.append(child)
        keys: list[ProcKey] = []
        for pid in found:
            stat = table[pid]
            if stat.zombie:
                continue
            key = (pid, stat.start_ticks)
            comp.known.add(key)
            keys.append(key)
        return keys

    def _process(self, key: ProcKey) -> psutil.Process | None:
        proc = self._processes.get(key)
        if proc is None:
            try:
                proc = psutil.Process(key[0])
            except psutil.Error:
                return None
            self._processes[key] = proc
        return proc

    def _result(self) -> Usage:
        window_s = self._last_t - self._first_t
        components = []
        for comp in self._components:
            cpu_seconds = sum(comp.last_cpu[k] - comp.baseline_cpu[k] for k in comp.last_cpu)
            components.append(
                ComponentUsage(
                    name=comp.name,
                    processes_max=comp.processes_max,
                    cpu_seconds=cpu_seconds,
                    cpu_percent_mean=cpu_seconds / window_s * 100.0 if window_s > 0 else 0.0,
                    cpu_percent_max=comp.cpu_percent_max,
                    rss_peak_bytes=comp.rss_peak,
                    rss_mean_bytes=comp.rss_sum // self._samples if self._samples else 0,
                    threads_max=comp.threads_max,
                    connections_max=comp.connections_max,
                )
            )
        return Usage(
            window_s=window_s,
            interval_s=self._interval_s,
            samples=self._samples,
            components=tuple(components),
            sampler_cpu_s=self._sampler_cpu_s,
        )
