"""The services an app can ask for, by name (`--service postgres`)."""

from __future__ import annotations

from serverbench.errors import UsageError
from serverbench.services.base import Service
from serverbench.services.postgres import Postgres

SERVICE_NAMES = ("postgres",)


def get_service(name: str) -> Service:
    if name == "postgres":
        return Postgres()
    raise UsageError(f"unknown service {name!r}; use one of {', '.join(SERVICE_NAMES)}")
