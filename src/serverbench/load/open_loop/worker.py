"""The client process: `python -m serverbench.load.open_loop.worker PARENT_PID`.

Talks to the engine over its standard streams: it reads a length-prefixed pickled
`WorkerPlan` from stdin, answers `READY` once pinned and its first connections are open,
reads the start time (a time.monotonic() value, the same clock in every process), runs its
share of the schedule, and writes a length-prefixed pickled `ProcessPart` to stdout.
Tracebacks go to stderr. It dies with its parent (PR_SET_PDEATHSIG), so a killed engine
leaves no load running.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import resource
import signal
import struct
import sys
from typing import IO

import uvloop

from serverbench.load.open_loop.client import WorkerPlan, run_client

READY = b"READY\n"
_LENGTH = struct.Struct(">Q")
_PR_SET_PDEATHSIG = 1


def write_frame(stream: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> object:
    header = stream.read(_LENGTH.size)
    if len(header) != _LENGTH.size:
        raise EOFError("no frame")
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    if len(data) != length:
        raise EOFError("truncated frame")
    return pickle.loads(data)


def decode_frame(data: bytes) -> tuple[object, bytes] | None:
    """(payload, rest) when `data` starts with a whole frame; None while it is incomplete."""
    if len(data) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack_from(data)
    end = _LENGTH.size + length
    if len(data) < end:
        return None
    return pickle.loads(data[_LENGTH.size : end]), data[end:]


def die_with_parent(parent_pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)


def main() -> None:
    die_with_parent(int(sys.argv[1]))
    # the protocol owns fd 1; anything printed by mistake goes to stderr
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    plan = read_frame(sys.stdin.buffer)
    assert isinstance(plan, WorkerPlan)
    if plan.cpu is not None:
        os.sched_setaffinity(0, {plan.cpu})
    # one descriptor per connection: the soft limit (often 1024) must not cap the pool
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def ready() -> float:
        protocol_out.write(READY)
        protocol_out.flush()
        return float(sys.stdin.buffer.readline())

    part = uvloop.run(run_client(plan, ready))
    write_frame(protocol_out, part)
    protocol_out.close()


if __name__ == "__main__":
    main()
