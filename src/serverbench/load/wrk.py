"""wrk as a measuring instrument: its settings, its command line, and what one run measured.

Pure: nothing here spawns a process (`serverbench.load.wrk_process` does). The packaged Lua script
`wrk_json.lua` writes one JSON document at the end of a run; `parse()` turns that document into a
`WrkMeasurement`, including the latency histogram as a base64 HdrHistogram that merges exactly
across repeats (`merge_histograms`).

Counting semantics of wrk 4.x that the fields below follow:
  * `requests` counts completed responses of any status; `non_2xx_3xx` those with status > 399.
  * A response slower than `--timeout` counts in `requests` and in `socket_errors.timeout`, but
    not in the latency histogram. A request never answered before the run ends counts nowhere.
  * The latency histogram is closed-loop and already carries wrk's coordinated-omission
    correction, so it may hold more samples than there were requests.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from serverbench.errors import LoadGeneratorError, ServerbenchError, UsageError
from serverbench.load.histogram import HDR_HIGHEST_US, HDR_LOWEST_US, encoded, new_histogram

PERCENTILE_KEYS = ("50", "75", "90", "99", "99.9", "99.99")
MAX_TIMEOUT_S = HDR_HIGHEST_US // 1_000_000

OUT_ENV = "SERVERBENCH_WRK_JSON"
EXACT_BUDGET_ENV = "SERVERBENCH_WRK_EXACT_BUDGET"
DOC_FORMAT = 1
# Reconstructing a histogram from a percentile grid: at most this many distinct values per gap
# between two grid points, which keeps the work bounded whatever the sample count.
_GRID_FILL_STEPS = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class WrkSettings:
    """One wrk run. wrk opens `connections // threads` connections per thread."""

    threads: int
    connections: int
    duration_s: float
    timeout_s: float = 2.0  # wrk --timeout; responses slower count as timeout errors
    headers: tuple[str, ...] = ()  # extra "-H" values
    extra_lua: str = ""  # appended to wrk_json.lua, e.g. a request mix's request() (load.mix)

    @property
    def wrk_duration_s(self) -> int:
        """The `-d` wrk is given: it takes whole seconds, so the duration is rounded up."""
        return math.ceil(self.duration_s)

    @property
    def wrk_timeout_s(self) -> int:
        """The `--timeout` wrk is given: whole seconds as well, rounded up."""
        return math.ceil(self.timeout_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketErrors:
    connect: int
    read: int  # read errors, parser errors, EOF before a response ended
    write: int
    timeout: int  # responses that did arrive, but after --timeout


@dataclass(frozen=True, slots=True, kw_only=True)
class Spread:
    """The "Thread Stats" row of wrk's text output; all None when there were no samples."""

    mean: float | None
    stdev: float | None
    max: float | None
    min: float | None
    within_stdev_pct: float | None  # % of samples within mean +- 1 stdev ("+/- Stdev")


@dataclass(frozen=True, slots=True, kw_only=True)
class WrkMeasurement:
    """What one wrk run measured.

    `latency_us` and `latency_percentiles_us` are closed-loop latencies (each connection sends
    its next request when the previous response arrived) in microseconds, after wrk's own
    coordinated-omission correction; responses slower than the timeout are left out of them.
    `latency_percentiles_us` comes from wrk's exact 1-us histogram, whichever form
    `histogram_hdr` was built from. When wrk's histogram is too costly to dump, `histogram_hdr`
    is rebuilt from ~400 wrk percentiles (denser towards 99.999); a percentile read from it is
    then right to within one grid step (about 0.7 % of the samples around p75, 0.007 % at p99.9).
    """

    duration_s: float
    requests: int  # completed responses of any status (wrk summary.requests)
    bytes_read: int
    socket_errors: SocketErrors
    non_2xx_3xx: int  # wrk errors.status: responses with status > 399
    latency_us: Spread
    latency_percentiles_us: dict[str, float]  # keys PERCENTILE_KEYS; empty when no samples
    thread_rps: Spread  # per-thread req/s sampled every 100 ms
    histogram_hdr: str | None  # base64 HdrHistogram(1, 60_000_000, 3) of latency in us
    histogram_exact: bool  # False: reconstructed from a dense percentile grid
    latency_samples: int  # exceeds requests when wrk's correction added samples

    @property
    def good_responses(self) -> int:
        """Responses that were neither 4xx/5xx nor slower than the timeout."""
        return max(0, self.requests - self.non_2xx_3xx - self.socket_errors.timeout)

    @property
    def requests_per_sec(self) -> float:
        """Honest throughput: good responses per second."""
        return self.good_responses / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def raw_requests_per_sec(self) -> float:
        """What wrk prints as Requests/sec: responses of any status per second."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def transfer_bytes_per_sec(self) -> float:
        return self.bytes_read / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def details(self) -> WrkDetails:
        return WrkDetails(
            latency_us=self.latency_us,
            thread_rps=self.thread_rps,
            latency_samples=self.latency_samples,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WrkDetails:
    """What only wrk knows, kept with a run beside its engine-neutral measurement: the figures
    of wrk's own text output that a report shows in wrk's layout."""

    latency_us: Spread  # mean, stdev, max, min, within one stdev (closed-loop, CO-corrected)
    thread_rps: Spread  # per-thread req/s sampled every 100 ms
    latency_samples: int  # exceeds requests when wrk's correction added samples


# ---------------------------------------------------------------------------- command line


def build_argv(
    settings: WrkSettings, url: str, script_path: str, cpus: str | None = None
) -> tuple[str, ...]:
    """wrk's argv, prefixed with `taskset -c cpus` when cpus is given.

    wrk takes whole seconds for `-d` and `--timeout`: both are rounded up (see WrkSettings).
    """
    _validate(settings)
    if cpus is not None and not cpus.strip():
        raise UsageError("the CPU list for wrk is empty; give one like '1' or '2-3', or none")
    prefix: tuple[str, ...] = ("taskset", "-c", cpus) if cpus is not None else ()
    header_args = tuple(arg for header in settings.headers for arg in ("-H", header))
    return (
        *prefix,
        "wrk",
        "-t",
        str(settings.threads),
        "-c",
        str(settings.connections),
        "-d",
        f"{settings.wrk_duration_s}s",
        "--timeout",
        f"{settings.wrk_timeout_s}s",
        "-s",
        script_path,
        *header_args,
        url,
    )


def _validate(settings: WrkSettings) -> None:
    if settings.threads < 1:
        raise UsageError(f"wrk needs at least 1 thread, got {settings.threads}; use 1 or more")
    if settings.connections < settings.threads:
        raise UsageError(
            f"wrk connections ({settings.connections}) are fewer than its threads "
            f"({settings.threads}), and wrk gives each thread connections // threads; "
            "use at least as many connections as threads"
        )
    if not settings.duration_s >= 1:
        raise UsageError(
            f"wrk duration must be at least 1 s, got {settings.duration_s}; "
            "use a whole number of seconds >= 1"
        )
    if not 0 < settings.timeout_s <= MAX_TIMEOUT_S:
        raise UsageError(
            f"wrk timeout must be in (0, {MAX_TIMEOUT_S}] s, got {settings.timeout_s}; "
            "set it above the slowest expected response (whole seconds)"
        )
    for header in settings.headers:
        if ":" not in header or any(c in header for c in "\r\n"):
            raise UsageError(f"bad header for wrk: {header!r}; write it as 'Name: value'")


def lua_script_path() -> Path:
    """The packaged wrk_json.lua."""
    return Path(str(resources.files("serverbench.load").joinpath("wrk_json.lua")))


def script_env(out_path: Path, *, exact_budget: float | None = None) -> dict[str, str]:
    """Environment variables wrk_json.lua reads: where to write its JSON document, and
    (for tests) how many bucket visits the exact histogram dump may cost before it falls back
    to a percentile grid."""
    env = {OUT_ENV: str(out_path)}
    if exact_budget is not None:
        env[EXACT_BUDGET_ENV] = repr(float(exact_budget))
    return env


# ---------------------------------------------------------------------------- parsing


class _Reader:
    """Typed access to a JSON object; every defect raises `error` naming the field."""

    def __init__(self, error: type[ServerbenchError], what: str, todo: str) -> None:
        self.error = error
        self.what = what
        self.todo = todo

    def fail(self, where: str, problem: str) -> ServerbenchError:
        return self.error(f"{self.what}: {where} {problem}; {self.todo}")

    def mapping(self, doc: Mapping[str, object], key: str, where: str) -> Mapping[str, object]:
        value = doc.get(key)
        if not isinstance(value, Mapping):
            raise self.fail(f"{where}{key}", "is missing or not an object")
        return value

    def count(self, doc: Mapping[str, object], key: str, where: str) -> int:
        value = doc.get(key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(f"{where}{key}", f"is not a count (got {value!r})")
        return value

    def number(self, doc: Mapping[str, object], key: str, where: str) -> float | None:
        value = doc.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise self.fail(f"{where}{key}", f"is not a number (got {value!r})")
        return float(value)

    def pairs(self, value: object, where: str) -> list[tuple[int, int]]:
        if not isinstance(value, list):
            raise self.fail(where, "is not a list")
        out: list[tuple[int, int]] = []
        for item in value:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in item)
            ):
                raise self.fail(where, f"holds {item!r}, not a pair of counts")
            out.append((item[0], item[1]))
        return out

    def spread(self, doc: Mapping[str, object], key: str, where: str) -> Spread:
        m = self.mapping(doc, key, where)
        where = f"{where}{key}."
        return Spread(
            mean=self.number(m, "mean", where),
            stdev=self.number(m, "stdev", where),
            max=self.number(m, "max", where),
            min=self.number(m, "min", where),
            within_stdev_pct=self.number(m, "within_stdev_pct", where),
        )


_DOC = _Reader(
    LoadGeneratorError,
    "malformed wrk JSON document",
    "this wrk is not the 4.x serverbench expects, or the script output was cut short; "
    "check `wrk -v` and the run's .wrk.log",
)


def parse(doc: Mapping[str, object]) -> WrkMeasurement:
    """The measurement in one document written by wrk_json.lua."""
    r = _DOC
    if doc.get("tool") != "wrk" or doc.get("format") != DOC_FORMAT:
        raise r.fail("tool/format", f"are not wrk/{DOC_FORMAT}")
    errors = r.mapping(doc, "errors", "")
    latency = r.mapping(doc, "latency_us", "")
    samples = r.count(doc, "latency_samples", "")

    lat_spread = r.spread(doc, "latency_us", "")
    percentiles: dict[str, float] = {}
    hdr: str | None = None
    exact = True
    if samples > 0:
        raw_pcts = r.mapping(latency, "percentiles", "latency_us.")
        for key in PERCENTILE_KEYS:
            value = r.number(raw_pcts, key, "latency_us.percentiles.")
            if value is None:
                raise r.fail(f"latency_us.percentiles.{key}", "is missing")
            percentiles[key] = value
        if doc.get("latency_histogram_us") is not None:
            pairs = r.pairs(doc["latency_histogram_us"], "latency_histogram_us")
            if sum(n for _, n in pairs) != samples:
                raise r.fail("latency_histogram_us", f"does not add up to {samples} samples")
        else:
            exact = False
            grid = r.pairs(doc.get("latency_grid_us"), "latency_grid_us")
            if not _grid_is_consistent(grid, samples):
                raise r.fail("latency_grid_us", "is not a rising rank grid ending at the samples")
            pairs = _pairs_from_grid(grid)
        mean, stdev = lat_spread.mean, lat_spread.stdev
        if mean is None or stdev is None:
            raise r.fail("latency_us", "has samples but no mean/stdev")
        lat_spread = Spread(
            mean=mean,
            stdev=stdev,
            max=lat_spread.max,
            min=lat_spread.min,
            within_stdev_pct=_within_stdev_pct(pairs, mean, stdev),
        )
        hdr = _hdr_from_pairs(pairs)

    return WrkMeasurement(
        duration_s=r.count(doc, "duration_us", "") / 1e6,
        requests=r.count(doc, "requests", ""),
        bytes_read=r.count(doc, "bytes", ""),
        socket_errors=SocketErrors(
            connect=r.count(errors, "connect", "errors."),
            read=r.count(errors, "read", "errors."),
            write=r.count(errors, "write", "errors."),
            timeout=r.count(errors, "timeout", "errors."),
        ),
        non_2xx_3xx=r.count(errors, "status", "errors."),
        latency_us=lat_spread,
        latency_percentiles_us=percentiles,
        thread_rps=r.spread(doc, "thread_rps", ""),
        histogram_hdr=hdr,
        histogram_exact=exact,
        latency_samples=samples,
    )


def _grid_is_consistent(grid: list[tuple[int, int]], samples: int) -> bool:
    if not grid or grid[0][0] < 1 or grid[-1][0] != samples:
        return False
    return all(r1 > r0 and v1 >= v0 for (r0, v0), (r1, v1) in itertools.pairwise(grid))


def _pairs_from_grid(grid: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(value, count) pairs from (rank, value) points: the sample at each rank has exactly that
    value; the samples between two points are spread evenly over the values between them."""
    first_rank, first_value = grid[0]
    pairs = [(first_value, first_rank)]  # ranks below the first point hold its value
    for (r0, v0), (r1, v1) in itertools.pairwise(grid):
        between = r1 - r0 - 1
        steps = min(between, v1 - v0 + 1, _GRID_FILL_STEPS)
        for j in range(steps):
            count = between * (j + 1) // steps - between * j // steps
            pairs.append((v0 + round((j + 0.5) / steps * (v1 - v0)), count))
        pairs.append((v1, 1))
    return pairs


def _within_stdev_pct(pairs: Sequence[tuple[int, int]], mean: float, stdev: float) -> float:
    """wrk's "+/- Stdev": the share of samples within mean +- 1 stdev, inclusive."""
    total = sum(n for _, n in pairs)
    within = sum(n for v, n in pairs if mean - stdev <= v <= mean + stdev)
    return 100.0 * within / total if total else 0.0


def _hdr_from_pairs(pairs: Sequence[tuple[int, int]]) -> str:
    hist = new_histogram()
    for value, count in pairs:
        if count and not hist.record_value(max(HDR_LOWEST_US, value), count):
            raise LoadGeneratorError(
                f"wrk latency {value} us is beyond the histogram's {HDR_HIGHEST_US} us; "
                f"keep the wrk timeout at or below {MAX_TIMEOUT_S} s"
            )
    return encoded(hist)
