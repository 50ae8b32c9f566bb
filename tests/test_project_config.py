"""The project's [tool.serverbench] / serverbench.toml and the server environment's masking."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import msgspec
import pytest

from serverbench.cli import build_parser
from serverbench.commands.capacity import capacity_plan, new_capacity_run_plan
from serverbench.commands.options import CapacityTargets, capacity_targets
from serverbench.commands.project import project_config, resolve
from serverbench.commands.run import new_run_plan
from serverbench.errors import UsageError
from serverbench.plan.capacity import CapacityPlan
from serverbench.plan.config import AppEntry, find_config, load_config
from serverbench.plan.model import plan_record
from serverbench.plan.selection import select_stacks
from serverbench.plan.server_env import MASK, mask_value, masked, parse_env_pairs, unmasked
from serverbench.plan.slo import parse_slo

PYPROJECT = """
[project]
name = "mysite"

[tool.serverbench]
apps = ["mysite.wsgi:application", { app = "mysite.asgi:application", path = "/async/" }]
path = "/health/"
expect_json = { status = "ok" }
stacks = ["gunicorn", "uvicorn"]
profiles = ["smoke"]
repeats = 2
python = ".venv/bin/python"
set = { "gunicorn.workers" = 3, backlog = 512 }
env = { DJANGO_SETTINGS_MODULE = "mysite.settings", SECRET_KEY = "hunter2", DATABASE_URL = "postgres://app:pw@127.0.0.1/db" }
slo = { "p99.9_ms" = 200, error_rate_pct = 1 }
"""


def test_pyproject_table_is_read_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    config = load_config(tmp_path / "pyproject.toml")
    assert [a.spec for a in config.apps] == ["mysite.wsgi:application", "mysite.asgi:application"]
    first, second = (config.app_entry(a) for a in config.apps)
    assert first.path == "/health/"
    assert second.path == "/async/"  # the app's own value wins over the top level
    assert json.loads(second.expect_json or "") == {"status": "ok"}
    assert config.stacks == ("gunicorn", "uvicorn")
    assert config.profiles == ("smoke",)
    assert config.repeats == 2
    assert config.python == str(tmp_path.resolve() / ".venv/bin/python")
    assert config.settings == ("gunicorn.workers=3", "backlog=512")
    assert config.slo is not None
    assert config.slo.latency_ms == {"99.9": 200.0}
    assert config.slo.error_rate_pct == 1.0


def test_record_masks_secrets(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    record = load_config(tmp_path / "pyproject.toml").to_record()
    assert record is not None
    text = msgspec.json.encode(record).decode()
    assert "hunter2" not in text
    assert ":pw@" not in text
    assert record.env == {
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "SECRET_KEY": MASK,
        "DATABASE_URL": f"postgres://app:{MASK}@127.0.0.1/db",
    }


def test_nearest_file_wins_and_pyproject_without_table_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    inner = tmp_path / "sub" / "deeper"
    inner.mkdir(parents=True)
    (tmp_path / "sub" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config(inner) == tmp_path / "pyproject.toml"
    (tmp_path / "sub" / "serverbench.toml").write_text('app = "a:b"\n')
    assert find_config(inner) == tmp_path / "sub" / "serverbench.toml"
    assert load_config(tmp_path / "sub" / "serverbench.toml").apps == (AppEntry(spec="a:b"),)


def test_old_profiles_file_is_a_valid_config(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.mine]\nbase = "moderate"\nconnections = 2000\n')
    config = load_config(path)
    assert dict(config.profile_tables["mine"]) == {"base": "moderate", "connections": 2000}
    assert config.profiles == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apps = 'a:b'\n", "apps must be a list"),
        ("stack = ['gunicorn']\n", "unknown key 'stack'"),
        ("repeats = 0\n", "repeats must be"),
        ("env = { 'BAD KEY' = 'x' }\n", "not an environment variable name"),
        ("slo = { p99 = 10 }\n", "slo key 'p99'"),
        ("slo = { p99_ms = -1 }\n", "must be positive"),
        ("slo = { p99_ms = 50, p50_ms = 5 }\n", "slo names p99_ms and p50_ms; a capacity search"),
        ("slo = { error_rate_pct = 100 }\n", r"error_rate_pct \(0 up to below 100\)"),
        ("slo = 'p99=50ms'\n", "slo must be a table"),
        ("slo = { p99_ms = '50ms' }\n", "slo p99_ms must be a number"),
        ("apps = [{ path = '/x' }]\n", "an app is"),
        ("app = 'a:b'\napps = ['c:d']\n", "either app or apps"),
        ("python = 3\n", "python must be a path"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_config_is_refused_with_what_to_do(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "serverbench.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_config(path)


def test_pyproject_without_table_named_explicitly_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(UsageError, match=r"no \[tool.serverbench\] table"):
        load_config(tmp_path / "pyproject.toml")


def test_env_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_SHELL", "yes")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    assert parse_env_pairs(["A=1", "B=x=y", "FROM_SHELL"]) == {
        "A": "1",
        "B": "x=y",
        "FROM_SHELL": "yes",
    }
    with pytest.raises(UsageError, match="not set in this shell"):
        parse_env_pairs(["NOT_SET_ANYWHERE"])
    with pytest.raises(UsageError, match="not an environment variable name"):
        parse_env_pairs(["=x"])


@pytest.mark.parametrize(
    ("key", "value", "recorded"),
    [
        ("DJANGO_SETTINGS_MODULE", "mysite.settings", "mysite.settings"),
        ("API_TOKEN", "abc", MASK),
        ("AWS_SECRET_ACCESS_KEY", "abc", MASK),
        ("PGPASSWORD", "abc", MASK),
        ("SENTRY_DSN", "https://k@sentry.example/1", MASK),
        ("REDIS_URL", "redis://:pw@localhost:6379/0", f"redis://:{MASK}@localhost:6379/0"),
        ("DATABASE_URL", "postgres://u@localhost/db", "postgres://u@localhost/db"),
        ("DEBUG", "1", "1"),
    ],
)
def test_masking(key: str, value: str, recorded: str) -> None:
    assert mask_value(key, value) == recorded
    assert masked({key: value}) == {key: recorded}


def _run_args(*argv: str) -> argparse.Namespace:
    parser = build_parser()
    return parser.parse_args(["run", *argv])


def test_flags_override_the_file_and_the_file_fills_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    sub = tmp_path / "deeper"
    sub.mkdir()
    monkeypatch.chdir(sub)  # found from a subfolder; the apps import from the file's folder
    project = resolve(_run_args("--path", "/flag/", "--env", "DEBUG=1", "--set", "workers=2"))
    assert [a.spec for a in project.apps] == ["mysite.wsgi:application", "mysite.asgi:application"]
    assert {a.options.path for a in project.apps} == {"/flag/"}
    assert {a.options.app_dir for a in project.apps} == {str(tmp_path.resolve())}
    assert project.stacks == ("gunicorn", "uvicorn")
    assert project.profiles == ("smoke",)
    assert project.repeats == 2
    assert project.python == str(tmp_path.resolve() / ".venv/bin/python")
    assert project.env["DEBUG"] == "1"
    assert project.env["DJANGO_SETTINGS_MODULE"] == "mysite.settings"
    overrides = project.overrides(select_stacks(["uvicorn"]), server_cpus=1)
    # the file's gunicorn.workers is left out (gunicorn is not selected), backlog applies
    assert overrides == {"uvicorn": {"backlog": "512", "workers": "2"}}
    flags = resolve(_run_args("--stack", "bjoern", "--app", "x:y", "--repeats", "5"))
    assert flags.stacks == ("bjoern",)
    assert [a.spec for a in flags.apps] == ["x:y"]
    assert flags.repeats == 5
    assert resolve(_run_args("--no-config")).config.source is None


def test_a_masked_value_comes_back_from_the_shell_on_resume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorded = masked({"SECRET_KEY": "s", "DATABASE_URL": "postgres://u:pw@h/db", "A": "1"})
    monkeypatch.setenv("SECRET_KEY", "again")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw2@h/db")
    assert unmasked(recorded) == {
        "SECRET_KEY": "again",
        "DATABASE_URL": "postgres://u:pw2@h/db",
        "A": "1",
    }
    monkeypatch.delenv("SECRET_KEY")
    with pytest.raises(UsageError, match="export SECRET_KEY and resume again"):
        unmasked(recorded)


def test_the_run_plan_carries_the_projects_env_and_records_it_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "serverbench.toml").write_text(
        'stacks = ["gunicorn"]\nprofile = ["smoke"]\nenv = { A = "1", API_TOKEN = "t" }\n'
    )
    monkeypatch.chdir(tmp_path)
    plan = new_run_plan(_run_args("--out", str(tmp_path / "out")))
    assert plan.env == {"A": "1", "API_TOKEN": "t"}
    assert plan.python is None
    assert plan.config is not None
    assert plan.config.source == str(tmp_path.resolve() / "serverbench.toml")
    assert plan.config.env == {"A": "1", "API_TOKEN": MASK}
    assert plan_record(plan).env == {"A": "1", "API_TOKEN": MASK}


def _capacity_targets(*argv: str) -> CapacityTargets:
    args = build_parser().parse_args(["capacity", *argv])
    return capacity_targets(args, project_config(args))


def test_the_capacity_targets_come_from_the_flags_then_the_file_then_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    where = f"{tmp_path.resolve() / 'pyproject.toml'} [tool.serverbench]"
    monkeypatch.chdir(tmp_path)
    from_file = _capacity_targets()
    assert from_file.slo == parse_slo("p99.9=200ms")
    assert from_file.max_error_rate == pytest.approx(0.01)
    assert from_file.sources == {"slo": f"{where} slo", "max_errors": f"{where} slo.error_rate_pct"}
    flags = _capacity_targets("--slo", "p99=50ms", "--max-errors", "0%")
    assert (flags.slo, flags.max_error_rate) == (parse_slo("p99=50ms"), 0.0)
    assert flags.sources == {"slo": "--slo", "max_errors": "--max-errors"}
    mixed = _capacity_targets("--slo", "p99=50ms")
    assert mixed.sources == {"slo": "--slo", "max_errors": f"{where} slo.error_rate_pct"}
    defaults = _capacity_targets("--no-config")
    assert (defaults.slo, defaults.max_error_rate) == (parse_slo("p99=100ms"), 0.001)
    assert defaults.sources == {
        "slo": "serverbench's default",
        "max_errors": "serverbench's default",
    }
    (tmp_path / "serverbench.toml").write_text("slo = { error_rate_pct = 0 }\n")
    budget_only = _capacity_targets()  # serverbench.toml wins in its folder
    assert (budget_only.slo, budget_only.max_error_rate) == (parse_slo("p99=100ms"), 0.0)
    assert (
        budget_only.sources["max_errors"]
        == f"{tmp_path.resolve() / 'serverbench.toml'} slo.error_rate_pct"
    )


def test_the_capacity_plan_records_where_its_targets_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "serverbench.toml").write_text("slo = { p99_ms = 50 }\n")
    monkeypatch.chdir(tmp_path)
    plan = capacity_plan(build_parser().parse_args(["capacity", "--max-errors", "1%"]))
    where = f"{tmp_path.resolve() / 'serverbench.toml'} slo"
    assert plan.slo == parse_slo("p99=50ms")
    assert plan.sources == {"slo": where, "max_errors": "--max-errors"}
    assert plan.targets_text == f"p99 <= 50 ms ({where}), errors <= 1 % (--max-errors)"
    # written to results.json and read back
    assert msgspec.json.decode(msgspec.json.encode(plan), type=CapacityPlan) == plan
    (tmp_path / "serverbench.toml").write_text("slo = { p99_ms = 0 }\n")
    with pytest.raises(UsageError, match="slo p99_ms must be positive"):
        capacity_plan(build_parser().parse_args(["capacity"]))


def test_capacity_searches_the_projects_stacks_and_apps_with_its_settings_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "serverbench.toml").write_text(
        'stacks = ["gunicorn"]\napps = ["seed-fastapi"]\nset = { backlog = 512 }\n'
        'env = { A = "1" }\n'
    )
    monkeypatch.chdir(tmp_path)
    plan = new_capacity_run_plan(
        build_parser().parse_args(["capacity", "--out", str(tmp_path / "o")])
    )
    assert plan.stack_names == ("gunicorn",)
    assert [app.name for app in plan.apps] == ["seed-fastapi"]
    assert plan.overrides == {"gunicorn": {"backlog": "512"}}
    assert plan.env == {"A": "1"}
    assert plan.config is not None
    flags = new_capacity_run_plan(
        build_parser().parse_args(["capacity", "--stack", "uvicorn", "--out", str(tmp_path / "p")])
    )
    assert flags.stack_names == ("uvicorn",)
