import json
import os
from pathlib import Path

import pytest

from serverbench.errors import ResultsError
from serverbench.results.store import SCHEMA_VERSION, load, save


def test_save_then_load_round_trip_and_owner_only(tmp_path: Path):
    path = tmp_path / "results.json"
    save({"runs": [{"id": "1/a/b/c"}]}, path)
    assert load(path) == {"runs": [{"id": "1/a/b/c"}], "schema_version": SCHEMA_VERSION}
    assert load(tmp_path)["runs"][0]["id"] == "1/a/b/c"  # the folder works too
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_save_replaces_atomically_and_leaves_no_temporary_file(tmp_path: Path):
    path = tmp_path / "results.json"
    save({"runs": []}, path)
    save({"runs": [1, 2]}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert load(path)["runs"] == [1, 2]


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path):
    path = tmp_path / "results.json"
    save({"runs": [1]}, path)
    with pytest.raises(TypeError):
        save({"runs": [object()]}, path)
    assert load(path)["runs"] == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "not a serverbench results file"),
        (json.dumps({"runs": []}), "not a serverbench results file"),
        (json.dumps({"schema_version": SCHEMA_VERSION + 1}), "upgrade serverbench"),
    ],
)
def test_bad_files_are_refused_with_a_clear_message(tmp_path: Path, content, message):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(ResultsError, match=message):
        load(path)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ResultsError, match="does not exist"):
        load(tmp_path / "nope.json")


def test_an_older_schema_is_refused_with_a_clear_message(tmp_path: Path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": 0, "runs": []}))
    with pytest.raises(
        ResultsError, match="schema version 0, which this serverbench can no longer read"
    ):
        load(path)


@pytest.mark.parametrize(
    ("step", "error"),
    [("fsync", KeyboardInterrupt), ("replace", OSError)],
)
def test_an_interrupted_write_never_replaces_the_file(monkeypatch, tmp_path: Path, step, error):
    path = tmp_path / "results.json"
    save({"runs": [1]}, path)

    def fail(*args: object) -> None:
        raise error()

    monkeypatch.setattr(os, step, fail)
    with pytest.raises(error):
        save({"runs": [1, 2]}, path)
    monkeypatch.undo()
    assert load(path)["runs"] == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_temporary_file_left_by_a_killed_writer_is_not_read(tmp_path: Path):
    path = tmp_path / "results.json"
    save({"runs": [1]}, path)
    (tmp_path / ".results-abc.tmp").write_text('{"schema_version": 1, "runs": [1, 2')  # cut off
    assert load(tmp_path)["runs"] == [1]
