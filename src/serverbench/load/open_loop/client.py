"""One client process's load: an asyncio (uvloop) loop that sends requests at their intended
times over a bounded pool of keep-alive connections and measures every answer from the time
the request was meant to be sent.

Hot path, kept tight on purpose (the engine must schedule 50,000 req/s on one core):
- a timerfd armed at the next intended send time (no task or timer per request; libuv's own
  timers only have 1 ms resolution), waking at most every `tick_s` and sending every request
  whose time has come; answers free connections, and what waits or is due is sent on them
  once per loop iteration, after all the answers that arrived were read (writes in a burst);
- pre-built request bytes, one httptools parser per connection with only the
  message-complete callback (a sampled response gets a parser that keeps headers and body);
- latency and send lag counted per HdrHistogram bucket (`histogram.Recorder`), the garbage
  collector off during the run.

The pool opens a few connections before the start (`first_connections`). A request that finds
no idle connection waits in a FIFO queue, and the wait counts in its latency; the pool grows
on demand up to `max_connections`, but only for a server that holds its connections, not for
a generator that fell behind (`_Client.maybe_open`). Connections the server closes
(`Connection: close`, nginx's keep-alive limit) are replaced when needed. A
request unanswered `timeout_s` after its intended time is a timeout; like wrk, its connection
stays open until the late answer comes and is then used again, so an overloaded server is not
also handed a storm of reconnections.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import math
import os
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from time import monotonic, process_time
from typing import Any, cast

import httptools

from serverbench.load.histogram import encoded
from serverbench.load.open_loop.histogram import EXACT_BITS, Recorder
from serverbench.load.open_loop.result import (
    ErrorCounts,
    ErrorKind,
    ProcessPart,
    ResponseSample,
    loss_error_kind,
)
from serverbench.load.open_loop.schedule import ProcessSchedule
from serverbench.load.open_loop.settings import OpenLoopSettings
from serverbench.load.open_loop.target import Target

_INF = float("inf")
_SWEEP_S = 0.01  # how often requests are checked for timeouts
_DRAIN_SLACK_S = 0.05
# The pool (see _Client.maybe_open): connects in flight at once; a request waits this long,
# and the server holds requests this long on average, before the pool grows for it, by one
# connection at a time at most this often; a timer wake-up this late means the generator,
# not the server, is behind
MAX_OPENING = 16
GROW_AFTER_S = 0.001
LATE_S = 0.0005
HELD_WEIGHT = 1 / 16  # of the latest answer in the moving average of hold times
# The pool opened before the start: the arrivals of this long, between the bounds below
FIRST_CONNECTIONS_S = 0.0005
FIRST_CONNECTIONS_MIN = 8
FIRST_CONNECTIONS_MAX = 64
FIRST_CONNECTIONS_WAIT_S = 1.0

_CLOCK_MONOTONIC = 1  # monotonic() reads CLOCK_MONOTONIC on Linux
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class _Timer:
    """A one-shot CLOCK_MONOTONIC timerfd: sub-millisecond wake-ups through the event loop."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.at_s = 0.0
        self._spec = _Itimerspec()
        self._settime = self._libc.timerfd_settime
        self._spec_ref = ctypes.byref(self._spec)

    def arm_at(self, at_s: float) -> None:
        self.at_s = at_s
        ns = int(at_s * 1e9)
        value = self._spec.it_value
        value.tv_sec, value.tv_nsec = divmod(max(ns, 1), 1_000_000_000)
        self._settime(self.fd, _TFD_TIMER_ABSTIME, self._spec_ref, None)

    def consume(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)

    def close(self) -> None:
        os.close(self.fd)


def first_connections(rate_per_s: float, max_connections: int) -> int:
    """How many connections a client process opens before its schedule starts: enough for
    a fast server's requests in flight, so the start is not a storm of connects; a slower
    server's pool grows on demand."""
    wanted = math.ceil(rate_per_s * FIRST_CONNECTIONS_S)
    return min(max_connections, max(FIRST_CONNECTIONS_MIN, min(FIRST_CONNECTIONS_MAX, wanted)))


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerPlan:
    """Everything one client process needs; sent to it by the engine."""

    index: int
    cpu: int | None
    target: Target
    settings: OpenLoopSettings
    schedule: ProcessSchedule


# connection states; _LATE: busy with a request already counted as a timeout
_CONNECTING, _IDLE, _BUSY, _LATE, _CLOSED = range(5)


class _Sample:
    """Parser callbacks for a response that is kept: headers and body as well."""

    __slots__ = ("body", "connection", "content_type")

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.content_type = ""
        self.body = bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        connection = self.connection
        parser = connection.parser
        connection.client.samples.append(
            ResponseSample(
                process=connection.client.plan.index,
                status=parser.get_status_code(),
                content_type=self.content_type,
                body=bytes(self.body),
            )
        )
        connection.parser = connection.fast_parser
        connection.client.answered(connection, parser.get_status_code(), parser.should_keep_alive())


class _Connection(asyncio.Protocol):
    __slots__ = ("client", "fast_parser", "intended_s", "parser", "sent_s", "state", "transport")

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.fast_parser = httptools.HttpResponseParser(self)
        self.parser = self.fast_parser
        self.intended_s = 0.0  # intended send time of the request in flight (state _BUSY)
        self.sent_s = 0.0  # when it was written
        self.state = _CONNECTING

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its interface
        self.transport = cast(asyncio.Transport, transport)
        self.client.connected(self)

    def data_received(self, data: bytes) -> None:
        self.client.bytes_read += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            raise  # a bug in our callbacks, not the server's answer
        except httptools.HttpParserError:
            self.client.failed(self, "read")

    def on_message_complete(self) -> None:
        parser = self.parser
        self.client.answered(self, parser.get_status_code(), parser.should_keep_alive())

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost decides what it means

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.lost(self)


class _Client:
    """The pool, the schedule and the counters of one client process."""

    def __init__(self, plan: WorkerPlan) -> None:
        settings = plan.settings
        self.plan = plan
        self.loop = asyncio.get_running_loop()
        self.request = plan.target.request_bytes()
        self.timeout_s = settings.timeout_s
        self.tick_s = settings.tick_s
        self.max_connections = settings.max_connections
        # set by start(); until then nothing is scheduled and nothing counts
        self.window_start_s = self.window_end_s = _INF
        self.arrivals: Iterator[float] = iter(())
        self.next_s = _INF

        self.idle: list[_Connection] = []
        self.waiting: deque[float] = deque()  # intended times of requests without a connection
        self.connections: set[_Connection] = set()  # open ones, idle or busy
        self.opening = 0
        self.pool_size = 0  # connections the pool keeps open while requests wait
        self.grow_pending = False  # a grow_if_waiting call is scheduled
        self.flush_pending = False  # a flush call is scheduled
        self.grown_s = 0.0  # when the pool last grew
        self.held_s = 0.0  # moving average of write-to-answer times: what the server holds
        self.timer_late_s = 0.0  # how late the timer's latest wake-up ran: the loop's delay
        self.connect_tasks: set[asyncio.Task[Any]] = set()

        self.latency = Recorder()
        self.latency_counts = self.latency.counts
        self.send_lag = Recorder()
        self.scheduled = 0
        self.sent = 0
        self.sent_in_window_wall = 0
        self.responses = 0
        self.good = 0
        self.waited = 0
        self.pool_full = 0
        self.connections_opened = 0
        self.errors: dict[ErrorKind, int] = dict.fromkeys(ErrorCounts.KINDS, 0)

        self.issued = 0  # every request, warm-up included: picks the sampled ones
        self.samples: list[ResponseSample] = []
        # the requests whose answers are kept, by issue order: the first few, a few at random
        expected = int(plan.schedule.rate_per_s * (settings.warmup_s + settings.duration_s))
        first = range(min(settings.samples_first, expected))
        rest = range(len(first), expected)
        drawn = random.Random(plan.schedule.seed).sample(
            rest, min(settings.samples_random, len(rest))
        )
        self.sample_at = sorted([*first, *drawn], reverse=True)
        self.next_sample = self.sample_at.pop() if self.sample_at else -1

        self.timer = _Timer()
        self.finishing = False  # the schedule is over; waiting for the last answers
        self.finished = self.loop.create_future()
        self.cpu_start_s = 0.0
        self.cpu_end_s = 0.0
        self.bytes_read = 0
        self.bytes_at_start = 0
        self.bytes_at_end = 0

    # -- scheduling ------------------------------------------------------------------------

    async def open_first(self) -> None:
        """Open the pool's first connections before the schedule starts (see
        `first_connections`); one the server refuses is left to be opened on demand."""
        count = first_connections(self.plan.schedule.rate_per_s, self.max_connections)
        self.pool_size = count
        self.opening += count
        tasks = [self.loop.create_task(self.open_one()) for _ in range(count)]
        # a server whose backlog is full drops the SYNs: do not wait for the retries
        _, pending = await asyncio.wait(tasks, timeout=FIRST_CONNECTIONS_WAIT_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.opening = 0  # nothing else opens before the start

    def start(self, start_s: float) -> None:
        settings = self.plan.settings
        self.window_start_s = start_s + settings.warmup_s
        self.window_end_s = self.window_start_s + settings.duration_s
        self.arrivals = map(
            start_s.__add__,
            self.plan.schedule.offsets_s(settings.warmup_s + settings.duration_s),
        )
        self.next_s = next(self.arrivals, _INF)
        self.loop.set_exception_handler(self.on_loop_error)
        self.loop.add_reader(self.timer.fd, self.on_timer)
        self.timer.arm_at(self.next_s if self.next_s < _INF else self.window_end_s)
        self.loop.call_at(self._loop_time(self.window_start_s), self.mark_window_start)
        self.loop.call_at(self._loop_time(self.window_end_s), self.mark_window_end)
        self.loop.call_later(_SWEEP_S, self.sweep)

    def _loop_time(self, monotonic_s: float) -> float:
        return self.loop.time() + (monotonic_s - monotonic())

    def mark_window_start(self) -> None:
        self.cpu_start_s = process_time()
        self.bytes_at_start = self.bytes_read

    def mark_window_end(self) -> None:
        self.cpu_end_s = process_time()
        self.bytes_at_end = self.bytes_read

    def on_timer(self) -> None:
        now = monotonic()
        self.timer_late_s = now - self.timer.at_s
        if self.next_s <= now:
            self.dispatch_due(now)
            if self.waiting:
                self.flush_soon()
        if self.next_s < _INF:
            # re-arming also clears the expiration, so no read() is needed
            self.timer.arm_at(max(self.next_s, now + self.tick_s))
        else:
            self.timer.consume()
            # the schedule is over: no send can be late, so none may hold the pool's growth
            self.timer_late_s = 0.0

    def dispatch_due(self, now: float) -> None:
        t = self.next_s
        window_start_s, window_end_s = self.window_start_s, self.window_end_s
        arrivals, idle = self.arrivals, self.idle
        while t <= now:
            if window_start_s <= t < window_end_s:
                self.scheduled += 1
                self.send_lag.record(int((now - t) * 1e6))
            if idle:
                self.send(idle.pop(), t, now)
            else:
                self.waiting.append(t)
                if window_start_s <= t < window_end_s:
                    self.waited += 1
                    if len(self.connections) + self.opening >= self.max_connections:
                        self.pool_full += 1
            t = next(arrivals, _INF)
        self.next_s = t

    def send(self, connection: _Connection, intended_s: float, now: float) -> None:
        connection.state = _BUSY
        connection.intended_s = intended_s
        connection.sent_s = now
        issued = self.issued
        self.issued = issued + 1
        if issued == self.next_sample:
            connection.parser = httptools.HttpResponseParser(_Sample(connection))
            self.next_sample = self.sample_at.pop() if self.sample_at else -1
        window_start_s, window_end_s = self.window_start_s, self.window_end_s
        if window_start_s <= intended_s < window_end_s:
            self.sent += 1
        if window_start_s <= now < window_end_s:
            self.sent_in_window_wall += 1
        connection.transport.write(self.request)  # type: ignore[union-attr]

    # -- connections -----------------------------------------------------------------------

    def maybe_open(self, now: float) -> None:
        """Open connections for the waiting requests: at once while the pool is below its
        size (one the server closed is replaced). The pool grows by one only when the server
        holds its requests (answers take GROW_AFTER_S on average from the write), the oldest
        request has waited GROW_AFTER_S (a connection that frees up sooner serves it as
        well), the pool did not grow in the last GROW_AFTER_S, and the generator is on time.
        Requests that wait because the generator is behind, not the server, are not helped
        by more connections: those only put more requests in flight, which costs the client
        more per request, so it falls further behind. Measured against nginx-static at
        45,000-48,000 req/s, a pool that grew on every wait reached 1,000 connections and
        held 30,000-42,000 req/s; one kept at 32-64 held the offered rate."""
        waiting = self.waiting
        while self.opening < min(len(waiting), MAX_OPENING):
            pool = len(self.connections) + self.opening
            if pool >= self.max_connections:
                return
            if pool >= self.pool_size:
                if self.timer_late_s > LATE_S or self.held_s < GROW_AFTER_S:
                    self.grow_later(now + GROW_AFTER_S)
                    return
                grow_at_s = max(waiting[0], self.grown_s) + GROW_AFTER_S
                if grow_at_s > now:
                    self.grow_later(grow_at_s)
                    return
                self.grown_s = now
                self.pool_size = pool + 1
            self.opening += 1
            task = self.loop.create_task(self.open_one())
            self.connect_tasks.add(task)
            task.add_done_callback(self.connect_tasks.discard)

    def grow_later(self, at_s: float) -> None:
        if not self.grow_pending:
            self.grow_pending = True
            self.loop.call_at(self._loop_time(at_s), self.grow_if_waiting)

    def grow_if_waiting(self) -> None:
        self.grow_pending = False
        self.flush()

    async def open_one(self) -> None:
        target = self.plan.target
        try:
            await self.loop.create_connection(lambda: _Connection(self), target.host, target.port)
        except OSError:
            self.opening -= 1
            if self.in_window_wall():
                self.errors["connect"] += 1

    def in_window_wall(self) -> bool:
        return self.window_start_s <= monotonic() < self.window_end_s

    def connected(self, connection: _Connection) -> None:
        self.opening -= 1
        self.connections_opened += 1
        self.connections.add(connection)
        if self.waiting:
            self.send(connection, self.waiting.popleft(), monotonic())
        else:
            connection.state = _IDLE
            self.idle.append(connection)
        if self.finishing:
            self.check_done()

    def answered(self, connection: _Connection, status: int, keep_alive: bool) -> None:
        state = connection.state
        if state != _BUSY and state != _LATE:  # an answer nobody asked for
            self.failed(connection, "read")
            return
        now = monotonic()
        t = connection.intended_s
        self.held_s += (now - connection.sent_s - self.held_s) * HELD_WEIGHT
        if state == _BUSY and self.window_start_s <= t < self.window_end_s:
            latency_s = now - t
            if latency_s > self.timeout_s:
                self.errors["timeout"] += 1
            elif status < 400:
                self.responses += 1
                self.good += 1
                # Recorder.record inlined: this runs once per response
                latency_us = int(latency_s * 1e6)
                shift = latency_us.bit_length() - EXACT_BITS
                if shift > 0:
                    latency_us = latency_us >> shift << shift
                counts = self.latency_counts
                counts[latency_us] = counts.get(latency_us, 0) + 1
            else:
                self.responses += 1
                self.errors["status"] += 1
        if keep_alive:
            connection.state = _IDLE
            self.idle.append(connection)
        else:
            self.close(connection)
        if self.waiting or self.next_s <= now:
            self.flush_soon()
        if self.finishing:
            self.check_done()

    def flush_soon(self) -> None:
        if not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what waits or is due on the connections answers freed: once per loop
        iteration, after every answer that arrived in it was read."""
        self.flush_pending = False
        now = monotonic()
        waiting, idle = self.waiting, self.idle
        while waiting and idle:
            self.send(idle.pop(), waiting.popleft(), now)
        if self.next_s <= now:
            self.dispatch_due(now)
        if waiting:
            self.maybe_open(now)
        if self.finishing:
            self.check_done()

    def close(self, connection: _Connection, *, abort: bool = False) -> None:
        """Close on our side: whatever connection_lost reports later means nothing."""
        if connection.state == _IDLE:
            self.idle.remove(connection)
        connection.state = _CLOSED
        self.connections.discard(connection)
        if connection.transport is not None:
            if abort:
                connection.transport.abort()
            else:
                connection.transport.close()

    def failed(self, connection: _Connection, kind: ErrorKind) -> None:
        if connection.state == _BUSY:
            self.count_error(connection.intended_s, kind)
        self.close(connection, abort=True)
        if self.waiting:
            self.flush_soon()
        if self.finishing:
            self.check_done()

    def lost(self, connection: _Connection) -> None:
        if connection.state == _CLOSED:
            return
        if connection.state == _BUSY:
            transport = connection.transport
            unsent = transport.get_write_buffer_size() if transport is not None else 0
            kind = loss_error_kind(unsent_bytes=unsent)
            self.count_error(connection.intended_s, kind)
        self.close(connection)
        if self.waiting:
            self.flush_soon()
        if self.finishing:
            self.check_done()

    def count_error(self, intended_s: float, kind: ErrorKind) -> None:
        if self.window_start_s <= intended_s < self.window_end_s:
            self.errors[kind] += 1

    # -- timeouts and the end ----------------------------------------------------------------

    def sweep(self) -> None:
        now = monotonic()
        deadline = now - self.timeout_s
        waiting = self.waiting
        while waiting and waiting[0] < deadline:
            self.count_error(waiting.popleft(), "timeout")
        for connection in self.connections:
            if connection.state == _BUSY and connection.intended_s < deadline:
                self.count_error(connection.intended_s, "timeout")
                connection.state = _LATE
        if not self.finishing and self.next_s == _INF and now >= self.window_end_s:
            self.finishing = True
            self.loop.call_at(
                self._loop_time(self.window_end_s + self.timeout_s + _DRAIN_SLACK_S),
                self.finish,
            )
        if self.finishing:
            self.check_done()
        if not self.finished.done():
            self.loop.call_later(_SWEEP_S, self.sweep)

    def check_done(self) -> None:
        busy = any(c.state == _BUSY for c in self.connections)
        if not busy and not self.waiting:
            self.finish()

    def on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An exception in a callback is a bug: end the run with it instead of measuring on."""
        error = context.get("exception") or RuntimeError(context.get("message", "loop error"))
        if not self.finished.done():
            self.finished.set_exception(error)

    def finish(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)

    def shut(self) -> None:
        self.loop.remove_reader(self.timer.fd)
        self.timer.close()
        for task in self.connect_tasks:
            task.cancel()
        for connection in list(self.connections):
            self.close(connection)

    def part(self, pid: int) -> ProcessPart:
        duration_s = self.plan.settings.duration_s
        return ProcessPart(
            index=self.plan.index,
            pid=pid,
            cpu=self.plan.cpu,
            scheduled=self.scheduled,
            sent=self.sent,
            sent_in_window_wall=self.sent_in_window_wall,
            responses=self.responses,
            good_responses=self.good,
            errors=ErrorCounts(**self.errors),
            latency_hdr=encoded(self.latency.histogram()),
            send_lag_hdr=encoded(self.send_lag.histogram()),
            connections_opened=self.connections_opened,
            waited_for_connection=self.waited,
            pool_full=self.pool_full,
            bytes_read=self.bytes_at_end - self.bytes_at_start,
            cpu_s=max(0.0, self.cpu_end_s - self.cpu_start_s),
            cpu_percent=100.0 * max(0.0, self.cpu_end_s - self.cpu_start_s) / duration_s,
            samples=tuple(self.samples),
        )


async def run_client(plan: WorkerPlan, ready: Callable[[], float]) -> ProcessPart:
    """Run one process's share of the schedule: open the first connections, call `ready`,
    which returns the start time (a monotonic() value), and send from then to the end."""
    client = _Client(plan)
    try:
        await client.open_first()
        start_s = ready()
        gc.collect()
        gc.freeze()
        gc.disable()  # a collection pause would show up as send lag
        client.start(start_s)
        await client.finished
    finally:
        client.shut()
        gc.enable()
    # let the transports' close callbacks run before the loop goes
    await asyncio.sleep(0)
    return client.part(os.getpid())
