"""Server logs kept bounded: each one capped, what was cut marked in it and counted.

An app that prints on every request fills a server's log at tens of MB per second under load
(gunicorn.log: 108 MB in 2 s), gigabytes per job at the seed profile's durations. The servers
write their logs themselves (O_APPEND), so `LogCap` watches the files from a thread and, when
one passes `limit_bytes`, cuts it in place: its first `head_bytes` stay (how the server
started), a marker line says how much was cut, and the last `tail_bytes` follow (what it said
last, which a failure's log tail needs). The writer keeps appending after the cut, since
O_APPEND writes always land at the end. Bytes a writer appends in the instant between the
read of the tail and the cut are lost with the middle (and not counted: `written_bytes` is a
lower bound for a log that was cut); the marker says where.

`LogCap.sizes()` gives, per log, the bytes written in all and the bytes cut; `written_during()`
the bytes written between two moments, for the warning about an app that logs heavily under
load (the writing costs the server CPU too).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from serverbench.results.model import LogSize

LIMIT_BYTES = 32 * 1024 * 1024
HEAD_BYTES = 1024 * 1024
TAIL_BYTES = 1024 * 1024
INTERVAL_S = 0.25
# above this many bytes per second during the measured window, the report warns
HEAVY_BYTES_PER_S = 1024 * 1024


def _marker(cut_bytes: int, limit_bytes: int) -> bytes:
    return (
        f"\n[serverbench: {cut_bytes:,} bytes cut here to keep this log under "
        f"{limit_bytes:,} bytes]\n"
    ).encode()


def cut(path: Path, *, head_bytes: int, tail_bytes: int, limit_bytes: int) -> tuple[int, int]:
    """Cut the middle of the file at path in place: (bytes removed, bytes of our marker)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
    except OSError:
        return 0, 0
    try:
        size = os.fstat(fd).st_size
        if size <= limit_bytes:
            return 0, 0
        tail = os.pread(fd, tail_bytes, size - tail_bytes)
        # what the writer appended meanwhile joins the tail; the window left is a few system
        # calls wide, and what lands in it is lost (and not counted)
        now = os.fstat(fd).st_size
        if now > size:
            tail = (tail + os.pread(fd, now - size, size))[-tail_bytes:]
            size = now
        removed = size - head_bytes - len(tail)
        marker = _marker(removed, limit_bytes)
        os.ftruncate(fd, head_bytes)
        os.write(fd, marker + tail)
        return removed, len(marker)
    finally:
        os.close(fd)


class LogCap:
    """A thread that keeps the given logs under limit_bytes while it runs."""

    def __init__(
        self,
        paths: Mapping[str, Path],
        *,
        limit_bytes: int = LIMIT_BYTES,
        head_bytes: int = HEAD_BYTES,
        tail_bytes: int = TAIL_BYTES,
        interval_s: float = INTERVAL_S,
    ) -> None:
        if head_bytes + tail_bytes >= limit_bytes:
            raise ValueError("the head and the tail kept must fit under the limit")
        self.paths = dict(paths)
        self.limit_bytes = limit_bytes
        self.head_bytes = head_bytes
        self.tail_bytes = tail_bytes
        self.interval_s = interval_s
        self._cut = dict.fromkeys(self.paths, 0)
        self._markers = dict.fromkeys(self.paths, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="serverbench-log-cap", daemon=True)

    def start(self) -> LogCap:
        self._thread.start()
        return self

    def stop(self) -> dict[str, LogSize]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.check()
        return self.sizes()

    def __enter__(self) -> LogCap:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def check(self) -> None:
        """Cut every log above the limit (the thread calls this; so may anyone, any time)."""
        with self._lock:
            for name, path in self.paths.items():
                removed, marker = cut(
                    path,
                    head_bytes=self.head_bytes,
                    tail_bytes=self.tail_bytes,
                    limit_bytes=self.limit_bytes,
                )
                self._cut[name] += removed
                self._markers[name] += marker

    def sizes(self) -> dict[str, LogSize]:
        sizes = {}
        with self._lock:
            for name, path in self.paths.items():
                try:
                    on_disk = path.stat().st_size
                except OSError:
                    on_disk = 0
                # the markers are ours, not the process's
                written = on_disk - self._markers[name] + self._cut[name]
                sizes[name] = LogSize(written_bytes=written, cut_bytes=self._cut[name])
        return sizes

    def written(self) -> int:
        """Bytes written to all the logs so far (sample it around a window)."""
        return sum(size.written_bytes for size in self.sizes().values())


def heavy_writers(
    before: Mapping[str, LogSize], after: Mapping[str, LogSize], window_s: float
) -> list[str]:
    """One line per log written faster than HEAVY_BYTES_PER_S during the window."""
    lines = []
    for name, size in after.items():
        grown = (
            size.written_bytes
            - before.get(name, LogSize(written_bytes=0, cut_bytes=0)).written_bytes
        )
        if window_s > 0 and grown / window_s > HEAVY_BYTES_PER_S:
            lines.append(
                f"{name} wrote {grown / 1e6:,.1f} MB to its log during the {window_s:g} s "
                f"measurement ({grown / window_s / 1e6:,.1f} MB/s); writing it costs the server "
                "CPU, so the numbers include the app's logging"
            )
    return lines
