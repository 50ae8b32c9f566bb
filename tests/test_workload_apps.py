"""The workloads as apps: names, shorthand, parameters, services, profiles with a mix."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from serverbench.apps.registry import BUILTIN_APPS, UserAppOptions, expand_app_names, resolve_app
from serverbench.errors import AppError, UsageError
from serverbench.plan.model import app_from_record, app_record, reference_app
from serverbench.plan.profiles import load_profile_file
from serverbench.plan.selection import check_builtin_modules
from serverbench.run.runner import io_bound_reason
from serverbench.stacks.interpreter import Interpreter


def test_every_workload_in_both_variants() -> None:
    db = BUILTIN_APPS["db-flask"]
    assert db.interface == "wsgi"
    assert db.services == ("postgres",)
    assert db.load_path == "/db"
    assert BUILTIN_APPS["db-fastapi"].interface == "asgi"
    assert BUILTIN_APPS["io-wait-fastapi"].services == ()
    assert BUILTIN_APPS["json-flask"].load_path == "/api/v2/1234567890"
    assert BUILTIN_APPS["queries-flask"].load_path == "/queries?queries=20"


def test_a_workload_name_alone_means_both_variants() -> None:
    assert expand_app_names(["db", "io-wait-flask,seed-flask"]) == [
        "db-flask",
        "db-fastapi",
        "io-wait-flask",
        "seed-flask",
    ]
    assert expand_app_names(["my.module:app"]) == ["my.module:app"]


def test_path_changes_a_workload_parameter_only() -> None:
    app = resolve_app("io-wait-fastapi", UserAppOptions(path="/io-wait?ms=50"))
    assert app.load_path == "/io-wait?ms=50"
    with pytest.raises(UsageError, match="does not fit the built-in app db-flask"):
        resolve_app("db-flask", UserAppOptions(path="/io-wait?ms=50"))


def test_your_app_can_ask_for_postgres(tmp_path: Path) -> None:
    app = resolve_app("mine:app", UserAppOptions(app_dir=str(tmp_path), services=("postgres",)))
    assert app.services == ("postgres",)
    assert app_from_record(app_record(app)) == app
    with pytest.raises(UsageError, match="unknown service 'redis'"):
        resolve_app("mine:app", UserAppOptions(services=("redis",)))


def test_waiting_apps_have_no_in_process_limit() -> None:
    assert io_bound_reason(BUILTIN_APPS["io-wait-flask"]) is not None
    assert io_bound_reason(BUILTIN_APPS["db-fastapi"]) is not None
    assert io_bound_reason(BUILTIN_APPS["payload-flask"]) is None
    assert io_bound_reason(BUILTIN_APPS["seed-flask"]) is None


def test_the_ceiling_is_measured_with_the_same_work() -> None:
    assert reference_app([BUILTIN_APPS["db-flask"]]).name == "seed-flask"
    assert reference_app([BUILTIN_APPS["db-flask"], BUILTIN_APPS["json-fastapi"]]).name == (
        "json-fastapi"
    )


def test_a_db_app_records_its_pool_size_with_its_source() -> None:
    (setting,) = app_record(BUILTIN_APPS["db-fastapi"]).settings
    assert (setting.name, setting.value) == ("db_pool_size", 4)
    assert "psycopg-pool default" in setting.source
    assert app_record(BUILTIN_APPS["io-wait-flask"]).settings == ()


def test_profile_with_a_mix_round_trips(tmp_path: Path) -> None:
    config = tmp_path / "mix.toml"
    config.write_text('[profiles.m]\nbase = "smoke"\nmix = { "/api/v2/1" = 80, "/db" = 20 }\n')
    profile = load_profile_file(config)["m"]
    assert profile.mix == (("/api/v2/1", 80), ("/db", 20))
    assert profile.request_mix is not None
    assert profile.request_mix.describe() == "80 % /api/v2/1, 20 % /db"


def test_bad_mix_in_a_profile_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "mix.toml"
    config.write_text('[profiles.m]\nmix = { "db" = 20 }\n')
    with pytest.raises(UsageError, match=r"\[profiles.m\]: mix path 'db' must start with '/'"):
        load_profile_file(config)


@pytest.mark.parametrize("name", ["payload-flask", "payload-fastapi"])
def test_in_process_cost_calls_the_path_with_its_query(name: str) -> None:
    from serverbench.apps.importer import measure_in_process_cost

    cost = measure_in_process_cost(BUILTIN_APPS[name], duration_s=0.2)
    assert cost.status == 200  # /payload?bytes=1024: the query is not part of the path


def test_a_builtin_app_whose_driver_is_missing_is_refused_with_the_extra_to_install() -> None:
    python = Interpreter(
        executable="/venv/bin/python",
        version="3.11.7",
        prefix="/venv",
        distributions={},
        modules=frozenset({"flask", "fastapi"}),
        own=False,
    )
    with pytest.raises(AppError) as refused:
        check_builtin_modules(BUILTIN_APPS["db-flask"], python)
    message = str(refused.value)
    assert "psycopg is not installed in /venv" in message
    assert "/venv/bin/python -m pip install 'serverbench[workloads]'" in message
    # io-wait needs no database driver; the seed app needs only its framework
    check_builtin_modules(BUILTIN_APPS["io-wait-flask"], python)
    check_builtin_modules(BUILTIN_APPS["seed-fastapi"], python)
    with pytest.raises(AppError, match=r"serverbench\[seed\]"):
        check_builtin_modules(BUILTIN_APPS["seed-flask"], replace(python, modules=frozenset()))
