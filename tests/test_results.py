import json
import os
from pathlib import Path

import pytest

from serverbench.errors import ResultsError
from serverbench.results import SCHEMA_VERSION, load, save


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
