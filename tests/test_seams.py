"""The seams of the house: a second load engine and a second host plug into the runner
without a change to stacks, engines or the report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import pytest

from serverbench.apps.registry import BUILTIN_APPS
from serverbench.load.engine import EngineRun, LoadRequest, OnStart
from serverbench.observe.host_limits import CpuSplit
from serverbench.observe.sampler import Monitor
from serverbench.plan.model import RunPlan
from serverbench.plan.profiles import PROFILES
from serverbench.report import write_reports
from serverbench.results.model import ErrorCounts, measurement_of
from serverbench.results.store import load
from serverbench.run.host import LocalHost
from serverbench.run.process import ManagedProcess
from serverbench.run.records import new_document
from serverbench.run.runner import Runner

pytestmark = pytest.mark.integration


class CountingEngine:
    """An open-loop engine that sends nothing: it answers every request it was asked for."""

    name = "counting"
    loop: Literal["open"] = "open"

    def __init__(self) -> None:
        self.requests: list[tuple[str, LoadRequest]] = []

    def check_available(self) -> None:
        return None

    def run(
        self,
        request: LoadRequest,
        *,
        out_dir: Path,
        label: str,
        cpus: str | None,
        on_start: OnStart | None = None,
    ) -> EngineRun:
        self.requests.append((label, request))
        if on_start is not None:
            on_start([])
        rate = request.rate_per_s or 1000.0
        sent = int(rate * request.duration_s)
        measurement = measurement_of(
            engine=self.name,
            loop="open",
            duration_s=request.duration_s,
            connections=request.connections,
            requests=sent,
            errors=ErrorCounts(),
            bytes_read=sent * 40,
            latency_percentiles_us={"50": 800.0, "99": 2500.0},
            offered_rate_per_s=rate,
        )
        return EngineRun(measurement=measurement, argv=("counting", f"--rate={rate:g}"))


class RecordingHost(LocalHost):
    """This machine, with a log of every process started, file written and sampler made."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "log", [])

    def spawn(self, name: str, argv: Sequence[str], **options: object) -> ManagedProcess:
        self.log.append(("spawn", name))  # type: ignore[attr-defined]
        return super().spawn(name, argv, **options)  # type: ignore[arg-type]

    def write_file(self, path: Path, content: str) -> None:
        self.log.append(("write", path.name))  # type: ignore[attr-defined]
        super().write_file(path, content)

    def sampler(self, components: Mapping[str, int]) -> Monitor:
        self.log.append(("sample", tuple(components)))  # type: ignore[attr-defined]
        return super().sampler(components)


def test_a_second_engine_and_a_second_host_run_a_plan_through_the_runner(tmp_path: Path):
    profile = PROFILES["smoke"]
    plan = RunPlan(
        stack_names=("bjoern",),
        apps=(BUILTIN_APPS["seed-flask"],),
        profiles=(profile,),
        repeats=2,
        overrides={},
        split=CpuSplit(server_cpus=(0,), client_cpus=(1,), shared=False),
        out_dir=tmp_path,
        references=False,
    )
    engine, host = CountingEngine(), RecordingHost()
    document = Runner(plan, new_document(plan, ["test"]), engine=engine, host=host).run()

    phases = ["primer", "warmup", "measure"][0 if profile.primer_s > 0 else 1 :]
    assert [label for label, _ in engine.requests] == phases * 2
    assert host.log.count(("spawn", "bjoern")) == 2  # type: ignore[attr-defined]
    assert ("sample", ("bjoern",)) in host.log  # type: ignore[attr-defined]
    stored = load(tmp_path)
    assert [run.status for run in stored.runs] == ["ok", "ok"]
    for run in stored.runs:
        assert run.measurement is not None
        assert (run.measurement.engine, run.measurement.loop) == ("counting", "open")
        assert run.measurement.good_responses == run.measurement.requests > 0
        assert run.wrk is None
        assert run.load_argv[0] == "counting"
    assert document.status == "complete"
    written = write_reports(stored, tmp_path)
    markdown = next(path for path in written if path.suffix == ".md").read_text()
    assert "bjoern" in markdown
