from pathlib import Path

import pytest

from serverbench.errors import UsageError
from serverbench.plan.profiles import (
    ProfileOverrides,
    load_profile_file,
    select_profiles,
)


def test_seed_profiles_are_the_seed_reports_exact_settings():
    moderate, high = select_profiles(["seed"], ProfileOverrides())
    assert (moderate.threads, moderate.connections, moderate.duration_s) == (12, 1000, 60)
    assert (high.threads, high.connections, high.duration_s) == (24, 8000, 120)


def test_default_is_the_quick_pair_with_the_seed_load_shapes():
    profiles = select_profiles(None, ProfileOverrides())
    assert [p.name for p in profiles] == ["quick-moderate", "quick-high"]
    assert [p.connections for p in profiles] == [1000, 8000]
    assert [p.threads for p in profiles] == [12, 24]


def test_overrides_apply_to_every_profile_and_duplicates_are_dropped():
    profiles = select_profiles(
        ["smoke", "smoke,quick-moderate"], ProfileOverrides(duration_s=3, connections=50)
    )
    assert [p.name for p in profiles] == ["smoke", "quick-moderate"]
    assert all(p.duration_s == 3 and p.connections == 50 for p in profiles)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (ProfileOverrides(connections=1), "connection per thread"),
        (ProfileOverrides(duration_s=0.5), "at least 1 s"),
        (ProfileOverrides(threads=0), "threads must be at least 1"),
        (ProfileOverrides(timeout_s=0), "timeout must be positive"),
    ],
)
def test_bad_overrides_are_refused(overrides, message):
    with pytest.raises(UsageError, match=message):
        select_profiles(["smoke"], overrides)


def test_unknown_profile_names_the_choices():
    with pytest.raises(UsageError, match="unknown profile 'nope'; use one of seed, quick"):
        select_profiles(["nope"], ProfileOverrides())


def test_profiles_from_toml(tmp_path: Path):
    config = tmp_path / "profiles.toml"
    config.write_text(
        '[profiles.mine]\nbase = "moderate"\nconnections = 2000\nduration_s = 30\n'
        "[profiles.tiny]\nthreads = 1\nconnections = 4\nduration_s = 1\n"
    )
    extra = load_profile_file(config)
    mine = extra["mine"]
    assert (mine.threads, mine.connections, mine.duration_s) == (12, 2000, 30.0)
    assert select_profiles(["tiny"], ProfileOverrides(), extra)[0].connections == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[profiles.x]\nconnectons = 5\n", "unknown key 'connectons'"),
        ("[profiles.x]\nconnections = 'many'\n", "must be a number"),
        ("[profiles.x]\nbase = 'nope'\n", "base 'nope'"),
        ("[profiles\n", "not valid TOML"),
        ("[profiles.x]\nthreads = 8\nconnections = 4\n", "connection per thread"),
    ],
)
def test_bad_toml_is_refused_with_what_to_do(tmp_path: Path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_profile_file(config)


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(UsageError, match="does not exist"):
        load_profile_file(tmp_path / "absent.toml")
