"""nginx-gunicorn and nginx-bjoern: their plans, and for real (start, verify, respawn, stop)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from serverbench.apps.registry import BUILTIN_APPS
from serverbench.errors import UsageError
from serverbench.run.host import LOCAL
from serverbench.run.lifecycle import running_stack
from serverbench.run.verify import verify
from serverbench.stacks import get_stack
from serverbench.stacks.base import StackContext, TcpEndpoint, UnixEndpoint
from serverbench.stacks.interpreter import own
from tests.conftest import assert_stopped, listeners

PY = "/opt/python/bin/python3"
FLASK = BUILTIN_APPS["seed-flask"]
RUN = Path("/tmp/sb-topo")
SERVER_CPU = str(min(os.sched_getaffinity(0)))


def context(
    *,
    cpus: int = 2,
    overrides: Mapping[str, str] | None = None,
    run_dir: Path = RUN,
    ports: list[int] | None = None,
) -> StackContext:
    pool = iter(ports or [9001, 9002, 9003, 9004])
    return StackContext(
        app=FLASK,
        host="127.0.0.1",
        port=8123,
        run_dir=run_dir,
        server_cpu_count=cpus,
        overrides=overrides or {},
        interpreter=replace(own(), executable=PY),
        ports=lambda: next(pool),
    )


# --- plans ---------------------------------------------------------------------------------


def test_nginx_gunicorn_plan() -> None:
    plan = get_stack("nginx-gunicorn").plan(context())
    gunicorn, nginx = plan.components
    sock = UnixEndpoint(path=str(RUN / "gunicorn.sock"))
    assert gunicorn.name == "gunicorn"
    assert gunicorn.argv == (
        PY,
        "-m",
        "gunicorn",
        "--no-control-socket",
        "--bind",
        f"unix:{RUN}/gunicorn.sock",
        "--workers",
        "5",
        "--backlog",
        "2048",
        "--keep-alive",
        "2",
        "--log-level",
        "warning",
        "--threads",
        "1",
        "serverbench.apps.builtin.flask_app:app",
    )
    assert gunicorn.ready == (sock,)
    assert nginx.name == "nginx"
    assert nginx.ready == (plan.front,)
    assert all(component.pinned for component in plan.components)
    conf = nginx.files[0].content
    assert f"server unix:{RUN}/gunicorn.sock max_fails=0;" in conf
    assert "keepalive 16;" in conf
    assert "worker_processes 2;" in conf
    assert "listen 127.0.0.1:8123 backlog=4096;" in conf
    assert dict(plan.settings) == {
        "workers": 5,
        "threads": 1,
        "gunicorn_backlog": 2048,
        "keep_alive": 2,
        "nginx_workers": 2,
        "backlog": 4096,
        "upstream_keepalive": 16,
    }
    assert any("Connection: close" in note for note in plan.notes)


def test_nginx_gunicorn_with_threads_uses_upstream_keepalive() -> None:
    plan = get_stack("nginx-gunicorn").plan(context(overrides={"threads": "4"}))
    assert plan.components[0].argv[-3:-1] == ("--threads", "4")
    assert any("keep upstream connections alive" in note for note in plan.notes)


def test_nginx_gunicorn_refuses_a_socket_path_too_long() -> None:
    with pytest.raises(UsageError, match="--out"):
        get_stack("nginx-gunicorn").plan(context(run_dir=Path("/tmp/" + "d" * 120)))


def test_nginx_bjoern_plan_takes_one_port_per_instance_from_the_context() -> None:
    plan = get_stack("nginx-bjoern").plan(context(cpus=2))
    supervisor, nginx = plan.components
    assert supervisor.name == "supervisord"
    assert supervisor.argv == (
        PY,
        "-m",
        "supervisor.supervisord",
        "-c",
        f"{RUN}/supervisor/supervisord.conf",
        "-n",
    )
    assert supervisor.ready == (
        TcpEndpoint(host="127.0.0.1", port=9001),
        TcpEndpoint(host="127.0.0.1", port=9002),
    )
    supervisor_conf = supervisor.files[0].content
    for index, port in enumerate((9001, 9002)):
        assert f"[program:bjoern_{index:02d}]" in supervisor_conf
        assert (
            f"command={PY} -m serverbench.shims.bjoern_serve "
            f"serverbench.apps.builtin.flask_app:app 127.0.0.1 {port} --processes 1 --backlog 1024"
        ) in supervisor_conf
    assert "[program:bjoern_02]" not in supervisor_conf
    nginx_conf = nginx.files[0].content
    assert "server 127.0.0.1:9001 max_fails=0;" in nginx_conf
    assert "server 127.0.0.1:9002 max_fails=0;" in nginx_conf
    assert "keepalive 64;" in nginx_conf
    assert nginx.argv[-2:] == ("-g", "daemon off;")
    assert dict(plan.settings) == {
        "instances": 2,
        "bjoern_backlog": 1024,
        "nginx_workers": 2,
        "backlog": 4096,
        "upstream_keepalive": 64,
    }
    assert any("counted under supervisord" in note for note in plan.notes)


def test_nginx_bjoern_instances_setting() -> None:
    plan = get_stack("nginx-bjoern").plan(context(cpus=1, overrides={"instances": "3"}))
    assert len(plan.components[0].ready) == 3
    assert "server 127.0.0.1:9003 max_fails=0;" in plan.components[1].files[0].content


# --- for real ------------------------------------------------------------------------------


def real_context(tmp_path: Path, overrides: Mapping[str, str] | None = None) -> StackContext:
    return StackContext(
        interpreter=own(),
        app=FLASK,
        host="127.0.0.1",
        port=LOCAL.free_port(),
        run_dir=tmp_path / "run",
        ports=LOCAL.free_port,
        server_cpu_count=1,
        overrides=overrides or {},
    )


@pytest.mark.integration
def test_nginx_gunicorn_for_real(tmp_path: Path) -> None:
    ctx = real_context(tmp_path)
    with running_stack(get_stack("nginx-gunicorn"), ctx, cpus=SERVER_CPU) as running:
        assert [p.name for p in running.processes] == ["gunicorn", "nginx"]
        assert verify(running.front, FLASK, requests=5) is None
        tree = [psutil.Process(pid) for p in running.processes for pid in p.tree_pids()]
        for member in tree:
            assert member.cpu_affinity() == [int(SERVER_CPU)]
        assert (tmp_path / "run" / "gunicorn.sock").exists()
    assert_stopped(tree, [ctx.port])


@pytest.mark.integration
def test_nginx_bjoern_for_real_restarts_a_killed_instance(tmp_path: Path) -> None:
    ctx = real_context(tmp_path, {"instances": "2"})
    with running_stack(get_stack("nginx-bjoern"), ctx, cpus=SERVER_CPU) as running:
        assert [p.name for p in running.processes] == ["supervisord", "nginx"]
        ports = [
            endpoint.port
            for endpoint in running.plan.components[0].ready
            if isinstance(endpoint, TcpEndpoint)
        ]
        assert len(ports) == 2
        assert verify(running.front, FLASK, requests=5) is None
        supervisor = running.processes[0]
        instances = supervisor.descendants()
        # supervisord gives each instance its own process group
        assert {os.getpgid(p.pid) for p in instances} == {p.pid for p in instances}
        victim_port = ports[0]
        (victim_pid,) = listeners(victim_port)
        assert victim_pid in {p.pid for p in instances}
        os.kill(victim_pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            now = [pid for pid in listeners(victim_port) if pid not in (0, victim_pid)]
            if now:
                break
            time.sleep(0.1)
        (new_pid,) = now
        assert new_pid in supervisor.tree_pids()
        assert verify(running.front, FLASK, requests=5) is None
        tree = [psutil.Process(pid) for p in running.processes for pid in p.tree_pids()]
    assert_stopped(tree, [ctx.port, *ports])
