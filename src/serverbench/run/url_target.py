"""A server the user runs, named by `run --url`: checked to be on loopback, loaded, never started.

serverbench sends load only to servers it started on loopback, or to a URL the user gave. A
URL whose host is not loopback (127.0.0.0/8, ::1, localhost) is refused unless the user says
--allow-remote, so a typo cannot turn the tool on someone else's host. The decision reads the
literal host only: names other than localhost are never resolved, they are refused. localhost
is resolved to load it: every loopback address it names is tried, and 127.0.0.1 and ::1 too
(localhost is loopback by definition, RFC 6761, whatever /etc/hosts lists), and the first that
accepts a connection is the one verified and loaded.

The target is served to the runner as a `RunningStack` with no processes: the runner loads
and verifies it like its own stacks, and has nothing to watch or stop.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass

from serverbench.apps.registry import App, ExpectedResponse
from serverbench.errors import UsageError
from serverbench.plan.model import EXTERNAL_STACK
from serverbench.run.lifecycle import RunningStack
from serverbench.run.verify import accepts_connection
from serverbench.stacks.base import LaunchPlan, TcpEndpoint

EXTERNAL_NOTE = "a server run outside serverbench: loaded and verified, not started or monitored"


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetUrl:
    url: str  # as the user gave it
    host: str  # an address or localhost; IPv6 without brackets (the endpoint adds them)
    port: int
    path: str  # path and query, "/" at least; "{msisdn}" is filled in as in --path

    @property
    def front(self) -> TcpEndpoint:
        return TcpEndpoint(host=self.host, port=self.port)


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP literals; other names are not resolved."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_target_url(url: str, *, allow_remote: bool) -> TargetUrl:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        raise UsageError(
            f"--url {url!r}: only http:// URLs can be measured; "
            "give one such as http://127.0.0.1:8000/health"
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise UsageError(
            f"--url {url!r}: {error}; give one such as http://127.0.0.1:8000/"
        ) from None
    if not host:
        raise UsageError(f"--url {url!r} has no host; give one such as http://127.0.0.1:8000/")
    if not allow_remote and not is_loopback_host(host):
        raise UsageError(
            f"--url {url!r} is not on this machine's loopback (127.0.0.0/8, ::1, localhost); "
            "serverbench loads only servers on this machine unless you add --allow-remote, "
            "and then only servers you are allowed to load"
        )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return TargetUrl(url=url, host=_loopback_address(host, port or 80), port=port or 80, path=path)


def _loopback_address(host: str, port: int) -> str:
    """localhost as the loopback address that answers on port (the first one if none does)."""
    if host.lower().rstrip(".") != "localhost":
        return host
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        found = []
    resolved = [str(info[4][0]) for info in found]
    addresses = [a for a in resolved if ipaddress.ip_address(a).is_loopback]
    addresses += [a for a in ("127.0.0.1", "::1") if a not in addresses]
    for address in addresses:
        if accepts_connection(TcpEndpoint(host=address, port=port), timeout_s=0.5):
            return address
    return addresses[0]


def target_app(target: TargetUrl, expected: ExpectedResponse) -> App:
    """The app the runner verifies and loads: whatever answers at the URL's path."""
    return App(
        name=target.url,
        import_string="",  # nothing to import: the server is the user's
        interface="wsgi",  # unused for an external target; the document records "http"
        path_template=target.path,
        expected=expected,
    )


def target_stack(target: TargetUrl) -> RunningStack:
    plan = LaunchPlan(components=(), front=target.front, settings={}, notes=(EXTERNAL_NOTE,))
    return RunningStack(name=EXTERNAL_STACK, plan=plan)
