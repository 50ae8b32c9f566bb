"""`serverbench run` end to end, with real servers, real wrk and real signals."""

import json
import signal
from pathlib import Path

import pytest

from serverbench.results.store import SCHEMA_VERSION, load, save
from tests.conftest import interrupted, processes_mentioning, run_cli

pytestmark = pytest.mark.integration

# TIME_WAIT sockets of earlier tests must not make these wait: the drain has its own tests
NO_DRAIN = ("--time-wait-threshold", "10000000")


def test_smoke_run_of_the_seed_stacks_records_every_field(tmp_path: Path):
    out = tmp_path / "results"
    done = run_cli("run", "--profile", "smoke", "--repeats", "1", "--out", str(out), *NO_DRAIN)
    assert done.returncode == 0, done.stderr
    document = load(out)
    assert document.status == "complete"
    assert json.loads((out / "results.json").read_text())["schema_version"] == SCHEMA_VERSION
    assert document.capacity is None  # a run given a --profile searches no capacity unless asked
    environment = document.environment
    assert environment.wrk_version
    assert environment.cpu_count >= 1
    assert environment.packages["gunicorn"]
    assert document.cpu_split.server_cpus != document.cpu_split.client_cpus
    assert document.references.app_cost["seed-flask"].calls_per_sec > 0
    runs = {run.stack: run for run in document.runs}
    assert set(runs) == {"gunicorn", "uvicorn", "bjoern", "nginx-static"}
    assert runs["nginx-static"].role == "reference"
    for stack, run in runs.items():
        assert run.status == "ok", (stack, run.failure)
        measured = run.measurement
        assert measured is not None
        assert run.wrk is not None
        assert run.cpus is not None
        assert (measured.engine, measured.loop) == ("wrk", "closed")
        assert measured.requests > 0
        assert measured.latency_histogram_hdr
        assert set(measured.latency_percentiles_us) >= {"50", "90", "99", "99.9"}
        assert measured.requests_per_sec > 0
        assert measured.good_responses <= measured.requests
        assert run.commands
        assert run.load_argv[:3] == ("taskset", "-c", run.cpus.client)
        assert run.usage is not None
        assert run.usage.client.components[0].name == "wrk"
        assert run.noise is not None
        assert run.noise.server.cpus == document.cpu_split.server_cpus
        assert run.noise.window_s > 0
        assert run.leftover_connections_reset is not None  # ss -K ran after the window
    assert {f.check for f in document.doctor} >= {"CPU steal", "somaxconn", "wrk"}
    assert "a2wsgi" in runs["uvicorn"].notes[0]
    assert int(runs["gunicorn"].settings["workers"]) >= 1
    assert "gunicorn" in done.stdout
    assert "results:" in done.stdout
    assert not processes_mentioning(str(out))


def test_precision_adds_rounds_until_the_cap_and_says_which_cells_did_not_reach_it(
    tmp_path: Path,
):
    out = tmp_path / "results"
    done = run_cli(
        "run", "--stack", "bjoern", "--profile", "smoke", "--no-references", "--repeats", "1",
        "--precision", "50%", "--max-repeats", "3", "--out", str(out), *NO_DRAIN,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = load(out)
    # a 95 % interval needs 6 repeats: the cap of 3 stops it first, in rounds 2 and 3
    assert sorted(run.round for run in document.runs) == [1, 2, 3]
    assert document.plan.precision is not None
    assert document.plan.precision.target_pct == 50.0
    assert document.precision is not None
    [missed] = document.precision.not_reached
    assert missed.stack == "bjoern"
    assert missed.why.endswith("the cap of 3 repeats was reached")
    assert "did not reach ±50 % (--precision)" in (out / "report.md").read_text()
    assert "(75 % CI, 3 repeats)" in done.stdout


def test_a_stack_that_dies_at_start_is_recorded_failed_and_the_others_still_run(tmp_path: Path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    # imports fine when serverbench probes it, but not under gunicorn
    (app_dir / "picky.py").write_text(
        "import sys\n"
        "if 'gunicorn' in sys.modules:\n"
        "    raise RuntimeError('no gunicorn for me')\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'application/json')])\n"
        '    return [b\'{"status": "ok"}\']\n'
    )
    out = tmp_path / "results"
    done = run_cli(
        "run", "--profile", "smoke", "--repeats", "1", "--no-references",
        "--stack", "gunicorn,bjoern", "--app", "picky:app", "--app-dir", str(app_dir),
        "--expect-json", '{"status": "ok"}', "--out", str(out), *NO_DRAIN,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = {run["stack"]: run for run in json.loads((out / "results.json").read_text())["runs"]}
    assert runs["gunicorn"]["status"] == "failed"
    assert runs["gunicorn"]["failure"]["kind"] == "start"
    assert "no gunicorn for me" in runs["gunicorn"]["failure"]["message"]
    assert runs["gunicorn"]["measurement"] is None
    assert runs["bjoern"]["status"] == "ok"
    assert "FAILED" in done.stdout
    assert not processes_mentioning(str(out))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_keeps_its_results_leaves_nothing_and_resumes(tmp_path: Path, signum):
    out = tmp_path / "results"
    args = [
        "run", "--profile", "smoke", "--repeats", "2", "--stack", "bjoern,uvicorn",
        "--no-references", "--out", str(out), *NO_DRAIN,
    ]  # fmt: skip
    code, stderr = interrupted(
        args,
        out / "results.json",
        lambda document: len(document["runs"]) >= 1,
        timeout_s=60,
        signum=signum,
    )
    assert code == 130, stderr
    assert "interrupted" in stderr
    document = json.loads((out / "results.json").read_text())
    assert document["status"] == "interrupted"
    kept = [run["id"] for run in document["runs"]]
    assert 1 <= len(kept) < 4
    assert not processes_mentioning(str(out))
    assert [p.name for p in out.iterdir() if p.name.startswith(".results-")] == []

    done = run_cli("run", "--resume", str(out))
    assert done.returncode == 0, done.stderr
    final = json.loads((out / "results.json").read_text())
    assert final["status"] == "complete"
    ids = [run["id"] for run in final["runs"]]
    assert ids[: len(kept)] == kept
    assert len(ids) == len(set(ids)) == 4
    assert not processes_mentioning(str(out))


def test_resume_of_a_complete_run_is_refused(tmp_path: Path):
    out = tmp_path / "results"
    out.mkdir()
    complete = load(Path(__file__).parent / "data" / "results" / "smoke-3stacks.json")
    assert complete.status == "complete"
    save(complete, out / "results.json")
    for report in ("report.md", "report.html"):
        (out / report).write_text("")  # its reports were written (else --resume writes them)
    done = run_cli("run", "--resume", str(out))
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert "nothing to resume" in done.stderr
    assert f"serverbench report {out}" in done.stderr
