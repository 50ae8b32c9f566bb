"""Who is benchmarking: the machine-wide lock, and the owner of a results folder.

One benchmark per machine: two at once share the CPUs and both measure less, silently. So
`run`, `check` and `serve` hold the machine lock (`serverbench.lock` in /run/lock, or the
folder SERVERBENCH_LOCK_DIR names) while they work; a second one is refused with the first
one's command, pid and start time, or waits for it with --wait-for-lock. A run also holds the
owner lock of its results folder, so `--resume DIR` of a run that is still going is refused
whatever lock folder either of them used.

Both are `flock` locks: the kernel releases them when their holder dies, SIGKILL included, so
a dead owner's lock is simply taken over. The file says who holds it (first line, JSON) and
lists, one "sid start_ticks" line each, the sessions the holder started (guardian.py). A clean
release empties the file, so a file found non-empty by the next holder was left by an owner
that died: the live processes of its sessions are leftovers, stopped and named
(`Takeover`) before anything new starts. `folder_owner` asks whether a folder's owner still
runs without taking its lock (`serverbench report` on a run marked running).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from serverbench.errors import ServerbenchError
from serverbench.run import guardian

LOCK_DIR_ENV = "SERVERBENCH_LOCK_DIR"
MACHINE_LOCK_NAME = "serverbench.lock"
RUN_LOCK_NAME = ".serverbench-owner"  # in a results folder


class LockHeld(ServerbenchError):
    """Another live serverbench holds the lock."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    pid: int
    command: str
    started_at: str  # ISO 8601, UTC
    start_ticks: int  # the process's start in clock ticks after boot: tells a recycled pid apart

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid}, started {self.started_at})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Takeover:
    """A lock whose owner died without releasing it, and what was still running of its work."""

    owner: Owner | None  # None when its first line was unreadable
    stopped: tuple[guardian.Member, ...]  # live processes of its sessions, now killed

    def describe(self) -> str:
        who = self.owner.describe() if self.owner else "an earlier serverbench"
        if not self.stopped:
            return f"{who} ended without releasing its lock; nothing of it was still running"
        listed = ", ".join(f"{m.pid} ({m.name})" for m in self.stopped)
        return f"{who} ended without stopping its processes; stopped them now: {listed}"


def machine_lock_path() -> Path:
    configured = os.environ.get(LOCK_DIR_ENV)
    if configured:
        return Path(configured) / MACHINE_LOCK_NAME
    # /run/lock is machine-wide, writable by every user and emptied at boot
    folder = Path("/run/lock")
    if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        folder = Path(tempfile.gettempdir())
    return folder / MACHINE_LOCK_NAME


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read(path: Path) -> tuple[Owner | None, dict[int, int]]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None, {}
    if not lines:
        return None, {}
    owner: Owner | None
    try:
        fields = json.loads(lines[0])
        owner = Owner(
            pid=int(fields["pid"]),
            command=str(fields["command"]),
            started_at=str(fields["started_at"]),
            start_ticks=int(fields["start_ticks"]),
        )
    except (ValueError, KeyError, TypeError):
        owner = None
    return owner, dict(guardian.parse_sessions(lines[1:]))


def read_owner(path: Path) -> Owner | None:
    """Who holds (or last held without releasing) the lock at path."""
    return _read(path)[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderOwner:
    """Whether the serverbench that last owned a results folder still runs, and who it was."""

    alive: bool | None  # None: the folder has no owner file to ask (older runs, a copied folder)
    owner: Owner | None  # None: it released the folder, or its first line is unreadable


def folder_owner(folder: Path) -> FolderOwner:
    """Ask, without taking it, whether the run lock of a results folder is held.

    The lock is what `--resume` meets; the kernel drops it when its holder dies (SIGKILL
    included), and a process that recycled the pid holds none, so a shared lock taken and
    dropped at once answers. Only a file that cannot be opened falls back to the pid, which
    counts only if its process started when the owner did (start ticks).
    """
    path = folder / RUN_LOCK_NAME
    if not path.exists():
        return FolderOwner(alive=None, owner=None)
    owner = read_owner(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return FolderOwner(alive=_started_as(owner) if owner else None, owner=owner)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return FolderOwner(alive=True, owner=owner)
    finally:
        os.close(fd)  # drops the shared lock too, when it was taken
    return FolderOwner(alive=False, owner=owner)


def _started_as(owner: Owner) -> bool:
    ticks = guardian.start_ticks(owner.pid)  # None: no such process, or a zombie
    return ticks is not None and owner.start_ticks in (0, ticks)  # 0: not known when written


class OwnerLock:
    """A held lock; `record_session` is its ledger of the sessions its holder starts."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def record_session(self, sid: int, ticks: int) -> None:
        # one short O_APPEND write per line: a reader never sees half a line
        with contextlib.suppress(OSError):
            os.write(self._fd, f"{sid} {ticks}\n".encode())

    def release(self) -> None:
        guardian.remove_ledger(self.record_session)
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock


def _open(path: Path, what: str, *, public: bool) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise LockHeld(
            f"cannot open {what} {path} ({error.strerror}); make it writable for this user, "
            f"or point {LOCK_DIR_ENV} at a folder that is"
        ) from None
    if public:
        # readable by all (under our umask 077 it would not be), so anyone can see who holds it
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o644)
    return fd


def acquire(
    path: Path,
    *,
    command: str,
    what: str,
    busy: Callable[[Owner | None], str],
    wait: bool = False,
    on_wait: Callable[[Owner | None], None] | None = None,
    public: bool = False,
) -> tuple[OwnerLock, Takeover | None]:
    """Take the lock at path for this process.

    Held by a live process: raise LockHeld with `busy(owner)`, or with wait=True call
    on_wait(owner) and block until it is free. Sessions this process starts from now on are
    written to the lock's ledger until release().
    """
    fd = _open(path, what, public=public)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = read_owner(path)
            if not wait:
                raise LockHeld(busy(owner)) from None
            if on_wait is not None:
                on_wait(owner)
            fcntl.flock(fd, fcntl.LOCK_EX)
        previous, sessions = _read(path)
        takeover = None
        if previous is not None or sessions:
            stopped = guardian.kill_sessions(sessions) if sessions else []
            takeover = Takeover(owner=previous, stopped=tuple(stopped))
        os.ftruncate(fd, 0)
        ticks = guardian.start_ticks(os.getpid()) or 0
        me = {"pid": os.getpid(), "command": command, "started_at": _now(), "start_ticks": ticks}
        os.write(fd, (json.dumps(me) + "\n").encode())
    except BaseException:
        os.close(fd)
        raise
    lock = OwnerLock(path, fd)
    guardian.add_ledger(lock.record_session)
    return lock, takeover


def _machine_busy(owner: Owner | None) -> str:
    who = owner.describe() if owner else "another serverbench"
    kill = f" (kill {owner.pid})" if owner else ""
    return (
        f"this machine is busy with {who}: two benchmarks at once share the CPUs and both "
        f"measure less; wait for it with --wait-for-lock, or stop it{kill}"
    )


@contextlib.contextmanager
def machine_lock(
    command: str,
    *,
    wait: bool,
    on_wait: Callable[[Owner | None], None] | None = None,
    path: Path | None = None,
) -> Iterator[Takeover | None]:
    """Hold the machine-wide lock for the block; a dead owner's leftovers are stopped first."""
    lock, takeover = acquire(
        path or machine_lock_path(),
        command=command,
        what="the machine lock",
        busy=_machine_busy,
        public=True,
        wait=wait,
        on_wait=on_wait,
    )
    try:
        yield takeover
    finally:
        lock.release()


def run_lock(folder: Path, command: str) -> tuple[OwnerLock, Takeover | None]:
    """Own the results folder; refused while the run that writes it is still going."""

    def busy(owner: Owner | None) -> str:
        who = owner.describe() if owner else "another serverbench"
        kill = f" (kill {owner.pid})" if owner else ""
        return (
            f"the run in {folder} is still going: {who}; two processes writing one results "
            f"folder lose measurements; wait for it to end, or stop it{kill} and resume then"
        )

    return acquire(folder / RUN_LOCK_NAME, command=command, what="the run's owner file", busy=busy)
