"""nginx in front of N bjoern instances on their own ports, run and restarted by supervisord."""

from __future__ import annotations

from typing import ClassVar

from serverbench.apps.registry import Interface
from serverbench.stacks.base import (
    LaunchPlan,
    Setting,
    StackContext,
    TcpEndpoint,
    app_env,
    count,
    resolve_settings,
    workers_per_cpu,
)
from serverbench.stacks.bjoern import INSTALL_HINT, bjoern_argv
from serverbench.stacks.interpreter import Interpreter
from serverbench.stacks.nginx import (
    nginx_component,
    nginx_settings,
    nginx_unavailable_reason,
    render_proxy_conf,
)
from serverbench.stacks.supervisord import Program, supervisord_component


class NginxBjoern:
    name: ClassVar[str] = "nginx-bjoern"
    variant_of: ClassVar[str | None] = "bjoern"
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "nginx reverse proxy -> N bjoern instances under supervisord"
    model: ClassVar[str] = (
        "reverse proxy: nginx worker processes hold the client connections and spread requests "
        "over N single-threaded bjoern processes, each on its own port, through a pool of "
        "kept-alive upstream connections; supervisord starts the instances and restarts any "
        "that dies. Resource figures of the instances are counted under supervisord"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("bjoern", "supervisor")
    settings: ClassVar[tuple[Setting, ...]] = (
        count(
            "instances",
            workers_per_cpu,
            "bjoern processes, each on its own port",
            "bjoern is single-threaded: one process per core",
        ),
        count(
            "bjoern_backlog", 1024, "listen backlog of each bjoern instance", "bjoern default 1024"
        ),
        *nginx_settings(
            keepalive_default=64,
            keepalive_source="the seed report's measured setup (keepalive 64 to 2 bjoerns)",
        ),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        if python.missing("bjoern"):
            return (
                python.missing_module_reason("bjoern", "bjoern") + f" (it compiles: {INSTALL_HINT})"
            )
        if python.missing("supervisor"):
            return python.missing_module_reason("supervisor", "supervisor")
        return nginx_unavailable_reason()

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        ports = [ctx.ports() for _ in range(int(settings["instances"]))]
        programs = [
            Program(
                name=f"bjoern_{index:02d}",
                argv=bjoern_argv(ctx, port, 1, int(settings["bjoern_backlog"])),
                port=port,
            )
            for index, port in enumerate(ports)
        ]
        conf = render_proxy_conf(
            workers=int(settings["nginx_workers"]),
            listen=ctx.front,
            backlog=int(settings["backlog"]),
            upstream="bjoern",
            servers=[TcpEndpoint(host=ctx.host, port=port) for port in ports],
            keepalive=int(settings["upstream_keepalive"]),
        )
        supervisor = supervisord_component(
            ctx.python, (ctx.run_dir / "supervisor").absolute(), programs, ctx.host, app_env(ctx)
        )
        return LaunchPlan(
            components=(supervisor, nginx_component(ctx.run_dir / "nginx", conf, ctx.front)),
            front=ctx.front,
            settings=settings,
            notes=(
                f"bjoern instances on ports {', '.join(map(str, ports))}, run by supervisord "
                "(autorestart, SIGTERM to each instance's group)",
                "the instances' CPU and memory are counted under supervisord",
            ),
        )
