"""The machine lock and a results folder's owner: refused, waited for, taken over from the dead.

Every test uses a lock folder of its own (never the machine's), and holders in real processes:
flock locks belong to open files, so only another process shows what a second serverbench sees.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from serverbench.run import guardian, lock
from tests.conftest import alive

HOLDER = """\
import subprocess, sys, time
from pathlib import Path
from serverbench.run import guardian, lock
from tests.conftest import alive

with lock.machine_lock("serverbench run --holder", wait=False, path=Path(sys.argv[1])):
    child = subprocess.Popen(
        [sys.executable, "-c", "import os, time; os.fork(); time.sleep(600)"],
        **guardian.popen_options(),
    )
    guardian.adopt(child.pid)
    print(child.pid, flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(path: Path, seconds: float) -> tuple[subprocess.Popen[str], int]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    return holder, int(holder.stdout.readline())


def end(holder: subprocess.Popen[str], signum: int = signal.SIGTERM) -> None:
    if holder.poll() is None:
        holder.send_signal(signum)
    holder.wait(timeout=10)


def test_a_second_holder_is_refused_with_the_first_ones_command_and_pid(tmp_path: Path) -> None:
    path = tmp_path / "serverbench.lock"
    holder, _ = hold(path, 600)
    try:
        with (
            pytest.raises(lock.LockHeld) as refused,
            lock.machine_lock("serverbench check", wait=False, path=path),
        ):
            pass
        message = str(refused.value)
        assert "`serverbench run --holder`" in message
        assert f"pid {holder.pid}" in message
        assert "--wait-for-lock" in message
        assert f"kill {holder.pid}" in message
        assert lock.read_owner(path) is not None
    finally:
        end(holder)
        guardian.shutdown()


def test_a_waiting_holder_gets_the_lock_when_the_first_releases_it(tmp_path: Path) -> None:
    path = tmp_path / "serverbench.lock"
    holder, _ = hold(path, 1.5)
    waited_for: list[lock.Owner | None] = []
    started = time.monotonic()
    try:
        with lock.machine_lock(
            "serverbench run", wait=True, on_wait=waited_for.append, path=path
        ) as takeover:
            assert takeover is None  # a clean release leaves nothing to take over
            assert time.monotonic() - started >= 1.0
            owner = lock.read_owner(path)
            assert owner is not None
            assert owner.command == "serverbench run"
    finally:
        end(holder)
    assert [o.pid if o else None for o in waited_for] == [holder.pid]
    assert path.read_text() == ""  # released


def test_the_lock_of_a_killed_owner_is_taken_over_and_its_leftovers_stopped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "serverbench.lock"
    holder, sid = hold(path, 600)
    # the child dies with the holder (PR_SET_PDEATHSIG); its own child, the worker, does not.
    # kill its guardian first, so only the ledger in the lock file tells what is left
    keepers = [
        p
        for p in psutil.Process(holder.pid).children()
        if "serverbench.run.guardian" in p.cmdline()
    ]
    assert len(keepers) == 1
    keepers[0].kill()
    deadline = time.monotonic() + 10
    while alive(keepers[0]) and time.monotonic() < deadline:
        time.sleep(0.02)  # a zombie until its parent (the holder) reaps it: gone enough
    assert wait_for_members(sid, 2)
    end(holder, signal.SIGKILL)
    worker = wait_for_members(sid, 1)
    assert worker  # still running
    with lock.machine_lock("serverbench run", wait=False, path=path) as takeover:
        assert takeover is not None
        assert takeover.owner is not None
        assert takeover.owner.pid == holder.pid
        assert [m.pid for m in takeover.stopped] == [m.pid for m in worker]
        described = takeover.describe()
        assert "`serverbench run --holder`" in described
        assert f"stopped them now: {worker[0].pid} (python" in described
        assert not guardian.members({sid: 0})
        assert json.loads(path.read_text().splitlines()[0])["command"] == "serverbench run"


def wait_for_members(sid: int, count: int) -> list[guardian.Member]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = guardian.members({sid: 0})
        if len(found) == count:
            return found
        time.sleep(0.02)
    return []


def test_sessions_started_while_holding_are_written_to_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "serverbench.lock"
    with lock.machine_lock("serverbench run", wait=False, path=path):
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"], **guardian.popen_options()
        )
        guardian.adopt(child.pid)
        lines = path.read_text().splitlines()
        assert lines[1].split()[0] == str(child.pid)
        guardian.shutdown()
        child.wait()


def test_a_live_runs_folder_cannot_be_owned_twice(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    held = threading.Event()
    script = (
        "import sys, time; from pathlib import Path; from serverbench.run import lock; "
        "lock.run_lock(Path(sys.argv[1]), 'serverbench run --out x'); "
        "print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        held.set()
        with pytest.raises(lock.LockHeld) as refused:
            lock.run_lock(folder, "serverbench run --resume")
        assert f"the run in {folder} is still going" in str(refused.value)
        assert f"pid {holder.pid}" in str(refused.value)
    finally:
        end(holder, signal.SIGKILL)
    owned, takeover = lock.run_lock(folder, "serverbench run --resume")
    try:
        assert takeover is not None
        assert takeover.owner is not None
        assert takeover.owner.pid == holder.pid
        assert "nothing of it was still running" in takeover.describe()
    finally:
        owned.release()


def test_an_unwritable_lock_folder_is_refused_with_the_override_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with (
        pytest.raises(lock.LockHeld, match=lock.LOCK_DIR_ENV),
        lock.machine_lock("x", wait=False, path=blocker / "serverbench.lock"),
    ):
        pass


def test_the_lock_folder_comes_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(lock.LOCK_DIR_ENV, str(tmp_path))
    assert lock.machine_lock_path() == tmp_path / lock.MACHINE_LOCK_NAME
    monkeypatch.delenv(lock.LOCK_DIR_ENV)
    assert lock.machine_lock_path().name == lock.MACHINE_LOCK_NAME
