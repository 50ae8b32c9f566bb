"""Children die with serverbench: real servers, a parent killed with SIGKILL, nothing left.

The parent here is a small script that starts nginx (master and workers), gunicorn (master and
three workers) and a process whose child moves to a process group of its own, each through
guardian.popen_options() and adopt(), as serverbench's spawners do; then the test kills it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from serverbench.run import guardian
from serverbench.stacks.base import TcpEndpoint
from serverbench.stacks.nginx import nginx_binary, render_conf
from tests.conftest import alive

PARENT = """\
import json, subprocess, sys, time
from serverbench.run import guardian

sessions = []
for argv in json.loads(sys.argv[1]):
    child = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **guardian.popen_options()
    )
    guardian.adopt(child.pid)
    sessions.append(child.pid)
print(json.dumps(sessions), flush=True)
time.sleep(600)
"""

FORKER = """\
import os, time
if os.fork() == 0:
    os.setpgrp()  # as supervisord does for each instance
time.sleep(600)
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def nginx_argv(folder: Path) -> list[str]:
    (folder / "logs").mkdir(parents=True)
    (folder / "tmp").mkdir()
    conf = folder / "nginx.conf"
    conf.write_text(
        render_conf(
            workers=2,
            listen=TcpEndpoint(host="127.0.0.1", port=free_port()),
            backlog=128,
            server_body='        location / { return 200 "ok"; }',
            worker_connections=256,
        )
    )
    return [
        "taskset", "-c", "0", nginx_binary(), "-p", str(folder), "-c", str(conf),
        "-g", "daemon off;",
    ]  # fmt: skip


def session_members(sessions: list[int]) -> list[guardian.Member]:
    return guardian.members(dict.fromkeys(sessions, 0))


def wait_for(condition: Callable[[], object], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.integration
def test_kill_9_of_the_parent_leaves_no_process_of_its_sessions(tmp_path: Path) -> None:
    argvs = [
        nginx_argv(tmp_path / "nginx"),
        [
            sys.executable, "-m", "gunicorn", "-w", "3", "-b", f"127.0.0.1:{free_port()}",
            "serverbench.apps.builtin.flask_app:app",
        ],
        [sys.executable, "-c", FORKER, str(tmp_path)],
    ]  # fmt: skip
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, json.dumps(argvs), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        sessions: list[int] = json.loads(parent.stdout.readline())
        # nginx's workers, gunicorn's three workers, the process-group hopper
        assert wait_for(lambda: len(session_members(sessions)) >= 3 + 4 + 2, timeout_s=20)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert wait_for(lambda: not session_members(sessions), timeout_s=5), session_members(sessions)


def test_a_child_started_off_the_main_thread_gets_no_parent_death_signal() -> None:
    # PR_SET_PDEATHSIG fires when the spawning *thread* ends: such a child would die at once
    found: dict[str, object] = {}
    thread = threading.Thread(target=lambda: found.update(guardian.popen_options()))
    thread.start()
    thread.join()
    assert found == {"start_new_session": True, "preexec_fn": None}
    assert guardian.popen_options()["preexec_fn"] is not None


def test_a_child_adopted_after_it_exited_is_not_watched() -> None:
    child = subprocess.Popen(["true"], **guardian.popen_options())
    child.wait()
    guardian.adopt(child.pid)
    assert child.pid not in guardian.watched()
    assert guardian.shutdown() == []


def test_shutdown_kills_what_is_left_and_ends_the_guardian(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", FORKER, str(tmp_path)], **guardian.popen_options()
    )
    guardian.adopt(child.pid)
    assert wait_for(lambda: len(session_members([child.pid])) == 2, timeout_s=10)
    keeper = guardian._guardian
    assert keeper is not None
    assert keeper.popen.poll() is None
    killed = guardian.shutdown()
    child.wait()
    assert len(killed) == 2
    assert keeper.popen.poll() is not None
    assert not alive_pid(child.pid)


def alive_pid(pid: int) -> bool:
    import psutil

    try:
        return alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def test_members_skips_processes_older_than_the_session_leader() -> None:
    own = guardian.start_ticks(os.getpid())
    assert own is not None
    sid = os.getsid(0)
    assert any(m.pid == os.getpid() for m in guardian.members({sid: own})) is False  # self skipped
    assert guardian.members({sid: 2**62}) == []


def test_the_guardian_reads_sessions_from_its_pipe_until_eof(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", FORKER], start_new_session=True)
    ticks = guardian.start_ticks(child.pid)
    assert ticks is not None
    keeper = subprocess.Popen(
        [sys.executable, "-m", "serverbench.run.guardian"], stdin=subprocess.PIPE
    )
    assert keeper.stdin is not None
    keeper.stdin.write(textwrap.dedent(f"{child.pid} {ticks}\nnot a line\n").encode())
    keeper.stdin.close()  # as if serverbench died
    keeper.wait(timeout=10)
    child.wait(timeout=5)
    assert child.returncode == -signal.SIGKILL
    assert wait_for(lambda: not session_members([child.pid]), timeout_s=3)
