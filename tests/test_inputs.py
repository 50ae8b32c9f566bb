"""Inputs refused before anything starts: results folder, --set values, statuses, durations."""

from __future__ import annotations

from pathlib import Path

import pytest

from serverbench.errors import UsageError
from serverbench.plan.inputs import (
    check_duration,
    check_expected_status,
    check_out_dir,
    check_overrides,
)
from serverbench.stacks import get_stack


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (Path("/proc/x"), "/proc is not a place for results"),
        (Path("/sys"), "/sys is not a place for results"),
    ],
)
def test_pseudo_filesystems_are_refused(where: Path, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_out_dir(where)


def test_an_existing_file_or_a_folder_under_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(UsageError, match="is an existing file"):
        check_out_dir(file)
    with pytest.raises(UsageError, match="is a file, so no folder can be made under it"):
        check_out_dir(file / "deeper" / "out")


def test_a_new_or_existing_folder_is_fine(tmp_path: Path) -> None:
    check_out_dir(tmp_path)
    check_out_dir(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # nothing is created by checking


def test_a_read_only_parent_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("os.access", lambda path, mode: False)
    with pytest.raises(UsageError, match="not writable for this user"):
        check_out_dir(tmp_path / "out")


@pytest.mark.parametrize("status", [100, 199, 400, 404, 500, 999])
def test_statuses_that_never_count_as_good_are_refused(status: int) -> None:
    with pytest.raises(UsageError, match="only statuses 200-399 count as good"):
        check_expected_status(status)


@pytest.mark.parametrize("status", [200, 204, 301, 399])
def test_good_statuses_pass(status: int) -> None:
    check_expected_status(status)


def test_absurd_durations_are_refused() -> None:
    check_duration("--duration", 3600)
    check_duration("--duration", None)
    for absurd in (1e9, float("inf"), float("nan")):
        with pytest.raises(UsageError, match="more than 24 hours"):
            check_duration("--duration", absurd)


GUNICORN = get_stack("gunicorn")
BJOERN = get_stack("bjoern")
UVICORN = get_stack("uvicorn")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x", "expected a whole number"),
        ("-1", "must be at least 1"),
        ("0", "must be at least 1"),
        ("100000", "more than 16 .16 per server CPU, 1 server CPU."),
        ("99999999999", "must be at most"),
    ],
)
def test_bad_worker_counts_are_refused_for_every_stack(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as refused:
        check_overrides({"gunicorn": {"workers": value}}, [GUNICORN], server_cpus=1)
    assert str(refused.value).startswith(f"--set gunicorn.workers={value}:")


def test_the_ceiling_follows_the_server_cpus_and_can_be_lifted() -> None:
    check_overrides({"gunicorn": {"workers": "32"}}, [GUNICORN], server_cpus=2)
    with pytest.raises(UsageError, match="--allow-many-processes"):
        check_overrides({"gunicorn": {"workers": "33"}}, [GUNICORN], server_cpus=2)
    check_overrides({"gunicorn": {"workers": "33"}}, [GUNICORN], server_cpus=2, many=True)
    with pytest.raises(UsageError, match="256 per server CPU"):
        check_overrides({"gunicorn": {"threads": "257"}}, [GUNICORN], server_cpus=1)


def test_an_unknown_setting_is_refused_with_the_stacks_settings() -> None:
    with pytest.raises(UsageError, match="stack gunicorn has no setting 'nosuch'; its settings"):
        check_overrides({"gunicorn": {"nosuch": "1"}}, [GUNICORN], server_cpus=1)


def test_choices_are_checked() -> None:
    with pytest.raises(UsageError, match="expected one of"):
        check_overrides({"uvicorn": {"http": "h3"}}, [UVICORN], server_cpus=1)
    check_overrides(
        {"uvicorn": {"http": "h11"}, "bjoern": {"processes": "2"}},
        [UVICORN, BJOERN],
        server_cpus=1,
    )
