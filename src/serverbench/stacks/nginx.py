"""nginx as serverbench runs it: a generated config in the stack's folder, in the foreground.

Shared by every topology with nginx in it (`render_proxy_conf`: a reverse proxy to local
backends with upstream keep-alive), and by `nginx-static`, the reference ceiling: nginx
answering the seed's JSON by itself, no Python, on the server CPUs. Whatever a Python stack
reaches is read against it.
"""

from __future__ import annotations

import getpass
import os
import resource
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from serverbench.apps.registry import Interface
from serverbench.stacks.base import (
    Component,
    Endpoint,
    GeneratedFile,
    LaunchPlan,
    Setting,
    StackContext,
    TcpEndpoint,
    count,
    missing_tool_reason,
    resolve_settings,
    workers_per_cpu,
)
from serverbench.stacks.interpreter import Interpreter

NGINX = "/usr/sbin/nginx"


def nginx_binary() -> str:
    return NGINX if os.path.exists(NGINX) else "nginx"


def render_conf(
    *,
    workers: int,
    listen: TcpEndpoint,
    backlog: int,
    server_body: str,
    http_extra: str = "",
    worker_connections: int = 16384,
) -> str:
    # a root master would run its workers as "nobody", who cannot enter the owner-only run folder
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes {workers};
worker_rlimit_nofile {_nofile_limit(worker_connections * 2)};
pid logs/nginx.pid;
error_log logs/error.log warn;

events {{
    worker_connections {worker_connections};
    multi_accept on;
}}

http {{
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    keepalive_timeout 65;
    keepalive_requests 1000000;
{http_extra}
    server {{
        listen {listen} backlog={backlog};
{server_body}
    }}
}}
"""


def _nofile_limit(wanted: int) -> int:
    # above the hard limit nginx logs an alert at every start and keeps the old limit
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def render_upstream(name: str, servers: Sequence[Endpoint], keepalive: int) -> str:
    # max_fails=0: a local backend refusing one connection must not be marked dead for 10 s
    lines = "".join(f"        server {server} max_fails=0;\n" for server in servers)
    return f"""    upstream {name} {{
{lines}        keepalive {keepalive};
    }}
"""


def proxy_body(upstream: str) -> str:
    # HTTP/1.1 and an empty Connection header are what let nginx reuse upstream connections
    return f"""        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}"""


def render_proxy_conf(
    *,
    workers: int,
    listen: TcpEndpoint,
    backlog: int,
    upstream: str,
    servers: Sequence[Endpoint],
    keepalive: int,
) -> str:
    """nginx as a reverse proxy in front of local backends, keeping upstream connections open."""
    return render_conf(
        workers=workers,
        listen=listen,
        backlog=backlog,
        server_body=proxy_body(upstream),
        http_extra=render_upstream(upstream, servers, keepalive),
    )


def nginx_settings(*, keepalive_default: int, keepalive_source: str) -> tuple[Setting, ...]:
    """The settings of nginx in front of a topology's backends."""
    return (
        count(
            "nginx_workers",
            workers_per_cpu,
            "nginx worker processes",
            "nginx docs: worker_processes auto (one per core)",
        ),
        count(
            "backlog",
            4096,
            "nginx listen backlog",
            "serverbench: as nginx-static (nginx's Linux default 511 is below the load)",
        ),
        count(
            "upstream_keepalive",
            keepalive_default,
            "idle upstream connections each nginx worker keeps",
            keepalive_source,
        ),
    )


def nginx_unavailable_reason() -> str | None:
    return missing_tool_reason("nginx", "nginx") if not os.path.exists(NGINX) else None


def nginx_component(prefix: Path, conf: str, ready: TcpEndpoint) -> Component:
    return Component(
        name="nginx",
        argv=(
            nginx_binary(),
            "-p",
            f"{prefix}/",
            "-c",
            "nginx.conf",
            "-e",
            "logs/error.log",
            "-g",
            "daemon off;",
        ),
        ready=(ready,),
        files=(
            GeneratedFile(path=prefix / "nginx.conf", content=conf),
            GeneratedFile(path=prefix / "logs" / ".keep", content=""),
            GeneratedFile(path=prefix / "tmp" / ".keep", content=""),
        ),
    )


STATIC_BODY = """        location ~ ^/api/v2/(?<msisdn>[^/]+)$ {
            default_type application/json;
            return 200 '{"msisdn":"$msisdn","status":"ok"}\\n';
        }
        location / {
            default_type application/json;
            return 200 '{"status":"ok"}\\n';
        }"""


class NginxStatic:
    name: ClassVar[str] = "nginx-static"
    variant_of: ClassVar[str | None] = None
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "reference: nginx answers the seed's JSON itself (no Python)"
    model: ClassVar[str] = (
        "reference ceiling: nginx worker processes answer the seed's JSON from the config, with "
        "no Python; what the load generator and loopback allow on the server CPUs"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"wsgi", "asgi"})
    packages: ClassVar[tuple[str, ...]] = ()
    settings: ClassVar[tuple[Setting, ...]] = (
        count(
            "workers",
            workers_per_cpu,
            "nginx worker processes",
            "nginx docs: worker_processes auto (one per core)",
        ),
        count("backlog", 4096, "listen backlog", "serverbench"),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        return nginx_unavailable_reason()

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        prefix = ctx.run_dir / "nginx"
        conf = render_conf(
            workers=int(settings["workers"]),
            listen=ctx.front,
            backlog=int(settings["backlog"]),
            server_body=STATIC_BODY,
        )
        return LaunchPlan(
            components=(nginx_component(prefix, conf, ctx.front),),
            front=ctx.front,
            settings=settings,
            notes=("reference ceiling: answers the seed's JSON for /api/v2/<msisdn> itself",),
        )
