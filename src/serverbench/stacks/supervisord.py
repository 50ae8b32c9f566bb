"""supervisord as serverbench runs it: a generated config in the stack's folder, foreground.

supervisord (from PyPI) starts and restarts a topology's backend instances. Every file it
writes (log, pid, control socket, each instance's log) stays in the run folder. Instances
are stopped with SIGTERM sent to their whole process group: bjoern waits on SIGINT for as
long as keep-alive clients (nginx's upstream pool) hold connections.
"""

from __future__ import annotations

import getpass
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from serverbench.stacks.base import Component, GeneratedFile, TcpEndpoint


@dataclass(frozen=True, slots=True, kw_only=True)
class Program:
    """One supervised instance: its own [program:NAME] section, on its own port."""

    name: str
    argv: tuple[str, ...]
    port: int


def _ini(value: str) -> str:
    # supervisord expands %(name)s in values: a literal % must be doubled
    return value.replace("%", "%%")


def render_conf(folder: Path, programs: Sequence[Program], *, stop_wait_s: int = 5) -> str:
    here = _ini(str(folder))
    # supervisord logs CRIT when root runs it without user=; the same user keeps it quiet
    user = f"user={getpass.getuser()}\n" if os.geteuid() == 0 else ""
    sections = [
        f"""[unix_http_server]
file={here}/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
{user}logfile={here}/supervisord.log
pidfile={here}/supervisord.pid
childlogdir={here}
loglevel=info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{here}/supervisor.sock
"""
    ]
    for program in programs:
        sections.append(
            f"""[program:{program.name}]
command={_ini(shlex.join(program.argv))}
numprocs=1
autostart=true
autorestart=true
startsecs=1
stopsignal=TERM
stopwaitsecs={stop_wait_s}
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={here}/{program.name}.log
"""
        )
    return "\n".join(sections)


def supervisord_component(
    python: str, folder: Path, programs: Sequence[Program], host: str, env: dict[str, str]
) -> Component:
    """supervisord in the foreground; ready when every instance accepts connections."""
    conf = folder / "supervisord.conf"
    return Component(
        name="supervisord",
        argv=(python, "-m", "supervisor.supervisord", "-c", str(conf), "-n"),
        ready=tuple(TcpEndpoint(host=host, port=program.port) for program in programs),
        env=env,
        files=(GeneratedFile(path=conf, content=render_conf(folder, programs)),),
    )
