import copy
import dataclasses
import json
import os
from pathlib import Path

import pytest

from serverbench.errors import ResultsError
from serverbench.results.model import Event, ResultsDocument
from serverbench.results.store import SCHEMA_VERSION, encode, from_raw, json_schema, load, save

DATA = Path(__file__).parent / "data" / "results"
SCHEMA_FILE = Path(__file__).parent.parent / "docs" / "results.schema.json"


def document(events: int = 0) -> ResultsDocument:
    """A real document (an old results file, migrated) with `events` resumed events."""
    loaded = load(DATA / "smoke-3stacks.json")
    loaded.events = [Event(kind="resumed", runs_kept=n) for n in range(events)]
    return loaded


def test_save_then_load_round_trip_and_owner_only(tmp_path: Path):
    path = tmp_path / "results.json"
    original = document(events=1)
    save(original, path)
    assert load(path) == original
    assert load(tmp_path).events[0].kind == "resumed"  # the folder works too
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_save_replaces_atomically_and_leaves_no_temporary_file(tmp_path: Path):
    path = tmp_path / "results.json"
    save(document(), path)
    save(document(events=2), path)
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert len(load(path).events) == 2


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path):
    path = tmp_path / "results.json"
    save(document(events=1), path)
    broken = document()
    broken.events = [object()]  # type: ignore[list-item]
    with pytest.raises(TypeError):
        save(broken, path)
    assert len(load(path).events) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


@pytest.mark.parametrize("name", ["smoke-3stacks.json", "two-profiles-failed.json"])
def test_a_schema_1_file_migrates_to_engine_neutral_measurements(name: str):
    raw = json.loads((DATA / name).read_text())
    assert raw["schema_version"] == 1
    migrated = load(DATA / name)
    assert migrated.schema_version == SCHEMA_VERSION
    for old, new in zip(raw["runs"], migrated.runs, strict=True):
        if old.get("wrk"):
            assert new.measurement is not None
            assert new.wrk is not None
            assert new.measurement.engine == "wrk"
            assert new.measurement.loop == "closed"
            assert new.measurement.requests == old["wrk"]["requests"]
            assert new.measurement.good_responses == old["derived"]["good_responses"]
            assert new.measurement.errors.status == old["wrk"]["non_2xx_3xx"]
            assert new.measurement.latency_histogram_hdr == old["wrk"]["histogram_hdr"]
            assert new.load_argv == tuple(old["wrk_argv"])
        else:
            assert new.measurement is None
    assert all(
        app.import_string.startswith("serverbench.apps.builtin.") for app in migrated.apps.values()
    )


def test_a_migrated_file_saves_and_loads_as_the_current_schema(tmp_path: Path):
    migrated = load(DATA / "two-profiles-failed.json")
    save(migrated, tmp_path / "results.json")
    assert json.loads((tmp_path / "results.json").read_text())["schema_version"] == SCHEMA_VERSION
    assert load(tmp_path) == migrated


def test_a_bad_field_is_named():
    raw = json.loads(encode(document()))
    broken = copy.deepcopy(raw)
    broken["runs"][2]["measurement"]["requests"] = "many"
    with pytest.raises(ResultsError, match=r"\$\.runs\[2\]\.measurement\.requests"):
        from_raw(broken)


def test_the_published_json_schema_matches_the_model():
    published = json.loads(SCHEMA_FILE.read_text())
    assert published == json.loads(json.dumps(json_schema())), (
        "docs/results.schema.json is out of date: regenerate it with "
        "`python -m serverbench.results.schema > docs/results.schema.json`"
    )


def test_every_record_of_the_model_is_in_the_schema():
    definitions = json_schema()["$defs"]
    for name in ("ResultsDocument", "RunRecord", "Measurement", "WrkDetails", "Usage"):
        assert name in definitions
    assert dataclasses.is_dataclass(ResultsDocument)


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
    ("step", "error", "raised"),
    [("fsync", KeyboardInterrupt, KeyboardInterrupt), ("replace", OSError, ResultsError)],
)
def test_an_interrupted_write_never_replaces_the_file(
    monkeypatch, tmp_path: Path, step, error, raised
):
    path = tmp_path / "results.json"
    save(document(events=1), path)

    def fail(*args: object) -> None:
        raise error()

    monkeypatch.setattr(os, step, fail)
    with pytest.raises(raised):
        save(document(events=2), path)
    monkeypatch.undo()
    assert len(load(path).events) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_temporary_file_left_by_a_killed_writer_is_not_read(tmp_path: Path):
    path = tmp_path / "results.json"
    save(document(events=1), path)
    (tmp_path / ".results-abc.tmp").write_text('{"schema_version": 1, "runs": [1, 2')  # cut off
    assert len(load(tmp_path).events) == 1
