"""How many requests a stack can have waiting: the bound the I/O workloads are explained by."""

from __future__ import annotations

import pytest

from serverbench.report.waiting import waiting_capacity


@pytest.mark.parametrize(
    ("stack", "interface", "settings", "requests"),
    [
        ("gunicorn", "wsgi", {"workers": 3}, 3),
        ("gunicorn-gthread", "wsgi", {"workers": 1, "threads": 4}, 4),
        ("gunicorn-gevent", "wsgi", {"workers": 2, "worker_connections": 1000}, 2000),
        ("uvicorn", "wsgi", {"workers": 1}, 10),
        ("uvicorn", "asgi", {"workers": 1}, None),
        ("granian", "wsgi", {"workers": 2, "blocking_threads": 4}, 8),
        ("granian", "asgi", {"workers": 2, "blocking_threads": 4}, None),
        ("bjoern", "wsgi", {"processes": 1}, 1),
        ("waitress", "wsgi", {"threads": 4}, 4),
    ],
)
def test_capacity(
    stack: str, interface: str, settings: dict[str, int], requests: int | None
) -> None:
    waiting = waiting_capacity(stack, interface, settings)
    assert waiting is not None
    assert waiting.requests == requests


def test_littles_law_bound() -> None:
    waiting = waiting_capacity("gunicorn", "wsgi", {"workers": 3})
    assert waiting is not None
    assert waiting.ceiling_per_sec(0.010) == pytest.approx(300)
    loop = waiting_capacity("uvicorn", "asgi", {})
    assert loop is not None
    assert loop.ceiling_per_sec(0.010) is None


def test_unknown_stack() -> None:
    assert waiting_capacity("nginx-static", "wsgi", {}) is None
