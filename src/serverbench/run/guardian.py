"""Children die with serverbench, even when serverbench itself is killed with SIGKILL.

Owns the sessions serverbench starts (every server, nginx, supervisord, wrk, the app probe) and
the guardian: a tiny process that ends them all once serverbench is gone, however it went.

How, and why this combination:
- Every child starts in a session of its own (its pid is the session id). Whatever it forks
  stays in that session: nginx's workers, gunicorn's and uvicorn's workers, and supervisord's
  instances too (supervisord moves each one to a process group of its own, not a session). So
  "every process in the sessions we started" is the whole set, found by one scan of /proc, with
  no need for the parents to still be alive. Only a process that calls setsid() itself (a
  daemon that double-forks) leaves; none of the stacks does, they all run in the foreground.
- The direct child gets PR_SET_PDEATHSIG = SIGKILL: the kernel kills it the moment serverbench
  dies. That does not reach grandchildren (the flag is not inherited across fork, and nginx's
  workers keep serving after their master is killed), hence the guardian.
- The guardian is started (in its own session, so Ctrl-C and a kill of serverbench's process
  group do not reach it) with a pipe whose write end only serverbench holds. serverbench writes
  each new session id to it. When the pipe reads EOF, serverbench has exited or been killed,
  and the guardian SIGKILLs every live process of those sessions, then exits.
- Every session id is also appended to the ledgers of the locks serverbench holds (lock.py), so
  if the guardian was killed too, the next serverbench finds the leftovers and stops them.
Not chosen: PR_SET_CHILD_SUBREAPER only re-parents orphans while serverbench lives (after a
SIGKILL they go on to init, still running); a cgroup per run needs cgroup v2 delegated to the
user, which most machines and containers (this one: cgroup v1) do not give.

PR_SET_PDEATHSIG fires when the *thread* that spawned the child exits, so it is set only for
children spawned from the main thread; the guardian covers the others.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypedDict

PR_SET_PDEATHSIG = 1
KILL_ROUNDS_S = 3.0  # how long the guardian keeps killing processes forked meanwhile

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """A live process of a watched session."""

    pid: int
    sid: int
    name: str
    start_ticks: int  # clock ticks after boot: tells a recycled pid apart


def _read_stat(pid: int) -> Member | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    # comm may hold spaces and parentheses: the fields after the last ")" are fixed
    name = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode(errors="replace")
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None  # a zombie is already dead; its parent reaps it
    return Member(pid=pid, sid=int(fields[3]), name=name, start_ticks=int(fields[19]))


def members(sessions: dict[int, int]) -> list[Member]:
    """Live processes of the sessions {session id: its leader's start ticks}.

    A process counts only if it started no earlier than the session's leader did, so a
    session id recycled by an unrelated process long after is never mistaken for ours.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        member = _read_stat(int(entry))
        if member is None or member.sid not in sessions:
            continue
        if member.start_ticks >= sessions[member.sid]:
            found.append(member)
    return found


def start_ticks(pid: int) -> int | None:
    member = _read_stat(pid)
    return None if member is None else member.start_ticks


def kill_sessions(sessions: dict[int, int], *, rounds_s: float = KILL_ROUNDS_S) -> list[Member]:
    """SIGKILL every live process of the sessions, again while new ones appear; the killed."""
    killed: dict[int, Member] = {}
    deadline = time.monotonic() + rounds_s
    while True:
        live = members(sessions)
        for member in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member.pid, signal.SIGKILL)
            killed.setdefault(member.pid, member)
        if not live or time.monotonic() >= deadline:
            return list(killed.values())
        time.sleep(0.05)


# --- the serverbench side ----------------------------------------------------------------


class _Guardian:
    """The guardian process and the write end of its pipe."""

    def __init__(self) -> None:
        read_end, self.write_end = os.pipe()
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "serverbench.run.guardian"],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(read_end)

    def watch(self, sid: int, ticks: int) -> None:
        with contextlib.suppress(OSError):
            os.write(self.write_end, f"{sid} {ticks}\n".encode())

    def close(self) -> None:
        """End the guardian; the caller has already ended the sessions it watched."""
        with contextlib.suppress(OSError):
            os.close(self.write_end)
        # nothing is left for it to do, and it may still be starting: no need to wait for that
        self.popen.kill()
        self.popen.wait()


_LOCK = threading.Lock()
_guardian: _Guardian | None = None
_sessions: dict[int, int] = {}
_ledgers: list[Callable[[int, int], None]] = []


def add_ledger(record: Callable[[int, int], None]) -> None:
    """Also tell `record(sid, start_ticks)` of every session started from now on."""
    with _LOCK:
        _ledgers.append(record)


def remove_ledger(record: Callable[[int, int], None]) -> None:
    with _LOCK:
        if record in _ledgers:
            _ledgers.remove(record)


def _set_pdeathsig() -> None:
    # runs in the child between fork and exec: only the system call, nothing that takes a lock
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _set_pdeathsig_checked(parent: int) -> Callable[[], None]:
    def preexec() -> None:
        _set_pdeathsig()
        if os.getppid() != parent:
            os._exit(1)  # serverbench died between the fork and the prctl

    return preexec


class PopenOptions(TypedDict):
    start_new_session: bool
    preexec_fn: Callable[[], None] | None


def popen_options() -> PopenOptions:
    """Keyword arguments for subprocess.Popen that make the child die with serverbench.

    The caller must pass the new process's pid to `adopt()` right after the spawn.
    """
    on_main_thread = threading.current_thread() is threading.main_thread()
    return PopenOptions(
        start_new_session=True,
        preexec_fn=_set_pdeathsig_checked(os.getpid()) if on_main_thread else None,
    )


def adopt(pid: int) -> None:
    """Watch the session of a child just started with popen_options()."""
    global _guardian
    ticks = start_ticks(pid)
    if ticks is None:
        return  # already gone: nothing it forked can outlive it in a session we did not see
    with _LOCK:
        if _guardian is None:
            _guardian = _Guardian()
        _sessions[pid] = ticks
        _guardian.watch(pid, ticks)
        ledgers = list(_ledgers)
    for record in ledgers:
        record(pid, ticks)


def watched() -> dict[int, int]:
    with _LOCK:
        return dict(_sessions)


def leftovers() -> list[Member]:
    """Live processes of every session serverbench started (none, after a clean stop)."""
    return members(watched())


def shutdown() -> list[Member]:
    """End whatever is left of our sessions and let the guardian go; the processes killed."""
    global _guardian
    with _LOCK:
        sessions = dict(_sessions)
        _sessions.clear()
        guardian, _guardian = _guardian, None
    killed = kill_sessions(sessions) if sessions else []
    if guardian is not None:
        guardian.close()
    return killed


# --- the guardian process ----------------------------------------------------------------


def parse_sessions(lines: Iterable[bytes]) -> Iterable[tuple[int, int]]:
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            yield int(parts[0]), int(parts[1])


def _guard(stdin_fd: int) -> None:
    # only the pipe tells the guardian to act; terminal signals are not for it
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    sessions: dict[int, int] = {}
    pending = b""
    while True:
        chunk = os.read(stdin_fd, 4096)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        sessions.update(parse_sessions(complete))
    kill_sessions(sessions)


if __name__ == "__main__":
    _guard(sys.stdin.fileno())
