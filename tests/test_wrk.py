"""wrk.py from documents captured from real wrk 4.1.0 runs of wrk_json.lua (tests/data/wrk/):

normal         nginx, -t1 -c8 -d1s: exact histogram, CO correction added samples
grid           nginx, -t2 -c200 -d2s, exact budget 0: latency as a percentile grid
status_errors  nginx answering 500 on every request
all_timeouts   server sleeping 1.2 s, --timeout 1s: 4 responses, all timeouts, no latency
zero_requests  server sleeping 20 s, 1 s run: nothing completed
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from serverbench.errors import LoadGeneratorError, ResultsError, UsageError
from serverbench.load.histogram import merge_histograms, percentiles_from_hdr
from serverbench.load.wrk import (
    PERCENTILE_KEYS,
    WrkSettings,
    build_argv,
    lua_script_path,
    parse,
    script_env,
)

DATA = Path(__file__).parent / "data" / "wrk"
DOC_NAMES = ("normal", "grid", "status_errors", "all_timeouts", "zero_requests")


def load(name: str) -> dict[str, object]:
    doc = json.loads((DATA / f"{name}.json").read_text())
    assert isinstance(doc, dict)
    return doc


def total_count(blob: str | None) -> int:
    assert blob is not None
    return int(HdrHistogram.decode(blob).get_total_count())


# ---------------------------------------------------------------------------- argv


def test_argv_pinned_with_headers() -> None:
    settings = WrkSettings(
        threads=2, connections=50, duration_s=3, timeout_s=5, headers=("Connection: close",)
    )
    argv = build_argv(settings, "http://127.0.0.1:8000/x", "/s.lua", cpus="1")
    assert argv == (
        "taskset", "-c", "1", "wrk", "-t", "2", "-c", "50", "-d", "3s", "--timeout", "5s",
        "-s", "/s.lua", "-H", "Connection: close", "http://127.0.0.1:8000/x",
    )  # fmt: skip


def test_argv_rounds_seconds_up_and_skips_taskset() -> None:
    settings = WrkSettings(threads=1, connections=1, duration_s=1.2, timeout_s=0.5)
    argv = build_argv(settings, "http://127.0.0.1:1/", "/s.lua")
    assert argv[0] == "wrk"
    assert argv[argv.index("-d") + 1] == "2s"
    assert argv[argv.index("--timeout") + 1] == "1s"


@pytest.mark.parametrize(
    ("settings", "cpus", "match"),
    [
        (WrkSettings(threads=0, connections=1, duration_s=1), None, "at least 1 thread"),
        (WrkSettings(threads=4, connections=3, duration_s=1), None, "fewer than its threads"),
        (WrkSettings(threads=1, connections=1, duration_s=0.5), None, "at least 1 s"),
        (WrkSettings(threads=1, connections=1, duration_s=1, timeout_s=0), None, "timeout"),
        (WrkSettings(threads=1, connections=1, duration_s=1, timeout_s=61), None, "timeout"),
        (WrkSettings(threads=1, connections=1, duration_s=1, headers=("x",)), None, "header"),
        (WrkSettings(threads=1, connections=1, duration_s=1), " ", "CPU list"),
    ],
)
def test_argv_rejects_bad_settings(settings: WrkSettings, cpus: str | None, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        build_argv(settings, "http://127.0.0.1:1/", "/s.lua", cpus)


def test_script_is_packaged_and_cheap() -> None:
    source = lua_script_path().read_text()
    assert "function done(" in source
    # response() or request() would make wrk call Lua on every request
    assert not re.search(
        r"^\s*(function\s+(response|request)\b|(response|request)\s*=)", source, re.M
    )
    assert "SERVERBENCH_WRK_JSON" in source


def test_script_env(tmp_path: Path) -> None:
    assert script_env(tmp_path / "a.json") == {"SERVERBENCH_WRK_JSON": str(tmp_path / "a.json")}
    assert script_env(tmp_path / "a.json", exact_budget=0)["SERVERBENCH_WRK_EXACT_BUDGET"] == "0.0"


# ---------------------------------------------------------------------------- parse


def test_normal_run() -> None:
    m = parse(load("normal"))
    assert m.requests == 144327
    assert m.duration_s == pytest.approx(1.099416)
    assert m.bytes_read == 23235937
    assert m.non_2xx_3xx == 0
    assert m.good_responses == m.requests
    assert m.requests_per_sec == pytest.approx(131276.06, rel=1e-6)  # wrk printed this
    assert m.raw_requests_per_sec == m.requests_per_sec
    assert m.transfer_bytes_per_sec == pytest.approx(23235937 / 1.099416)
    assert m.latency_us.mean == pytest.approx(96.76, abs=0.01)
    assert m.latency_us.min == 15
    assert m.latency_us.max == 9760
    # wrk printed "Latency 96.76us 535.78us 9.76ms 98.70%" and "Req/Sec ... 63.64%"
    assert m.latency_us.within_stdev_pct == pytest.approx(98.70, abs=0.005)
    assert m.thread_rps.within_stdev_pct == pytest.approx(63.64, abs=0.005)
    assert tuple(m.latency_percentiles_us) == PERCENTILE_KEYS
    assert m.latency_percentiles_us["50"] == 51
    assert m.latency_percentiles_us["99.99"] == 9660
    assert m.histogram_exact
    assert m.latency_samples == 146904 > m.requests  # wrk's CO correction added samples
    assert total_count(m.histogram_hdr) == m.latency_samples


def test_grid_run_reconstructs_the_histogram() -> None:
    m = parse(load("grid"))
    assert not m.histogram_exact
    assert m.histogram_hdr is not None
    assert total_count(m.histogram_hdr) == m.latency_samples == 294094
    hdr = percentiles_from_hdr(m.histogram_hdr, [50, 75, 90, 99, 99.9, 99.99])
    for key, exact in m.latency_percentiles_us.items():
        assert hdr[key] == pytest.approx(exact, rel=0.01), key
    assert m.latency_us.within_stdev_pct is not None
    assert 68 < m.latency_us.within_stdev_pct < 100
    assert m.thread_rps.within_stdev_pct is None  # budget 0 skipped it too
    assert m.thread_rps.mean == pytest.approx(65723.6)


def test_status_errors_are_not_good_responses() -> None:
    m = parse(load("status_errors"))
    assert m.requests == m.non_2xx_3xx == 142237
    assert m.good_responses == 0
    assert m.requests_per_sec == 0
    assert m.raw_requests_per_sec > 100_000
    assert m.histogram_exact
    assert total_count(m.histogram_hdr) == m.latency_samples


def test_all_timeouts_has_no_latency() -> None:
    m = parse(load("all_timeouts"))
    assert m.requests == 4
    assert m.socket_errors.timeout == 4
    assert m.good_responses == 0
    assert m.latency_us.mean is None
    assert m.latency_us.within_stdev_pct is None
    assert m.latency_percentiles_us == {}
    assert m.histogram_hdr is None
    assert m.latency_samples == 0
    assert m.thread_rps.mean == 3


def test_zero_requests() -> None:
    m = parse(load("zero_requests"))
    assert m.requests == 0
    assert m.bytes_read == 0
    assert m.raw_requests_per_sec == 0
    assert m.histogram_hdr is None
    assert m.thread_rps.mean is None
    assert m.thread_rps.within_stdev_pct is None


def test_good_responses_floor_at_zero() -> None:
    doc = load("status_errors")
    errors = doc["errors"]
    assert isinstance(errors, dict)
    errors["timeout"] = 5
    assert parse(doc).good_responses == 0


def test_small_grid_is_spread_between_points() -> None:
    doc = load("grid")
    doc["latency_samples"] = 10
    doc["latency_grid_us"] = [[1, 100], [4, 100], [9, 150], [10, 900]]
    m = parse(doc)
    assert m.histogram_hdr is not None
    hist = HdrHistogram.decode(m.histogram_hdr)
    assert hist.get_total_count() == 10
    assert hist.get_count_at_value(100) == 4
    assert hist.get_max_value() == hist.get_highest_equivalent_value(900)
    assert sum(hist.get_count_at_value(v) for v in range(101, 151)) == 5


def _set(doc: dict[str, object], path: str, value: object) -> dict[str, object]:
    doc = copy.deepcopy(doc)
    *parents, leaf = path.split(".")
    node = doc
    for key in parents:
        child = node[key]
        assert isinstance(child, dict)
        node = child
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return doc


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("normal", "tool", "ab"),
        ("normal", "format", 2),
        ("normal", "requests", KeyError),
        ("normal", "requests", -1),
        ("normal", "requests", "12"),
        ("normal", "errors.timeout", True),
        ("normal", "errors", None),
        ("normal", "latency_us.mean", "x"),
        ("normal", "latency_us.percentiles", {}),
        ("normal", "latency_samples", 1),
        ("normal", "latency_histogram_us", [[1, 2, 3]]),
        ("normal", "latency_histogram_us", None),
        ("grid", "latency_grid_us", [[5, 10], [3, 20]]),
        ("grid", "latency_grid_us", [[1, 10], [2, 20]]),
        ("zero_requests", "thread_rps", None),
    ],
)
def test_malformed_documents_raise(name: str, path: str, value: object) -> None:
    with pytest.raises(LoadGeneratorError, match="malformed wrk JSON document"):
        parse(_set(load(name), path, value))


# ---------------------------------------------------------------------------- histograms


def test_merge_is_exact() -> None:
    a = parse(load("normal"))
    b = parse(load("status_errors"))
    assert a.histogram_hdr is not None
    assert b.histogram_hdr is not None
    merged = merge_histograms([a.histogram_hdr, b.histogram_hdr])
    assert total_count(merged) == a.latency_samples + b.latency_samples
    single = merge_histograms([a.histogram_hdr])
    assert total_count(single) == a.latency_samples
    assert merge_histograms([]) is None


def test_percentiles_from_hdr_match_wrk() -> None:
    m = parse(load("normal"))
    assert m.histogram_hdr is not None
    got = percentiles_from_hdr(m.histogram_hdr, [50, 99, 99.9, 100])
    assert list(got) == ["50", "99", "99.9", "100"]
    assert got["50"] == m.latency_percentiles_us["50"]
    assert got["99.9"] == pytest.approx(m.latency_percentiles_us["99.9"], rel=0.002)
    assert got["100"] == pytest.approx(9760, rel=0.002)
    empty = HdrHistogram(1, 60_000_000, 3).encode().decode()
    assert percentiles_from_hdr(empty, [50]) == {}


@pytest.mark.parametrize("blob", ["garbage!", "", "QUFBQUFBQUFBQUFBQUFBQUFBQQ=="])
def test_bad_blob_raises_results_error(blob: str) -> None:
    with pytest.raises(ResultsError, match="does not decode"):
        merge_histograms([blob])
    with pytest.raises(ResultsError):
        percentiles_from_hdr(blob, [50])
