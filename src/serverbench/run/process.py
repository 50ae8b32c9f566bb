"""A child process serverbench owns: spawned in its own session, logged, stopped with nothing left.

Every child gets its own session (PID == PGID == SID), so a signal to the group reaches the
workers it forks, and dies with serverbench even when serverbench is killed (run/guardian.py). Some children move their own children to other groups (supervisord does), and some
workers outlive a signalled parent (socketify), so before signalling we also snapshot every
descendant and finish them one by one. Every live ManagedProcess is in `LIVE`, which
`stop_all()` empties: the CLI calls it on Ctrl-C, SIGTERM and exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import psutil

from serverbench.errors import StackStartError
from serverbench.run import guardian

# a server that gives up prints its own traceback after the one that says why (gunicorn: ~35 lines)
LOG_TAIL_LINES = 40
_LIVE_LOCK = threading.Lock()
LIVE: dict[int, ManagedProcess] = {}


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        cpus: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = tuple(argv)
        self.command = (("taskset", "-c", cpus) if cpus else ()) + self.argv
        self.log_path = log_path
        self.stop_signal = stop_signal
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(log_path, "ab") as log:
            try:
                self.popen = subprocess.Popen(
                    self.command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    cwd=cwd,
                    **guardian.popen_options(),
                )
            except FileNotFoundError:
                raise StackStartError(
                    f"{name}: cannot run {self.command[0]!r}: not found; install it and try again"
                ) from None
        self.pid = self.popen.pid
        guardian.adopt(self.pid)
        with _LIVE_LOCK:
            LIVE[self.pid] = self

    def exit_code(self) -> int | None:
        return self.popen.poll()

    def tail(self) -> str:
        return log_tail(self.log_path)

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def tree_pids(self) -> list[int]:
        return [self.pid, *(child.pid for child in self.descendants())]

    def live_tree(self) -> dict[int, str]:
        """pid -> process name of the process and its descendants, zombies left out."""
        try:
            members = [psutil.Process(self.pid), *self.descendants()]
        except psutil.NoSuchProcess:
            return {}
        tree: dict[int, str] = {}
        for member in members:
            with contextlib.suppress(psutil.Error):
                if member.status() != psutil.STATUS_ZOMBIE:
                    tree[member.pid] = member.name()
        return tree

    def stop(self, grace_s: float = 8.0) -> None:
        """Stop the process, its group and every descendant; escalate to SIGKILL after grace_s."""
        survivors = self.descendants()
        # a stopped (SIGSTOP) process keeps the stop signal pending until it is continued
        for signum in (self.stop_signal, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if self.popen.poll() is None or _group_alive(self.pid):
                    os.killpg(self.pid, signum)
            for child in survivors:
                with contextlib.suppress(psutil.Error):
                    child.send_signal(signum)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            self.popen.poll()
            if not _group_alive(self.pid) and not _any_running(survivors):
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            for child in survivors:
                with contextlib.suppress(psutil.Error):
                    child.kill()
            psutil.wait_procs(survivors, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        with _LIVE_LOCK:
            LIVE.pop(self.pid, None)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a group whose members are all zombies is as good as gone
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def _any_running(processes: list[psutil.Process]) -> bool:
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            continue
    return False


def stop_all(grace_s: float = 5.0) -> None:
    """Stop every process serverbench still owns, newest first."""
    with _LIVE_LOCK:
        processes = list(LIVE.values())
    for process in reversed(processes):
        process.stop(grace_s)


@contextlib.contextmanager
def owned(process: ManagedProcess, grace_s: float = 8.0) -> Iterator[ManagedProcess]:
    try:
        yield process
    finally:
        process.stop(grace_s)
