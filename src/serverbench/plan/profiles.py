"""Load profiles: the shape and length of the load wrk applies, and how often it is repeated.

`moderate` and `high` are the seed report's exact settings; `quick-*` keep those two load
shapes with durations that let the default run finish in about five minutes on two cores;
`smoke` is for tests. A TOML file can define more (see README).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from serverbench.errors import UsageError
from serverbench.load.mix import RequestMix, parse_mix
from serverbench.load.open_loop.schedule import Arrivals


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    name: str
    threads: int
    connections: int
    duration_s: float
    warmup_s: float
    timeout_s: float = 2.0  # wrk's default, as in the seed report
    primer_s: float = 1.0  # a short low-concurrency run before the warm-up, discarded
    description: str = ""
    # open loop (the open-loop engine): requests offered per second; None: wrk's closed loop
    rate_per_s: float | None = None
    arrivals: Arrivals = "constant"  # open loop: evenly spaced or Poisson arrivals
    # open loop at this share of the stack's closed-loop peak: the good responses/s the
    # `peak_profile` measured for the same stack and app in the same round, just before
    rate_share: float | None = None
    peak_profile: str | None = None

    @property
    def open_loop(self) -> bool:
        return self.rate_per_s is not None or self.rate_share is not None

    # several paths of the app with weights, sent in a fixed interleaving (load.mix); empty:
    # the app's own load path only
    mix: tuple[tuple[str, int], ...] = ()

    @property
    def request_mix(self) -> RequestMix | None:
        return RequestMix(weights=self.mix) if self.mix else None


PROFILES: dict[str, Profile] = {
    "moderate": Profile(
        name="moderate",
        threads=12,
        connections=1000,
        duration_s=60,
        warmup_s=10,
        description="the seed report's moderate load: 12 threads, 1000 connections, 60 s",
    ),
    "high": Profile(
        name="high",
        threads=24,
        connections=8000,
        duration_s=120,
        warmup_s=10,
        description="the seed report's high load: 24 threads, 8000 connections, 120 s",
    ),
    "quick-moderate": Profile(
        name="quick-moderate",
        threads=12,
        connections=1000,
        duration_s=5,
        warmup_s=2,
        description="the moderate load shape, short",
    ),
    "quick-high": Profile(
        name="quick-high",
        threads=24,
        connections=8000,
        duration_s=5,
        warmup_s=2,
        description="the high load shape, short",
    ),
    "smoke": Profile(
        name="smoke",
        threads=2,
        connections=20,
        duration_s=1,
        warmup_s=1,
        primer_s=0,
        description="a few seconds, for tests",
    ),
}

PROFILE_SETS: dict[str, tuple[str, ...]] = {
    "seed": ("moderate", "high"),
    "quick": ("quick-moderate", "quick-high"),
}
DEFAULT_PROFILES: tuple[str, ...] = PROFILE_SETS["quick"]
DEFAULT_REPEATS = 3


def validate(profile: Profile) -> Profile:
    where = f"profile {profile.name}"
    if profile.threads < 1:
        raise UsageError(f"{where}: threads must be at least 1")
    if profile.connections < profile.threads:
        raise UsageError(
            f"{where}: {profile.connections} connections for {profile.threads} threads; "
            "wrk needs at least one connection per thread"
        )
    if profile.duration_s < 1:
        raise UsageError(f"{where}: duration must be at least 1 s (wrk counts whole seconds)")
    if profile.warmup_s < 0 or profile.primer_s < 0:
        raise UsageError(f"{where}: warm-up and primer cannot be negative")
    if profile.timeout_s <= 0:
        raise UsageError(f"{where}: timeout must be positive")
    if profile.rate_per_s is not None and not profile.rate_per_s > 0:
        raise UsageError(f"{where}: the offered rate must be a positive number of requests/s")
    if profile.rate_share is not None and (
        profile.rate_per_s is not None or not profile.peak_profile
    ):
        raise UsageError(f"{where}: a share of the peak needs the peak's profile, and no rate")
    if profile.mix and profile.open_loop:
        raise UsageError(
            f"{where}: a request mix is sent by wrk's closed loop only; drop the mix or the "
            "offered rate (--rate)"
        )
    return profile


def at_rates(
    profiles: Sequence[Profile], rates: Sequence[float], arrivals: Arrivals = "constant"
) -> list[Profile]:
    """Each profile once per offered rate, for the open-loop engine: `quick-moderate` at
    2000 req/s becomes `quick-moderate@2000rps` (the shape's connections bound the pool;
    Poisson arrivals add `-poisson` to the name)."""
    suffix = "" if arrivals == "constant" else f"-{arrivals}"
    return [
        validate(
            replace(
                profile,
                name=f"{profile.name}@{rate:g}rps{suffix}",
                rate_per_s=rate,
                arrivals=arrivals,
            )
        )
        for profile in profiles
        for rate in rates
    ]


def at_shares(
    profiles: Sequence[Profile], shares: Sequence[float], arrivals: Arrivals = "constant"
) -> list[Profile]:
    """Each profile closed-loop (wrk: the stack's peak), then once per share of that peak:
    `quick-moderate` at 50 % becomes `quick-moderate@50%`, resolved per stack and round."""
    suffix = "" if arrivals == "constant" else f"-{arrivals}"
    return [
        item
        for profile in profiles
        for item in (
            profile,
            *(
                validate(
                    replace(
                        profile,
                        name=f"{profile.name}@{share * 100:g}%{suffix}",
                        rate_share=share,
                        peak_profile=profile.name,
                        arrivals=arrivals,
                    )
                )
                for share in shares
            ),
        )
    ]


def load_profile_file(path: Path) -> dict[str, Profile]:
    """Profiles from a TOML file: one `[profiles.NAME]` table each; unset fields come from `base`."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"config file {path} is not valid TOML: {error}") from None
    tables = data.get("profiles", {})
    if not isinstance(tables, dict):
        raise UsageError(f"{path}: [profiles] must be a table of tables, e.g. [profiles.mine]")
    return profiles_from_tables(tables, path)


def profiles_from_tables(tables: Mapping[str, Any], source: object) -> dict[str, Profile]:
    """Profiles from `[profiles.NAME]` tables (of a TOML file or the project's configuration)."""
    return {name: _profile_from_table(name, table, source) for name, table in tables.items()}


_FIELDS = {"threads": int, "connections": int, "duration_s": float, "warmup_s": float}
_FIELDS |= {"timeout_s": float, "primer_s": float, "description": str}


def _profile_from_table(name: str, table: Any, path: object) -> Profile:
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [profiles.{name}] must be a table")
    base_name = table.get("base", "quick-moderate")
    if base_name not in PROFILES:
        raise UsageError(f"{path}: [profiles.{name}] base {base_name!r} is not a built-in profile")
    fields: dict[str, Any] = {}
    for key, value in table.items():
        if key == "base":
            continue
        if key == "mix":
            fields["mix"] = parse_mix(value, where=f"{path}: [profiles.{name}]").weights
            continue
        if key not in _FIELDS:
            raise UsageError(
                f"{path}: [profiles.{name}] has unknown key {key!r}; known: base, "
                f"{', '.join(_FIELDS)}, mix"
            )
        kind = _FIELDS[key]
        if kind is str:
            fields[key] = str(value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"{path}: [profiles.{name}] {key} must be a number")
        else:
            fields[key] = kind(value)
    return validate(replace(PROFILES[base_name], name=name, **fields))


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileOverrides:
    duration_s: float | None = None
    connections: int | None = None
    threads: int | None = None
    warmup_s: float | None = None
    timeout_s: float | None = None


def select_profiles(
    names: Sequence[str] | None,
    overrides: ProfileOverrides,
    extra: Mapping[str, Profile] | None = None,
) -> list[Profile]:
    known = {**PROFILES, **(extra or {})}
    wanted: list[str] = []
    for name in names or DEFAULT_PROFILES:
        for part in name.split(","):
            expanded = PROFILE_SETS.get(part, (part,))
            wanted.extend(item for item in expanded if item not in wanted)
    profiles = []
    for name in wanted:
        if name not in known:
            choices = ", ".join([*PROFILE_SETS, *known])
            raise UsageError(
                f"unknown profile {name!r}; use one of {choices} or define it in --config"
            )
        changes = {k: v for k, v in asdict(overrides).items() if v is not None}
        profiles.append(validate(replace(known[name], **changes)))
    return profiles
