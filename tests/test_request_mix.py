"""Request mixes: parsing a profile's table, exact shares, and the Lua wrk runs."""

from __future__ import annotations

import pytest

from serverbench.errors import UsageError
from serverbench.load.mix import lua, parse_mix, slots


def test_slots_give_exact_shares_spread_evenly() -> None:
    mix = parse_mix({"/json": 80, "/db": 20}, where="profile x")
    order = slots(mix)
    assert order == ["/json", "/json", "/db", "/json", "/json"]  # 80:20 reduces to 4:1
    assert mix.describe() == "80 % /json, 20 % /db"


def test_three_paths() -> None:
    order = slots(parse_mix({"/a": 50, "/b": 30, "/c": 20}, where="p"))
    assert len(order) == 10
    assert (order.count("/a"), order.count("/b"), order.count("/c")) == (5, 3, 2)


def test_one_path_needs_no_lua() -> None:
    assert lua(parse_mix({"/db": 1}, where="p")) == ""


def test_lua_defines_request_over_the_slots() -> None:
    text = lua(parse_mix({"/json": 3, "/db?x=1": 1}, where="p"))
    assert 'local mix_paths = { "/json", "/json", "/db?x=1", "/json" }' in text
    assert "function request()" in text
    assert "function init(args)" in text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "table of path = weight"),
        ([("/a", 1)], "table of path = weight"),
        ({"a": 1}, "must start with '/'"),
        ({'/a"': 1}, "without quotes"),
        ({"/a": 0}, "1 or more"),
        ({"/a": 1.5}, "whole number"),
        ({"/a": 9999, "/b": 9998}, "slots"),
    ],
)
def test_bad_mixes_are_refused(value: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_mix(value, where="profile x")
