"""The open-loop driver: starts one client process per client CPU, starts them together,
bounds them in time, and merges their parts into one `OpenLoopResult`.

The client processes run in their own session and die with this process; however the wait
ends - normally, on overrun, on Ctrl-C or any exception - every one still running is killed
by its process group before `run_open_loop` returns or raises.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from serverbench.errors import LoadGeneratorError
from serverbench.load.histogram import encoded
from serverbench.load.open_loop.client import WorkerPlan
from serverbench.load.open_loop.histogram import Percentiles, merge
from serverbench.load.open_loop.result import (
    ClientProcess,
    ErrorCounts,
    OpenLoopResult,
    ProcessPart,
    behind_reason,
)
from serverbench.load.open_loop.schedule import split_rate
from serverbench.load.open_loop.settings import OpenLoopSettings
from serverbench.load.open_loop.target import Target
from serverbench.load.open_loop.worker import READY, decode_frame, write_frame
from serverbench.run import guardian

# client processes start this long after the last one is ready, so all begin on one schedule
START_DELAY_S = 0.1
_STDERR_TAIL_CHARS = 2000


def run_open_loop(
    settings: OpenLoopSettings,
    url: str,
    *,
    client_cpus: Sequence[int],
    on_start: Callable[[list[int]], None] | None = None,
) -> OpenLoopResult:
    """Offer `settings.rate_per_s` requests per second to `url` and measure the answers.

    One client process per CPU in `client_cpus`, each pinned to its CPU and sending its share
    of the schedule (one unpinned process when `client_cpus` is empty). `on_start` gets their
    PIDs once they are ready, START_DELAY_S before the schedule starts (to sample their CPU,
    and to time a window: the warm-up ends START_DELAY_S + warmup_s after it). Raises
    LoadGeneratorError when a client process fails or the run overruns warm-up + duration +
    timeout + grace.
    """
    target = Target.parse(url)
    cpus: list[int | None] = list(client_cpus) or [None]
    schedules = split_rate(
        settings.rate_per_s, len(cpus), arrivals=settings.arrivals, seed=settings.seed
    )
    plans = [
        WorkerPlan(index=i, cpu=cpu, target=target, settings=settings, schedule=schedule)
        for i, (cpu, schedule) in enumerate(zip(cpus, schedules, strict=True))
    ]
    children = _Children()
    try:
        for plan in plans:
            children.spawn(plan)
        children.wait_ready(deadline_s=time.monotonic() + settings.grace_s)
        if on_start is not None:
            on_start(children.pids())
        start_s = time.monotonic() + START_DELAY_S
        children.start(start_s)
        end_s = (
            start_s
            + settings.warmup_s
            + settings.duration_s
            + settings.timeout_s
            + settings.grace_s
        )
        parts = children.collect(deadline_s=end_s)
    finally:
        children.kill_all()
    return merge_parts(settings, parts)


def merge_parts(settings: OpenLoopSettings, parts: Sequence[ProcessPart]) -> OpenLoopResult:
    """The exact sum of the client processes' parts: counts added, histograms merged."""
    duration_s = settings.duration_s
    latency = merge([p.latency_hdr for p in parts])
    send_lag = merge([p.send_lag_hdr for p in parts])
    send_lag_us = Percentiles.of(send_lag)
    errors = sum((p.errors for p in parts), ErrorCounts())
    scheduled = sum(p.scheduled for p in parts)
    achieved_rate_per_s = sum(p.sent_in_window_wall for p in parts) / duration_s
    pool_full = sum(p.pool_full for p in parts)
    reason = behind_reason(
        scheduled=scheduled,
        achieved_rate_per_s=achieved_rate_per_s,
        duration_s=duration_s,
        send_lag_p99_us=send_lag_us.p99_us if send_lag_us is not None else None,
        timeouts=errors.timeout,
        pool_full=pool_full,
        client_cpu_percent=max((p.cpu_percent for p in parts), default=0.0),
        waited_for_connection=sum(p.waited_for_connection for p in parts),
    )
    good = sum(p.good_responses for p in parts)
    return OpenLoopResult(
        offered_rate_per_s=settings.rate_per_s,
        arrivals=settings.arrivals,
        duration_s=duration_s,
        warmup_s=settings.warmup_s,
        timeout_s=settings.timeout_s,
        max_connections=settings.max_connections,
        seed=settings.seed,
        scheduled=scheduled,
        requests_sent=sum(p.sent for p in parts),
        responses=sum(p.responses for p in parts),
        good_responses=good,
        errors=errors,
        latency_histogram_hdr=encoded(latency),
        latency_us=Percentiles.of(latency),
        good_rate_per_s=good / duration_s,
        achieved_rate_per_s=achieved_rate_per_s,
        send_lag_histogram_hdr=encoded(send_lag),
        send_lag_us=send_lag_us,
        connections_opened=sum(p.connections_opened for p in parts),
        waited_for_connection=sum(p.waited_for_connection for p in parts),
        pool_full=pool_full,
        bytes_read=sum(p.bytes_read for p in parts),
        generator_behind=reason is not None,
        generator_behind_reason=reason,
        processes=tuple(
            ClientProcess(
                index=p.index,
                pid=p.pid,
                cpu=p.cpu,
                requests_sent=p.sent,
                cpu_s=p.cpu_s,
                cpu_percent=p.cpu_percent,
                send_lag_us=Percentiles.of(merge([p.send_lag_hdr])),
            )
            for p in sorted(parts, key=lambda p: p.index)
        ),
        samples=tuple(s for p in sorted(parts, key=lambda p: p.index) for s in p.samples),
    )


class _Children:
    """The client processes of one run, their output buffers, and their certain end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.out: dict[int, bytearray] = {}
        self.err: dict[int, bytearray] = {}

    def spawn(self, plan: WorkerPlan) -> None:
        argv = [sys.executable, "-m", "serverbench.load.open_loop.worker", str(os.getpid())]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # a session of its own (Ctrl-C reaches us only; we end them), and it dies with
                # serverbench even when serverbench is killed (run/guardian.py)
                **guardian.popen_options(),
            )
        except OSError as exc:
            raise LoadGeneratorError(
                f"cannot start an open-loop client process ({exc}); "
                "check that the Python environment is intact"
            ) from exc
        guardian.adopt(proc.pid)
        self.procs.append(proc)
        self.out[proc.pid] = bytearray()
        self.err[proc.pid] = bytearray()
        assert proc.stdin is not None
        with self._talking(proc):
            write_frame(proc.stdin, plan)

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def wait_ready(self, *, deadline_s: float) -> None:
        self._pump(
            deadline_s,
            done=lambda: all(self.out[p.pid].startswith(READY) for p in self.procs),
            what="get ready",
        )
        for proc in self.procs:
            del self.out[proc.pid][: len(READY)]

    def start(self, start_s: float) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            with self._talking(proc):
                proc.stdin.write(f"{start_s!r}\n".encode())
                proc.stdin.close()

    @contextlib.contextmanager
    def _talking(self, proc: subprocess.Popen[bytes]) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError as exc:
            proc.wait()
            assert proc.stderr is not None
            self.err[proc.pid] += proc.stderr.read()
            raise LoadGeneratorError(
                f"open-loop client process {proc.pid} exited early (status {proc.returncode}); "
                f"its error output ends with:\n{self._tail(proc)}"
            ) from exc

    def collect(self, *, deadline_s: float) -> list[ProcessPart]:
        self._pump(deadline_s, done=lambda: False, what="finish")
        parts = []
        for proc in self.procs:
            returncode = proc.wait()
            frame = decode_frame(bytes(self.out[proc.pid]))
            if returncode != 0 or frame is None or not isinstance(frame[0], ProcessPart):
                raise LoadGeneratorError(
                    f"open-loop client process {proc.pid} failed (exit status {returncode}) "
                    f"without a result; its error output ends with:\n{self._tail(proc)}"
                )
            parts.append(frame[0])
        return parts

    def _pump(self, deadline_s: float, *, done: Callable[[], bool], what: str) -> None:
        """Read every child's stdout and stderr until `done()` or all reached end of file."""
        with selectors.DefaultSelector() as selector:
            for proc in self.procs:
                assert proc.stdout is not None
                assert proc.stderr is not None
                selector.register(proc.stdout, selectors.EVENT_READ, self.out[proc.pid])
                selector.register(proc.stderr, selectors.EVENT_READ, self.err[proc.pid])
            open_streams = len(selector.get_map())
            while not done():
                if open_streams == 0:
                    if what == "finish":
                        return
                    dead = [p for p in self.procs if p.poll() is not None]
                    proc = dead[0] if dead else self.procs[0]
                    raise LoadGeneratorError(
                        f"open-loop client process {proc.pid} exited before it could {what}; "
                        f"its error output ends with:\n{self._tail(proc)}"
                    )
                left_s = deadline_s - time.monotonic()
                if left_s <= 0:
                    raise LoadGeneratorError(
                        f"open-loop client processes did not {what} in time; they were "
                        "killed; the client CPUs may be overloaded: retry with a lower rate"
                    )
                for key, _ in selector.select(timeout=left_s):
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        buffer: bytearray = key.data
                        buffer += chunk
                    else:
                        selector.unregister(key.fileobj)
                        open_streams -= 1

    def _tail(self, proc: subprocess.Popen[bytes]) -> str:
        text = self.err[proc.pid].decode(errors="replace").strip()
        return text[-_STDERR_TAIL_CHARS:] or "(nothing)"

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
