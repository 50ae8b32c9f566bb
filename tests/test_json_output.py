"""`stacks --json` and `check --json`: standard output is one JSON document a program can read."""

from __future__ import annotations

import json

import pytest

from serverbench import cli
from serverbench.stacks import STACKS


def test_stacks_json_lists_every_stack_with_its_extra(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stacks", "--json", "--no-config"]) == 0
    document = json.loads(capsys.readouterr().out)
    by_name = {s["stack"]: s for s in document["stacks"]}
    assert set(by_name) == set(STACKS)
    assert by_name["gunicorn"]["available"] is True
    assert by_name["gunicorn"]["version"] == "27.0.1"
    assert by_name["gunicorn"]["extra"] == "gunicorn"
    assert document["python_version"]


@pytest.mark.usefixtures("bjoern_not_installed")
def test_check_json_reports_a_missing_package(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--stack", "bjoern", "--json", "--no-config"]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["passed"] is False
    (check,) = document["checks"]
    assert check["result"] == "fail"
    assert "pip install 'bjoern'" in check["detail"]
