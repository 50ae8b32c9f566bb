"""Tests of monitor: real process trees sampled with psutil, and the dict round trip."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest

from serverbench.observe.sampler import (
    ComponentUsage,
    Monitor,
)
from tests.conftest import gone

# A parent that forks one grandchild; both burn CPU for `BURN_S` then idle until killed.
BURN_TREE = """
import os, sys, time
pid = os.fork()
if pid:
    print(pid, flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
time.sleep(60)
"""

# A parent that keeps forking short-lived children, like a server respawning workers.
RESPAWN_TREE = """
import os, time
while True:
    pid = os.fork()
    if pid == 0:
        time.sleep(0.05)
        os._exit(0)
    time.sleep(0.02)
    os.waitpid(pid, 0)
"""


@contextmanager
def spawn(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """Run a script in its own process group; kill the group after and check nothing remains."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    members: set[int] = {proc.pid}
    try:
        yield proc
    finally:
        with suppress(psutil.NoSuchProcess):
            members.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        assert proc.stdout is not None
        proc.stdout.close()
        deadline = time.monotonic() + 3
        while not all(gone(pid) for pid in members) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(gone(pid) for pid in members), "processes left behind"


@pytest.mark.integration
def test_monitor_measures_a_forked_tree() -> None:
    with spawn(BURN_TREE, "1.2") as proc:
        assert proc.stdout is not None
        grandchild = int(proc.stdout.readline())
        tree = [psutil.Process(proc.pid), psutil.Process(grandchild)]

        def cpu_s() -> float:
            return sum(p.cpu_times().user + p.cpu_times().system for p in tree)

        before = cpu_s()
        with Monitor({"burner": proc.pid}, interval_s=0.1) as monitor:
            time.sleep(1.0)
        burned = cpu_s() - before
        usage = monitor.usage
        burner = usage.component("burner")
        assert psutil.Process(grandchild).ppid() == proc.pid
    assert usage.samples >= 5
    assert 0.9 < usage.window_s < 2.0
    # what the kernel says the tree burned over (a little more than) the window; on a busy
    # machine that may be little, so the sampler is held against it rather than a constant
    assert burned > 0
    assert 0.5 * burned - 0.05 <= burner.cpu_seconds <= burned + 0.05
    assert burner.processes_max == 2
    assert burner.rss_peak_bytes > 0
    assert 0 < burner.rss_mean_bytes <= burner.rss_peak_bytes
    assert burner.threads_max >= 2
    assert burner.cpu_percent_max >= burner.cpu_percent_mean > 0
    assert usage.cpu_seconds_for(["burner"]) == burner.cpu_seconds
    # its own cost is recorded; keeping it small is benchmarks/harness_overhead.py's job
    assert usage.sampler_cpu_s > 0


@pytest.mark.integration
def test_monitor_survives_respawning_children_and_missing_pids() -> None:
    with spawn(RESPAWN_TREE) as proc:
        # A pid that is surely not running: the highest possible one.
        missing_pid = int(Path("/proc/sys/kernel/pid_max").read_text())
        monitor = Monitor({"respawner": proc.pid, "missing": missing_pid}, interval_s=0.02)
        monitor.start()
        time.sleep(0.5)
        usage = monitor.stop()
        assert monitor.stop() is usage
    assert usage.component("respawner").processes_max >= 1
    missing = usage.component("missing")
    assert missing == ComponentUsage(
        name="missing",
        processes_max=0,
        cpu_seconds=0.0,
        cpu_percent_mean=0.0,
        cpu_percent_max=0.0,
        rss_peak_bytes=0,
        rss_mean_bytes=0,
        threads_max=0,
        connections_max=0,
    )


def test_monitor_counts_established_connections() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    accepted = [listener.accept()[0] for _ in range(3)]
    try:
        with Monitor({"self": os.getpid()}, interval_s=0.05) as monitor:
            time.sleep(0.1)
        # Both ends live in this process: 3 client and 3 accepted sockets, not the listener.
        assert monitor.usage.component("self").connections_max == 6
    finally:
        for s in [listener, *clients, *accepted]:
            s.close()


def test_monitor_stops_promptly() -> None:
    monitor = Monitor({"self": os.getpid()}, interval_s=5.0)
    monitor.start()
    started = time.monotonic()
    usage = monitor.stop()
    assert time.monotonic() - started < 1.0
    assert usage.samples == 2


def test_usage_read_before_stop_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        _ = Monitor({"self": os.getpid()}).usage


def test_a_slow_connection_count_does_not_move_the_cpu_baseline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # /proc/net/tcp with thousands of TIME_WAIT sockets parses slowly; the CPU must still be
    # read when the sample is taken, or a busy server reads as idle (it read 0 % in capacity)
    def slow_established() -> set[int]:
        time.sleep(0.6)
        return set()

    monkeypatch.setattr("serverbench.observe.sampler._established_inodes", slow_established)
    with spawn(BURN_TREE, "3") as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        tree = psutil.Process(proc.pid)
        before = sum(p.cpu_times().user + p.cpu_times().system for p in [tree, *tree.children()])
        with Monitor({"burner": proc.pid}, interval_s=0.1, connections_every=100) as monitor:
            time.sleep(1.0)
        burned = sum(p.cpu_times().user + p.cpu_times().system for p in [tree, *tree.children()])
    # the first sample's 0.6 s connection count, if read before the CPU, would drop ~0.6 s of
    # a window of ~1.6 s from the tree's time
    assert monitor.usage.component("burner").cpu_seconds >= 0.85 * (burned - before)
