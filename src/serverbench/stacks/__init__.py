"""The stack registry: name -> plugin class, explicit and greppable.

Adding a stack = one module under `serverbench.stacks` with a class following `base.Stack`,
plus one line here.
"""

from __future__ import annotations

import importlib

from serverbench.errors import UsageError
from serverbench.stacks.base import Stack

STACKS: dict[str, str] = {
    "gunicorn": "serverbench.stacks.gunicorn:Gunicorn",
    "uvicorn": "serverbench.stacks.uvicorn:Uvicorn",
    "bjoern": "serverbench.stacks.bjoern:Bjoern",
    "nginx-static": "serverbench.stacks.nginx:NginxStatic",
    "nginx-gunicorn": "serverbench.stacks.nginx_gunicorn:NginxGunicorn",
    "nginx-bjoern": "serverbench.stacks.nginx_bjoern:NginxBjoern",
    "granian": "serverbench.stacks.granian:Granian",
    "hypercorn": "serverbench.stacks.hypercorn:Hypercorn",
    "waitress": "serverbench.stacks.waitress:Waitress",
    "uwsgi": "serverbench.stacks.uwsgi:Uwsgi",
    "gunicorn-gthread": "serverbench.stacks.gunicorn_variants:GunicornGthread",
    "gunicorn-gevent": "serverbench.stacks.gunicorn_variants:GunicornGevent",
    "gunicorn-uvicorn": "serverbench.stacks.gunicorn_variants:GunicornUvicorn",
    "gunicorn-asgi": "serverbench.stacks.gunicorn_variants:GunicornAsgi",
}
SEED_STACKS: tuple[str, ...] = ("gunicorn", "uvicorn", "bjoern")
# the pip extra of serverbench that installs each stack's servers (pyproject.toml)
EXTRAS: dict[str, str] = {
    "gunicorn": "gunicorn",
    "uvicorn": "uvicorn",
    "bjoern": "bjoern",
    "nginx-gunicorn": "gunicorn",
    "nginx-bjoern": "bjoern",
    "granian": "granian",
    "hypercorn": "hypercorn",
    "waitress": "waitress",
    "uwsgi": "uwsgi",
    "gunicorn-gthread": "gunicorn",
    "gunicorn-gevent": "gevent",
    "gunicorn-uvicorn": "uvicorn-worker",
    "gunicorn-asgi": "uvicorn",
}


def get_stack(name: str) -> Stack:
    try:
        path = STACKS[name]
    except KeyError:
        raise UsageError(
            f"unknown stack {name!r}; `serverbench stacks` lists them ({', '.join(STACKS)})"
        ) from None
    module_name, _, class_name = path.partition(":")
    stack: Stack = getattr(importlib.import_module(module_name), class_name)()
    return stack


def all_stacks() -> list[Stack]:
    return [get_stack(name) for name in STACKS]
