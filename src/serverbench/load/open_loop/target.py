"""The URL an open-loop run loads: parsed once, and the exact request bytes it sends."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from serverbench.errors import UsageError


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    host: str
    port: int
    host_header: str
    path: str  # with the query string

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UsageError(
                f"the open-loop engine loads plain http:// URLs, got {url!r}; "
                "give an http://host:port/path URL"
            )
        try:
            port = parts.port or 80
        except ValueError as exc:
            raise UsageError(f"bad port in {url!r} ({exc}); fix the URL") from exc
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(host=parts.hostname, port=port, host_header=parts.netloc, path=path)

    def request_bytes(self) -> bytes:
        """A GET with just a Host header, like wrk's default request."""
        return f"GET {self.path} HTTP/1.1\r\nHost: {self.host_header}\r\n\r\n".encode("latin-1")
