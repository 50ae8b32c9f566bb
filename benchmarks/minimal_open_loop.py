"""The least a Python open-loop generator pays on this machine: the reference for the engine.

A bare uvloop client in the spirit of the 40-line prototype of issue 10, plus the HTTP parser
the engine uses (httptools): a fixed number of keep-alive connections opened up front, a
constant-rate schedule checked on every turn of the loop, each latency from the intended send
time, send lag and latency kept in plain lists. No pool growth, timeouts, error kinds, windows,
sampling or verification: whatever rate this holds is the ceiling any Python engine with a real
parser can reach here, so benchmarks/open_loop_capacity.py prints the engine's figures beside
it. It busy-polls: uvloop's timers count whole milliseconds, so `asyncio.sleep(0.0002)` is a
0 ms timer and the loop turns ~150,000 times a second at 100 % of its core (measured), where
the engine sleeps on a timerfd until its next send. A busy loop never wakes up late; the
engine polling instead of sleeping whenever its next send was under 0.1 ms away made no
difference (45,000 and 50,000 req/s, 3 rounds interleaved, 2026-11-28: the same CPU per request
and rounds kept).

    python benchmarks/minimal_open_loop.py HOST PORT RATE DURATION_S CPU [CONNECTIONS]

Prints one JSON line: offered, sent and answered per second, send-lag and latency p99 (us).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import deque

import httptools
import uvloop

_POLL_S = 0.0002
_WARMUP_S = 0.5


class _State:
    def __init__(self) -> None:
        self.idle: list[_Connection] = []
        self.waiting: deque[float] = deque()
        self.window_start_s = 0.0
        self.latency_s: list[float] = []  # of the requests meant for the window


class _Connection(asyncio.Protocol):
    def __init__(self, state: _State, request: bytes) -> None:
        self.state = state
        self.request = request
        self.intended_s = 0.0
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.idle.append(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        state = self.state
        if self.intended_s >= state.window_start_s:
            state.latency_s.append(time.monotonic() - self.intended_s)
        if state.waiting:
            self.intended_s = state.waiting.popleft()
            self.transport.write(self.request)  # type: ignore[union-attr]
        else:
            state.idle.append(self)


async def _run(
    host: str, port: int, rate: float, duration_s: float, connections: int
) -> dict[str, float]:
    request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    state = _State()
    loop = asyncio.get_running_loop()
    for _ in range(connections):
        await loop.create_connection(lambda: _Connection(state, request), host, port)
    period_s = 1.0 / rate
    start_s = time.monotonic() + 0.05
    window_start_s = state.window_start_s = start_s + _WARMUP_S
    end_s = window_start_s + duration_s
    lag_s: list[float] = []
    k = 0
    sent_in_window = 0
    while True:
        now = time.monotonic()
        if now >= end_s:
            break
        while (t := start_s + k * period_s) <= now:
            k += 1
            if t >= window_start_s:
                sent_in_window += 1
                lag_s.append(now - t)
            if state.idle:
                connection = state.idle.pop()
                connection.intended_s = t
                connection.transport.write(request)  # type: ignore[union-attr]
            else:
                state.waiting.append(t)
        await asyncio.sleep(_POLL_S)
    await asyncio.sleep(0.2)  # the last answers
    latency = sorted(state.latency_s)
    lag_s.sort()
    return {
        "offered_per_s": rate,
        "sent_per_s": sent_in_window / duration_s,
        "answered_per_s": len(latency) / duration_s,
        "send_lag_p99_us": lag_s[int(len(lag_s) * 0.99)] * 1e6 if lag_s else 0.0,
        "latency_p99_us": latency[int(len(latency) * 0.99)] * 1e6 if latency else 0.0,
    }


def main() -> None:
    host, port, rate, duration_s, cpu = sys.argv[1:6]
    connections = int(sys.argv[6]) if len(sys.argv) > 6 else 64
    os.sched_setaffinity(0, {int(cpu)})
    result = uvloop.run(_run(host, int(port), float(rate), float(duration_s), connections))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
