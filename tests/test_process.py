"""ManagedProcess and the lifecycle with real tiny children: logs, exit codes, stopping trees.

The lifecycle tests use fake stacks whose plan() runs small Python scripts written to tmp_path,
so that a failure to stop them is caught by the `no_leftovers` fixture too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import psutil
import pytest

from serverbench.apps.registry import (
    BUILTIN_APPS,
    SEED_MSISDN,
    App,
    Interface,
    UserAppOptions,
    resolve_app,
)
from serverbench.errors import StackStartError, StackUnavailable, UsageError, VerificationError
from serverbench.run import process
from serverbench.run.host import LOCAL
from serverbench.run.lifecycle import check_usable, running_stack
from serverbench.run.process import ManagedProcess, log_tail, owned, stop_all
from serverbench.run.verify import accepts_connection, verify
from serverbench.stacks import get_stack
from serverbench.stacks.base import (
    Component,
    GeneratedFile,
    LaunchPlan,
    Setting,
    StackContext,
    TcpEndpoint,
)
from serverbench.stacks.interpreter import Interpreter, own
from tests.conftest import gone

FLASK = BUILTIN_APPS["seed-flask"]
FASTAPI = BUILTIN_APPS["seed-fastapi"]


def write_script(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def wait_for_file(path: Path, timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} was never written")


def wait_exit(managed: ManagedProcess, timeout_s: float = 10.0) -> int:
    return managed.popen.wait(timeout=timeout_s)


@pytest.fixture(autouse=True)
def nothing_live_after() -> Iterator[None]:
    yield
    leaked = dict(process.LIVE)
    stop_all(grace_s=1.0)
    assert not leaked, f"ManagedProcess left in LIVE: {leaked}"


# --- ManagedProcess ---------------------------------------------------------------------


def test_output_and_errors_go_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "child.log"
    managed = ManagedProcess(
        "child",
        [
            sys.executable,
            "-c",
            "import sys; print('to stdout'); print('to stderr', file=sys.stderr)",
        ],
        log_path=log,
    )
    assert wait_exit(managed) == 0
    assert managed.exit_code() == 0
    text = log.read_text()
    assert "to stdout" in text
    assert "to stderr" in text
    managed.stop()
    assert managed.pid not in process.LIVE


def test_exit_code_and_log_tail(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(50): print('line', i)\nsys.exit(7)"
    managed = ManagedProcess("failing", [sys.executable, "-c", code], log_path=tmp_path / "f.log")
    assert managed.pid in process.LIVE
    assert wait_exit(managed) == 7
    assert managed.exit_code() == 7
    tail = managed.tail().splitlines()
    assert len(tail) == process.LOG_TAIL_LINES
    assert tail[-1] == "line 49"
    assert log_tail(tmp_path / "f.log", lines=2) == "line 48\nline 49"
    managed.stop()
    assert managed.pid not in process.LIVE


def test_log_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert log_tail(tmp_path / "never-written.log") == ""


def test_env_and_cwd_reach_the_child(tmp_path: Path) -> None:
    code = "import os; print(os.environ['SB_TEST_VALUE'], os.getcwd())"
    managed = ManagedProcess(
        "env",
        [sys.executable, "-c", code],
        log_path=tmp_path / "env.log",
        env={"SB_TEST_VALUE": "hello"},
        cwd=str(tmp_path),
    )
    assert wait_exit(managed) == 0
    assert (tmp_path / "env.log").read_text().split() == ["hello", str(tmp_path)]
    managed.stop()


def test_child_runs_in_its_own_session(tmp_path: Path) -> None:
    script = write_script(tmp_path, "sleeper.py", "import time\ntime.sleep(30)\n")
    with owned(
        ManagedProcess("sleeper", [sys.executable, str(script)], log_path=tmp_path / "s.log")
    ) as managed:
        assert os.getpgid(managed.pid) == managed.pid
        assert os.getsid(managed.pid) == managed.pid
        assert managed.tree_pids() == [managed.pid]
    assert gone(managed.pid)
    assert managed.exit_code() == -signal.SIGTERM


def test_cpus_pin_the_child_with_taskset(tmp_path: Path) -> None:
    script = write_script(tmp_path, "pinned.py", "import time\ntime.sleep(30)\n")
    cpu = str(min(os.sched_getaffinity(0)))
    with owned(
        ManagedProcess(
            "pinned", [sys.executable, str(script)], log_path=tmp_path / "p.log", cpus=cpu
        )
    ) as managed:
        assert managed.command[:3] == ("taskset", "-c", cpu)
        deadline = time.monotonic() + 5
        # until the exec: taskset's command line, or none at all in the middle of the exec
        while psutil.Process(managed.pid).cmdline()[:1] != [sys.executable]:
            assert time.monotonic() < deadline, "taskset never exec'd the child"
            time.sleep(0.02)
        assert psutil.Process(managed.pid).cpu_affinity() == [int(cpu)]


def test_a_missing_program_is_a_start_error(tmp_path: Path) -> None:
    with pytest.raises(StackStartError, match="cannot run '/no/such/server': not found; install"):
        ManagedProcess("ghost", ["/no/such/server"], log_path=tmp_path / "ghost.log")
    assert not process.LIVE


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = write_script(
        tmp_path,
        "stubborn.py",
        f"""\
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(ready)!r}, "w").write("ready")
        while True:
            time.sleep(1)
        """,
    )
    managed = ManagedProcess("stubborn", [sys.executable, str(script)], log_path=tmp_path / "s.log")
    wait_for_file(ready)
    started = time.monotonic()
    managed.stop(grace_s=0.5)
    took_s = time.monotonic() - started
    assert 0.5 <= took_s < 3.0
    assert managed.exit_code() == -signal.SIGKILL
    assert gone(managed.pid)
    assert managed.pid not in process.LIVE


GRANDPARENT = """\
import os, signal, sys, time

pid_file, ignore_term = sys.argv[1], sys.argv[2] == "ignore"
child = os.fork()
if child == 0:
    os.setsid()  # out of the group serverbench signals
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pid_file + ".tmp", pid_file)
    while True:
        time.sleep(1)
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize("grandchild", ["default", "ignore"])
def test_a_grandchild_that_escaped_the_group_is_stopped(tmp_path: Path, grandchild: str) -> None:
    script = write_script(tmp_path, "forker.py", GRANDPARENT)
    pid_file = tmp_path / "grandchild.pid"
    managed = ManagedProcess(
        "forker",
        [sys.executable, str(script), str(pid_file), grandchild],
        log_path=tmp_path / "forker.log",
    )
    grandchild_pid = int(wait_for_file(pid_file))
    assert os.getpgid(grandchild_pid) != managed.pid
    assert grandchild_pid in managed.tree_pids()
    managed.stop(grace_s=0.5)
    assert gone(managed.pid)
    deadline = time.monotonic() + 3
    while not gone(grandchild_pid):
        assert time.monotonic() < deadline, f"grandchild {grandchild_pid} survived stop()"
        time.sleep(0.05)


def test_stop_all_stops_every_live_process(tmp_path: Path) -> None:
    script = write_script(tmp_path, "sleeper.py", "import time\ntime.sleep(30)\n")
    started = [
        ManagedProcess(f"sleeper{i}", [sys.executable, str(script)], log_path=tmp_path / f"{i}.log")
        for i in range(3)
    ]
    assert {m.pid for m in started} <= set(process.LIVE)
    stop_all(grace_s=1.0)
    assert not process.LIVE
    for managed in started:
        assert managed.exit_code() is not None
        assert gone(managed.pid)


def test_stopping_twice_is_harmless(tmp_path: Path) -> None:
    script = write_script(tmp_path, "sleeper.py", "import time\ntime.sleep(30)\n")
    managed = ManagedProcess("twice", [sys.executable, str(script)], log_path=tmp_path / "t.log")
    managed.stop(grace_s=1.0)
    managed.stop(grace_s=1.0)
    assert gone(managed.pid)


# --- lifecycle with fake stacks -----------------------------------------------------------


class FakeStack:
    """A stack whose one component runs `argv_for(ctx)`, ready on ctx.front."""

    name: ClassVar[str] = "fake"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "a fake stack for tests"
    model: ClassVar[str] = "whatever the test runs"
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"wsgi", "asgi"})
    packages: ClassVar[tuple[str, ...]] = ()
    settings: ClassVar[tuple[Setting, ...]] = ()

    def __init__(self, argv: Sequence[str], files: tuple[GeneratedFile, ...] = ()) -> None:
        self.argv = tuple(argv)
        self.files = files

    def unavailable_reason(self, python: Interpreter) -> str | None:
        return None

    def plan(self, ctx: StackContext) -> LaunchPlan:
        argv = tuple(part.replace("{port}", str(ctx.port)) for part in self.argv)
        return LaunchPlan(
            components=(
                Component(name="fakeserver", argv=argv, ready=(ctx.front,), files=self.files),
            ),
            front=ctx.front,
            settings={},
        )


SERVER = """\
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

status = sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        msisdn = self.path.rsplit("/", 1)[-1]
        body = json.dumps({"msisdn": msisdn, "status": status}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def ctx_for(tmp_path: Path, app: App = FLASK, port: int | None = None) -> StackContext:
    return StackContext(
        interpreter=own(),
        app=app,
        host="127.0.0.1",
        port=port or LOCAL.free_port(),
        run_dir=tmp_path / "run",
        ports=LOCAL.free_port,
        server_cpu_count=1,
    )


def server_stack(tmp_path: Path, status: str, files: tuple[GeneratedFile, ...] = ()) -> FakeStack:
    script = write_script(tmp_path, "server.py", SERVER)
    return FakeStack([sys.executable, str(script), "{port}", status], files)


def test_a_correct_server_is_started_verified_and_stopped(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    config = GeneratedFile(path=ctx.run_dir / "conf" / "server.conf", content="setting on\n")
    stack = server_stack(tmp_path, "ok", files=(config,))
    with running_stack(stack, ctx, ready_timeout_s=10) as running:
        pid = running.component_pids()["fakeserver"]
        assert running.url == f"http://127.0.0.1:{ctx.port}"
        assert running.front == ctx.front
        assert running.commands()["fakeserver"][-1] == "ok"
        assert running.exited() is None
        assert config.path.read_text() == "setting on\n"
        assert config.path.stat().st_mode & 0o777 == 0o600
        assert ctx.run_dir.stat().st_mode & 0o777 == 0o700
    assert gone(pid)
    assert not accepts_connection(ctx.front)


def test_a_server_that_dies_while_running_is_reported(tmp_path: Path) -> None:
    with running_stack(server_stack(tmp_path, "ok"), ctx_for(tmp_path)) as running:
        os.kill(running.component_pids()["fakeserver"], signal.SIGKILL)
        running.processes[0].popen.wait(timeout=5)
        why = running.exited()
        assert why is not None
        assert why.startswith(f"fakeserver exited with code {-signal.SIGKILL}")


def test_a_component_that_exits_at_start_shows_its_log(tmp_path: Path) -> None:
    stack = FakeStack([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    with pytest.raises(StackStartError) as raised, running_stack(stack, ctx_for(tmp_path)):
        pytest.fail("the stack should not have started")
    message = str(raised.value)
    assert message.startswith("fake: fakeserver exited at start with code 3")
    assert message.endswith("its log ends with:\nboom")


def test_a_component_that_never_listens_times_out(tmp_path: Path) -> None:
    script = write_script(
        tmp_path, "mute.py", "import time\nprint('starting', flush=True)\ntime.sleep(30)\n"
    )
    ctx = ctx_for(tmp_path)
    started = time.monotonic()
    with (
        pytest.raises(StackStartError) as raised,
        running_stack(FakeStack([sys.executable, str(script)]), ctx, ready_timeout_s=1),
    ):
        pytest.fail("the stack should not have started")
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert f"fake: fakeserver did not accept connections on 127.0.0.1:{ctx.port} within 1 s" in (
        message
    )
    assert message.endswith("its log ends with:\nstarting")


def test_a_wrong_answer_is_a_verification_error(tmp_path: Path) -> None:
    with (
        pytest.raises(VerificationError) as raised,
        running_stack(server_stack(tmp_path, "broken"), ctx_for(tmp_path)),
    ):
        pytest.fail("the stack should not have been verified")
    message = str(raised.value)
    assert message.startswith("fake serving seed-flask answered wrongly: GET /api/v2/")
    assert '"status": "ok"' in message  # expected
    assert '"status": "broken"' in message  # got
    assert "expected {" in message
    assert ", got {" in message
    assert "--expect-json" in message


def test_a_port_in_use_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ctx = ctx_for(tmp_path, port=port)
        assert LOCAL.port_in_use(ctx.port)
        with (
            pytest.raises(UsageError, match=f"port {port} is already in use on 127.0.0.1; stop"),
            running_stack(server_stack(tmp_path, "ok"), ctx),
        ):
            pytest.fail("the stack should not have started")
    assert not process.LIVE
    assert not (tmp_path / "run").exists()
    assert not LOCAL.port_in_use(port)


def test_a_stack_refuses_an_app_of_another_interface(tmp_path: Path) -> None:
    with pytest.raises(StackUnavailable) as raised:
        check_usable(get_stack("bjoern"), ctx_for(tmp_path, app=FASTAPI))
    assert str(raised.value) == (
        "bjoern serves WSGI apps only; seed-fastapi is ASGI; "
        "pick another stack (see `serverbench stacks`)"
    )
    check_usable(get_stack("uvicorn"), ctx_for(tmp_path, app=FASTAPI))


def test_an_unavailable_stack_is_refused_before_anything_starts(tmp_path: Path) -> None:
    class Missing(FakeStack):
        def unavailable_reason(self, python: Interpreter) -> str | None:
            return "fakeserver is not installed; install it"

    stack = Missing([sys.executable, "-c", "raise SystemExit('must not run')"])
    with (
        pytest.raises(StackUnavailable, match="stack fake is unavailable: fakeserver is not"),
        running_stack(stack, ctx_for(tmp_path)),
    ):
        pytest.fail("the stack should not have started")
    assert not (tmp_path / "run").exists()


# --- verification against an in-thread server ---------------------------------------------


@pytest.fixture
def answering() -> Iterator[tuple[TcpEndpoint, dict[str, object]]]:
    """A server in this process answering what `behaviour` says; no child process."""
    behaviour: dict[str, object] = {"status": 200, "type": "application/json", "wrong_for": None}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            msisdn = self.path.rsplit("/", 1)[-1]
            state = "bad" if msisdn == behaviour["wrong_for"] else "ok"
            body = json.dumps({"msisdn": msisdn, "status": state}).encode()
            self.send_response(int(str(behaviour["status"])))
            self.send_header("Content-Type", str(behaviour["type"]))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TcpEndpoint(host="127.0.0.1", port=server.server_address[1]), behaviour
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_verify_accepts_the_right_answer(
    answering: tuple[TcpEndpoint, dict[str, object]],
) -> None:
    endpoint, _ = answering
    assert verify(endpoint, FLASK, seed=1) is None


def test_verify_checks_the_load_path_itself(
    answering: tuple[TcpEndpoint, dict[str, object]],
) -> None:
    endpoint, behaviour = answering
    behaviour["wrong_for"] = SEED_MSISDN
    mismatch = verify(endpoint, FLASK, seed=1)
    assert mismatch is not None
    assert mismatch.path == FLASK.load_path
    assert '"status": "bad"' in mismatch.got


def test_verify_reports_status_and_content_type(
    answering: tuple[TcpEndpoint, dict[str, object]],
) -> None:
    endpoint, behaviour = answering
    behaviour["type"] = "text/plain"
    mismatch = verify(endpoint, FLASK, seed=1)
    assert mismatch is not None
    assert mismatch.expected == "a JSON Content-Type"
    behaviour["status"] = 500
    mismatch = verify(endpoint, FLASK, seed=1)
    assert mismatch is not None
    assert str(mismatch).startswith(f"GET {FLASK.load_path}: expected status 200, got status 500")


def test_verify_with_a_regex(answering: tuple[TcpEndpoint, dict[str, object]]) -> None:
    endpoint, _ = answering
    user = resolve_app("m:a", UserAppOptions(path="/x/{msisdn}", expect_regex='"status": "ok"'))
    assert verify(endpoint, user, seed=1) is None
    picky = resolve_app("m:a", UserAppOptions(path="/x/{msisdn}", expect_regex="^nothing$"))
    mismatch = verify(endpoint, picky, seed=1)
    assert mismatch is not None
    assert mismatch.expected == "a body matching /^nothing$/"


def test_verify_with_nothing_listening() -> None:
    mismatch = verify(TcpEndpoint(host="127.0.0.1", port=LOCAL.free_port()), FLASK, timeout_s=1)
    assert mismatch is not None
    assert mismatch.expected == "an HTTP response"
    assert "ConnectionRefusedError" in mismatch.got
