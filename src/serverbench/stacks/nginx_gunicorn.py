"""nginx in front of gunicorn on a unix socket: the seed report's reverse-proxy topology."""

from __future__ import annotations

from typing import ClassVar

from serverbench.apps.registry import Interface
from serverbench.stacks.base import (
    Component,
    LaunchPlan,
    Setting,
    StackContext,
    app_env,
    backlog_default,
    count,
    resolve_settings,
    unix_socket,
)
from serverbench.stacks.gunicorn import (
    DOCS,
    KEEP_ALIVE,
    gunicorn_argv,
    gunicorn_unavailable_reason,
    sync_workers_default,
)
from serverbench.stacks.interpreter import Interpreter
from serverbench.stacks.nginx import (
    nginx_component,
    nginx_settings,
    nginx_unavailable_reason,
    render_proxy_conf,
)


class NginxGunicorn:
    name: ClassVar[str] = "nginx-gunicorn"
    variant_of: ClassVar[str | None] = "gunicorn"
    keeps_alive: ClassVar[bool] = True
    summary: ClassVar[str] = "nginx reverse proxy -> gunicorn sync workers on a unix socket"
    model: ClassVar[str] = (
        "reverse proxy: nginx worker processes hold the client keep-alive connections and "
        "forward each request over a unix socket to gunicorn, whose pre-forked sync workers "
        "handle one request at a time and close the upstream connection after each"
    )
    interfaces: ClassVar[frozenset[Interface]] = frozenset({"wsgi"})
    packages: ClassVar[tuple[str, ...]] = ("gunicorn",)
    settings: ClassVar[tuple[Setting, ...]] = (
        count(
            "workers",
            sync_workers_default,
            "gunicorn worker processes",
            f"gunicorn docs: (2 x num_cores) + 1 ({DOCS})",
        ),
        count(
            "threads",
            1,
            "threads per gunicorn worker (above 1 gunicorn switches to the gthread worker)",
            "gunicorn default (sync worker; gunicorn docs: behind a buffering proxy)",
        ),
        count(
            "gunicorn_backlog", backlog_default, "gunicorn listen backlog", "gunicorn default 2048"
        ),
        KEEP_ALIVE,
        *nginx_settings(
            keepalive_default=16,
            keepalive_source=(
                "nginx docs example (keepalive 16); the sync worker closes every upstream "
                "connection, so it only takes effect with threads > 1"
            ),
        ),
    )

    def unavailable_reason(self, python: Interpreter) -> str | None:
        return nginx_unavailable_reason() or gunicorn_unavailable_reason(python)

    def plan(self, ctx: StackContext) -> LaunchPlan:
        settings = resolve_settings(self, ctx)
        sock = unix_socket(ctx, "gunicorn.sock")
        gunicorn_settings = {**settings, "backlog": settings["gunicorn_backlog"]}
        argv = gunicorn_argv(ctx, gunicorn_settings, str(sock))
        argv += ["--threads", str(settings["threads"]), ctx.app.import_string]
        conf = render_proxy_conf(
            workers=int(settings["nginx_workers"]),
            listen=ctx.front,
            backlog=int(settings["backlog"]),
            upstream="gunicorn",
            servers=(sock,),
            keepalive=int(settings["upstream_keepalive"]),
        )
        backend = Component(name="gunicorn", argv=tuple(argv), ready=(sock,), env=app_env(ctx))
        sync = settings["threads"] == 1
        return LaunchPlan(
            components=(backend, nginx_component(ctx.run_dir / "nginx", conf, ctx.front)),
            front=ctx.front,
            settings=settings,
            notes=(
                f"gunicorn listens on {sock}; nginx proxies to it with upstream keepalive "
                f"{settings['upstream_keepalive']}",
                "gunicorn's sync worker answers Connection: close, so nginx opens a new "
                "upstream connection per request (upstream keep-alive unused)"
                if sync
                else "gthread workers keep upstream connections alive",
            ),
        )
