"""The kernel's TCP counters around a measurement: what the listen queues dropped.

`/proc/net/netstat` counts, for the whole host, connections dropped because a listen queue was
full (ListenOverflows, ListenDrops) and SYN cookies sent because the SYN queue was. During a
measurement only the stack under test is being connected to, so the difference over the
measured window says whether its backlog, or its speed at accepting, lost connections: the
cause behind many wrk timeouts and connect errors at high connection counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

NETSTAT = Path("/proc/net/netstat")
COUNTERS = {
    "ListenOverflows": "listen_overflows",
    "ListenDrops": "listen_drops",
    "SyncookiesSent": "syncookies_sent",
}


def parse_netstat(text: str) -> dict[str, int]:
    """The TcpExt counters we record, from /proc/net/netstat's header/value line pairs."""
    lines = text.splitlines()
    found: dict[str, int] = {}
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        names, numbers = header.split(), values.split()
        if not names or names[0] != "TcpExt:":
            continue
        for name, number in zip(names[1:], numbers[1:], strict=False):
            if name in COUNTERS:
                found[COUNTERS[name]] = int(number)
    return found


def read_counters(path: Path = NETSTAT) -> dict[str, int]:
    try:
        return parse_netstat(path.read_text())
    except OSError:
        return {}  # no procfs here: the run records no counters rather than failing


def difference(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in after if key in before}
