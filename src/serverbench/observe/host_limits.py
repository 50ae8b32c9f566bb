"""The host's limits that bound a benchmark, and how the CPUs are split between server and wrk.

Owns: the open-file (RLIMIT_NOFILE) limit, the listen-backlog sysctls, the count of TCP sockets
in TIME_WAIT (read from /proc/net/tcp{,6}, never by shelling out), and `CpuSplit`, the CPUs
given to the server under test and to the load generator (for `taskset -c`).
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from serverbench.errors import UsageError

# Beyond the sockets themselves a process needs descriptors for its own files, pipes, logs and
# the libraries it opens; wrk and the servers both inherit our limit.
NOFILE_HEADROOM = 256

BACKLOG_SYSCTLS = ("net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog")
RECORDED_SYSCTLS = (
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_fin_timeout",
)

PROC_NET_TCP_FILES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
TCP_ESTABLISHED = 0x01
TCP_TIME_WAIT = 0x06


# --- file descriptors -------------------------------------------------------------------------


def raise_nofile_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; children inherit it.

    Returns (soft, hard) after raising; resource.RLIM_INFINITY (-1) means unlimited.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        # An unlimited hard limit is refused as a soft limit above fs.nr_open: use that ceiling.
        nr_open = read_sysctl("fs.nr_open")
        if nr_open is not None and nr_open.isdigit():
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (int(nr_open), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def check_connections_fit(connections: int) -> None:
    """Raise UsageError when `connections` sockets plus headroom exceed the open-file limit."""
    soft, hard = raise_nofile_limit()
    if soft == resource.RLIM_INFINITY:
        return
    needed = connections + NOFILE_HEADROOM
    if needed > soft:
        raise UsageError(
            f"{connections} connections need about {needed} open files, but the open-file limit "
            f"is {soft} (hard limit {hard}); raise it before running, e.g. `ulimit -n {needed}` "
            f"in this shell, or a `nofile` line in /etc/security/limits.conf "
            f"(`* hard nofile {needed}`), or use fewer connections"
        )


# --- sysctls ------------------------------------------------------------------------------------


def read_sysctl(name: str, proc_sys: Path = Path("/proc/sys")) -> str | None:
    """The value of a sysctl with whitespace collapsed ("32768 60999"), or None if unreadable."""
    try:
        text = (proc_sys / name.replace(".", "/")).read_text()
    except OSError:
        return None
    return " ".join(text.split())


def read_sysctls(
    names: Iterable[str] = RECORDED_SYSCTLS, proc_sys: Path = Path("/proc/sys")
) -> dict[str, str]:
    """Read sysctls; the ones that are missing or unreadable are omitted."""
    values: dict[str, str] = {}
    for name in names:
        value = read_sysctl(name, proc_sys)
        if value is not None:
            values[name] = value
    return values


def backlog_warnings_for(connections: int, sysctls: Mapping[str, str]) -> list[str]:
    """One warning per backlog sysctl below `connections`, with the command that fixes it."""
    warnings: list[str] = []
    for name in BACKLOG_SYSCTLS:
        raw = sysctls.get(name)
        if raw is None:
            continue
        try:
            value = int(raw)
        except ValueError:
            continue
        if value < connections:
            warnings.append(
                f"{name} is {value}, below {connections} connections: connection bursts may "
                f"overflow the listen backlog and show up as errors or slow connects; "
                f"raise it with `sudo sysctl -w {name}={connections}`"
            )
    return warnings


def backlog_warnings(connections: int) -> list[str]:
    """Warnings for this host's listen-backlog sysctls that are below `connections`."""
    return backlog_warnings_for(connections, read_sysctls(BACKLOG_SYSCTLS))


# --- TCP sockets from /proc/net/tcp -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpSocket:
    state: int  # kernel TCP state number: 0x01 ESTABLISHED, 0x06 TIME_WAIT, 0x0A LISTEN, ...
    inode: int  # 0 for sockets no process owns any more (TIME_WAIT)


def parse_proc_net_tcp(text: str) -> list[TcpSocket]:
    """Parse the content of /proc/net/tcp or /proc/net/tcp6 (header line first)."""
    sockets: list[TcpSocket] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
        if len(fields) < 10:
            continue
        try:
            sockets.append(TcpSocket(state=int(fields[3], 16), inode=int(fields[9])))
        except ValueError:
            continue
    return sockets


def count_state(text: str, state: int) -> int:
    return sum(1 for s in parse_proc_net_tcp(text) if s.state == state)


def read_proc_net_tcp(files: Sequence[Path] = PROC_NET_TCP_FILES) -> str:
    """The concatenated socket lines of the files (one header kept); missing files are skipped."""
    lines: list[str] = ["header"]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        lines.extend(text.splitlines()[1:])
    return "\n".join(lines)


def time_wait_count(files: Sequence[Path] = PROC_NET_TCP_FILES) -> int:
    """How many TCP sockets (IPv4 and IPv6) are in TIME_WAIT on this host."""
    return count_state(read_proc_net_tcp(files), TCP_TIME_WAIT)


def wait_for_time_wait_drain(
    threshold: int,
    max_wait_s: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    count: Callable[[], int] = time_wait_count,
    poll_s: float = 0.5,
) -> float:
    """Wait until at most `threshold` sockets are in TIME_WAIT, or `max_wait_s` has passed.

    Leftover TIME_WAIT sockets from one run hold local ports and skew the next run's connects.
    Returns the seconds waited.
    """
    start = clock()
    while True:
        waited = clock() - start
        if count() <= threshold or waited >= max_wait_s:
            return waited
        sleep(min(poll_s, max_wait_s - waited))


# --- CPU split ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuSplit:
    server_cpus: tuple[int, ...]
    client_cpus: tuple[int, ...]
    shared: bool  # the two sets overlap: one CPU only, or the user chose so

    def server_taskset(self) -> str:
        return format_cpu_list(self.server_cpus)

    def client_taskset(self) -> str:
        return format_cpu_list(self.client_cpus)


def format_cpu_list(cpus: Iterable[int]) -> str:
    """Compact `taskset -c` form: (0,) -> "0", (0,1,2) -> "0-2", (0,2,3,4,7) -> "0,2-4,7"."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def parse_cpu_list(text: str, option: str = "CPU list") -> tuple[int, ...]:
    """Parse "0", "0-3", "0,2,5", "0-1,4" into sorted unique CPU numbers; UsageError if bad."""
    cpus: set[int] = set()
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise UsageError(
            f"{option} {text!r}: not a CPU list; write CPUs like 0, 0-3 or 0,2,5 (as taskset -c)"
        )
    for item in items:
        low_text, dash, high_text = item.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if dash else low
        except ValueError:
            raise UsageError(
                f"{option} {text!r}: {item!r} is not a CPU number or range; "
                f"write CPUs like 0, 0-3 or 0,2,5 (as taskset -c)"
            ) from None
        if low < 0 or high < low:
            raise UsageError(
                f"{option} {text!r}: {item!r} is not a valid range; write low-high with low <= high"
            )
        cpus.update(range(low, high + 1))
    return tuple(sorted(cpus))


def _validate(cpus: tuple[int, ...], option: str, text: str, available: Sequence[int]) -> None:
    missing = [cpu for cpu in cpus if cpu not in available]
    if missing:
        noun = "CPU" if len(missing) == 1 else "CPUs"
        verb = "is" if len(missing) == 1 else "are"
        raise UsageError(
            f"{option} {text}: {noun} {format_cpu_list(missing)} {verb} not available here "
            f"(available: {format_cpu_list(available)}); choose among the available CPUs"
        )


def plan_cpu_split(
    available: Sequence[int], server_cpus: str | None, client_cpus: str | None
) -> CpuSplit:
    """Decide which CPUs the server and the load generator (wrk) are pinned to.

    `available` is sorted(os.sched_getaffinity(0)). By default wrk gets the highest-numbered
    max(1, n // 3) CPUs and the server the rest (2 CPUs: server 0, wrk 1; 4: 0-2 / 3;
    8: 0-5 / 6-7); with one CPU both share it. When only one side is given, the other gets the
    remaining CPUs, or shares them if none remain.
    """
    avail = tuple(sorted(set(available)))
    if not avail:
        raise UsageError("no CPU is available to this process; check its CPU affinity (taskset)")

    server = client = None
    if server_cpus is not None:
        server = parse_cpu_list(server_cpus, "--server-cpus")
        _validate(server, "--server-cpus", server_cpus, avail)
    if client_cpus is not None:
        client = parse_cpu_list(client_cpus, "--client-cpus")
        _validate(client, "--client-cpus", client_cpus, avail)

    if server is None:
        if client is None:
            if len(avail) == 1:
                return CpuSplit(server_cpus=avail, client_cpus=avail, shared=True)
            n_client = max(1, len(avail) // 3)
            return CpuSplit(
                server_cpus=avail[:-n_client], client_cpus=avail[-n_client:], shared=False
            )
        server = tuple(cpu for cpu in avail if cpu not in client) or client
    elif client is None:
        client = tuple(cpu for cpu in avail if cpu not in server) or server
    shared = bool(set(server) & set(client))
    return CpuSplit(server_cpus=server, client_cpus=client, shared=shared)
