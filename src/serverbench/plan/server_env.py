"""The environment a user gives the server processes (`--env KEY=VALUE`, `env` in the config),
and how it is recorded: values of keys that look like secrets, and passwords inside URLs, are
masked, so they are never written to results or reports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from serverbench.errors import UsageError

MASK = "***"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# substrings of a key name that say its value is a credential (SECRET_KEY, API_TOKEN, PGPASSWORD,
# AWS_SECRET_ACCESS_KEY, SENTRY_DSN, ...); a false positive only hides a harmless value
_SECRET_PARTS: tuple[str, ...] = (
    "PASS",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "DSN",
    "COOKIE",
)
_SECRET_PARTS += ("SESSION", "SIGNATURE", "SALT", "PWD")
# keys that contain KEY but are not secrets, and that a reader needs to see
_NOT_SECRET = frozenset({"DJANGO_SETTINGS_MODULE", "KEYBOARD"})


def parse_env_pairs(pairs: Sequence[str], *, source: str = "--env") -> dict[str, str]:
    """`KEY=VALUE` items, or `KEY` alone to pass on this shell's own value of KEY."""
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        check_key(key, source=f"{source} {pair!r}")
        if not sep:
            if key not in os.environ:
                raise UsageError(
                    f"{source} {key}: {key} is not set in this shell; give a value with "
                    f"{source} {key}=VALUE or export it first"
                )
            value = os.environ[key]
        env[key] = value
    return env


def check_key(key: str, *, source: str) -> None:
    if not _KEY.match(key):
        raise UsageError(
            f"{source}: {key!r} is not an environment variable name; use letters, digits and "
            "underscores, for example DJANGO_SETTINGS_MODULE=mysite.settings"
        )


def is_secret_key(key: str) -> bool:
    upper = key.upper()
    return upper not in _NOT_SECRET and any(part in upper for part in _SECRET_PARTS)


def mask_value(key: str, value: str) -> str:
    """The value as it may be recorded: hidden for a secret key, a URL without its password."""
    if is_secret_key(key):
        return MASK
    return _mask_url_password(value)


def _mask_url_password(value: str) -> str:
    if "://" not in value or "@" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return MASK  # not a URL we can read; it may still hold a password
    if not password:
        return value
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def masked(env: Mapping[str, str]) -> dict[str, str]:
    return {key: mask_value(key, value) for key, value in env.items()}


def unmasked(recorded: Mapping[str, str]) -> dict[str, str]:
    """A recorded environment made whole again to resume a run: masked values from this shell."""
    env = {}
    for key, value in recorded.items():
        if value == MASK or (MASK in value and "://" in value):
            if key not in os.environ:
                raise UsageError(
                    f"the run's environment had {key}, whose value is not recorded (a secret); "
                    f"export {key} and resume again"
                )
            value = os.environ[key]
        env[key] = value
    return env
