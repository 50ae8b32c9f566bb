"""A request mix: several paths of one app with weights, sent by wrk in a fixed interleaving.

wrk sends one request over and over unless its Lua script defines `request()`. For a mix the
script builds, per thread, one formatted request per slot of a smooth weighted round robin
(weights 80/20 give 4 of one, then 1 of the other, spread evenly), and `request()` walks the
slots. The shares are exact, and a single path costs nothing: no `request()` is defined then.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from serverbench.errors import UsageError

# printable ASCII without the quote and backslash, so a path is a plain Lua string literal
_PATH = re.compile(r"^/[!#-\[\]-~]*$")
MAX_SLOTS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestMix:
    weights: tuple[tuple[str, int], ...]  # (path, weight), in the order given

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(path for path, _ in self.weights)

    def shares(self) -> dict[str, float]:
        """Each path's share of the requests, 0..1."""
        total = sum(weight for _, weight in self.weights)
        return {path: weight / total for path, weight in self.weights}

    def describe(self) -> str:
        """For reports: "80 % /api/v2/1234567890, 20 % /db"."""
        return ", ".join(f"{share * 100:.0f} % {path}" for path, share in self.shares().items())


def parse_mix(value: object, *, where: str) -> RequestMix:
    """A mix from a profile's `mix = { "/db" = 20, "/api/v2/1234567890" = 80 }`."""
    if not isinstance(value, Mapping) or not value:
        raise UsageError(
            f"{where}: mix must be a table of path = weight, for example "
            'mix = { "/api/v2/1234567890" = 80, "/db" = 20 }'
        )
    weights: list[tuple[str, int]] = []
    for path, weight in value.items():
        if not isinstance(path, str) or not _PATH.match(path):
            raise UsageError(
                f"{where}: mix path {path!r} must start with '/' and hold printable ASCII "
                "without quotes or backslashes"
            )
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise UsageError(f"{where}: mix weight of {path} must be a whole number of 1 or more")
        weights.append((path, weight))
    divisor = math.gcd(*(weight for _, weight in weights))
    if sum(weight for _, weight in weights) // divisor > MAX_SLOTS:
        raise UsageError(
            f"{where}: mix weights reduce to more than {MAX_SLOTS} slots; use smaller "
            "numbers, such as percentages"
        )
    return RequestMix(weights=tuple(weights))


def slots(mix: RequestMix) -> list[str]:
    """The interleaving (smooth weighted round robin), one path per slot, shares exact."""
    divisor = math.gcd(*(weight for _, weight in mix.weights))
    weights = [weight // divisor for _, weight in mix.weights]
    total = sum(weights)
    current = [0] * len(weights)
    order: list[str] = []
    for _ in range(total):
        for index, weight in enumerate(weights):
            current[index] += weight
        best = max(range(len(weights)), key=lambda index: current[index])
        current[best] -= total
        order.append(mix.paths[best])
    return order


def lua(mix: RequestMix) -> str:
    """Lua to append to wrk_json.lua: `init` formats the slots, `request` walks them."""
    if len(mix.weights) == 1:
        return ""
    paths = ", ".join(f'"{path}"' for path in slots(mix))
    return f"""
-- serverbench request mix: {mix.describe()}
local mix_paths = {{ {paths} }}
local mix_requests = {{}}
local mix_next = 0

function init(args)
  for slot = 1, #mix_paths do
    mix_requests[slot] = wrk.format(nil, mix_paths[slot])
  end
end

function request()
  mix_next = mix_next % #mix_requests + 1
  return mix_requests[mix_next]
end
"""
