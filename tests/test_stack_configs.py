"""Pure tests of the generated nginx and supervisord configs."""

from __future__ import annotations

import getpass
import os
import resource
from pathlib import Path

import pytest

from serverbench.stacks import nginx, supervisord
from serverbench.stacks.base import TcpEndpoint, UnixEndpoint
from serverbench.stacks.nginx import render_proxy_conf
from serverbench.stacks.supervisord import Program, supervisord_component

FRONT = TcpEndpoint(host="127.0.0.1", port=8123)
BACKENDS = (TcpEndpoint(host="127.0.0.1", port=9001), TcpEndpoint(host="127.0.0.1", port=9002))


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def proxy_conf(servers: tuple[TcpEndpoint | UnixEndpoint, ...] = BACKENDS) -> str:
    return render_proxy_conf(
        workers=2, listen=FRONT, backlog=4096, upstream="pool", servers=servers, keepalive=64
    )


@pytest.mark.parametrize("uid", [0, 1000])
def test_proxy_conf_has_upstream_keepalive_and_no_access_log(
    monkeypatch: pytest.MonkeyPatch, uid: int
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: uid)
    monkeypatch.setattr(getpass, "getuser", lambda: "tester")
    conf = lines(proxy_conf())
    for line in (
        "worker_processes 2;",
        "access_log off;",
        "upstream pool {",
        "server 127.0.0.1:9001 max_fails=0;",
        "server 127.0.0.1:9002 max_fails=0;",
        "keepalive 64;",
        "listen 127.0.0.1:8123 backlog=4096;",
        "proxy_pass http://pool;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
    ):
        assert line in conf, line
    # the upstream block comes before the server that uses it, and holds both backends only
    upstream = conf.index("upstream pool {")
    assert conf[upstream + 1 : upstream + 4] == [
        "server 127.0.0.1:9001 max_fails=0;",
        "server 127.0.0.1:9002 max_fails=0;",
        "keepalive 64;",
    ]
    assert ("user tester;" in conf) == (uid == 0)
    assert not [line for line in conf if line.startswith("user") and uid != 0]


def test_proxy_conf_to_a_unix_socket() -> None:
    conf = lines(proxy_conf((UnixEndpoint(path="/run/x/gunicorn.sock"),)))
    assert "server unix:/run/x/gunicorn.sock max_fails=0;" in conf


def test_static_conf_still_renders_without_upstream() -> None:
    conf = nginx.render_conf(workers=1, listen=FRONT, backlog=128, server_body=nginx.STATIC_BODY)
    assert "upstream" not in conf
    assert "listen 127.0.0.1:8123 backlog=128;" in lines(conf)


PROGRAMS = (
    Program(name="bjoern_00", argv=("/venv/bin/python", "-m", "srv", "9001"), port=9001),
    Program(name="bjoern_01", argv=("/venv/bin/python", "-m", "srv", "9002"), port=9002),
)


def sections(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current = ""
    for line in lines(text):
        if line.startswith("["):
            current = line.strip("[]")
            found[current] = []
        elif line:
            found[current].append(line)
    return found


@pytest.mark.parametrize("uid", [0, 1000])
def test_supervisord_conf(monkeypatch: pytest.MonkeyPatch, uid: int) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: uid)
    monkeypatch.setattr(getpass, "getuser", lambda: "tester")
    conf = sections(supervisord.render_conf(Path("/run/sb/supervisor"), PROGRAMS))
    assert conf["unix_http_server"] == ["file=/run/sb/supervisor/supervisor.sock", "chmod=0700"]
    main = conf["supervisord"]
    assert "nodaemon=true" in main
    assert "logfile=/run/sb/supervisor/supervisord.log" in main
    assert "pidfile=/run/sb/supervisor/supervisord.pid" in main
    assert "childlogdir=/run/sb/supervisor" in main
    assert ("user=tester" in main) == (uid == 0)
    assert conf["supervisorctl"] == ["serverurl=unix:///run/sb/supervisor/supervisor.sock"]
    for program in PROGRAMS:
        section = conf[f"program:{program.name}"]
        assert f"command=/venv/bin/python -m srv {program.port}" in section
        for line in (
            "numprocs=1",
            "autostart=true",
            "autorestart=true",
            "stopsignal=TERM",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile=/run/sb/supervisor/{program.name}.log",
        ):
            assert line in section, (program.name, line)


def test_supervisord_conf_escapes_percent_and_quotes_spaces() -> None:
    program = Program(name="p", argv=("/my dir/python", "50%"), port=1)
    conf = supervisord.render_conf(Path("/run/100%"), (program,))
    assert "command='/my dir/python' 50%%" in lines(conf)
    assert "file=/run/100%%/supervisor.sock" in lines(conf)


def test_supervisord_component_runs_in_the_foreground_and_waits_for_every_instance() -> None:
    component = supervisord_component(
        "/venv/bin/python", Path("/run/sb/supervisor"), PROGRAMS, "127.0.0.1", {"A": "1"}
    )
    assert component.name == "supervisord"
    assert component.argv == (
        "/venv/bin/python",
        "-m",
        "supervisor.supervisord",
        "-c",
        "/run/sb/supervisor/supervisord.conf",
        "-n",
    )
    assert component.ready == BACKENDS
    assert dict(component.env) == {"A": "1"}
    (conf,) = component.files
    assert conf.path == Path("/run/sb/supervisor/supervisord.conf")
    assert "[program:bjoern_01]" in conf.content


@pytest.mark.parametrize(
    ("hard", "expected"), [(5000, 5000), (100_000, 32768), (resource.RLIM_INFINITY, 32768)]
)
def test_nginx_file_limit_stays_within_the_hard_limit(
    monkeypatch: pytest.MonkeyPatch, hard: int, expected: int
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, hard))
    conf = lines(proxy_conf())
    assert f"worker_rlimit_nofile {expected};" in conf
