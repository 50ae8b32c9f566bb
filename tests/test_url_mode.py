"""`run --url`: a server the user runs, loaded only on loopback unless --allow-remote."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serverbench.apps.registry import ExpectedResponse
from serverbench.errors import UsageError
from serverbench.observe.host_limits import plan_cpu_split
from serverbench.plan.model import RunPlan, plan_jobs
from serverbench.plan.profiles import PROFILES
from serverbench.plan.resume import resume_plan
from serverbench.results.store import load, save
from serverbench.run.host import LOCAL
from serverbench.run.records import new_document
from serverbench.run.url_target import is_loopback_host, parse_target_url, target_app
from tests.conftest import run_cli

QUICK = ["--profile", "smoke", "--duration", "1", "--warmup", "0", "--repeats", "1"]
QUICK += ["--time-wait-threshold", "10000000"]  # other runs' TIME_WAIT sockets: no waiting

USERS_SERVER = """\
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"status": "ok", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.fixture
def users_server(tmp_path: Path) -> Iterator[str]:
    """A server serverbench did not start: http://127.0.0.1:PORT"""
    script = tmp_path / "users_server.py"
    script.write_text(textwrap.dedent(USERS_SERVER))
    server = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{server.stdout.readline().strip()}"
    finally:
        server.kill()
        server.wait()


@pytest.mark.integration
def test_a_url_is_verified_loaded_recorded_and_resumable(users_server: str, tmp_path: Path):
    out = tmp_path / "results"
    url = f"{users_server}/health"
    expect = '{"status": "ok", "path": "/health"}'
    done = run_cli("run", *QUICK, "--url", url, "--expect-json", expect, "--out", str(out))
    assert done.returncode == 0, done.stderr
    document = load(out)
    assert document.plan.url == url
    assert document.stacks["url"].url == url
    assert document.apps[url].interface == "http"
    assert document.references.app_cost == {}
    [run] = document.runs  # no nginx-static ceiling unless asked
    assert (run.stack, run.role, run.url, run.status) == ("url", "external", url, "ok")
    assert run.measurement is not None
    assert run.measurement.good_responses > 0
    assert run.commands == {}
    assert run.usage is not None
    assert run.usage.server.components == ()
    assert run.load_argv[-1] == url
    assert url in done.stdout

    document.status, document.runs = "interrupted", []
    save(document, out / "results.json")
    resumed = run_cli("run", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    [again] = load(out).runs
    assert (again.url, again.status) == (url, "ok")


@pytest.mark.integration
def test_a_url_that_answers_wrongly_is_refused_before_any_load(users_server: str, tmp_path):
    out = tmp_path / "results"
    started = time.monotonic()
    done = run_cli(
        "run", *QUICK, "--url", f"{users_server}/x", "--expect-status", "204", "--out", str(out)
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert "expected status 204, got status 200" in done.stderr
    assert time.monotonic() - started < 5
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://example.com/"], "not on this machine's loopback"),
        (["--url", "http://10.1.2.3:8000/"], "unless you add --allow-remote"),
        (["--url", "http://127.0.0.1.example.com/"], "not on this machine's loopback"),
        (["--url", "https://127.0.0.1/"], "only http:// URLs"),
        (["--url", "http://127.0.0.1:99999/"], "--url"),
        (
            ["--url", "http://127.0.0.1:8000/", "--stack", "bjoern"],
            "cannot be combined with --stack",
        ),
        (
            ["--url", "http://127.0.0.1:8000/", "--app", "seed-flask"],
            "cannot be combined with --app",
        ),
        (["--allow-remote"], "--allow-remote only applies to --url"),
    ],
)
def test_refused_urls_and_combinations(tmp_path: Path, args: list[str], message: str):
    out = tmp_path / "results"
    done = run_cli("run", *args, "--out", str(out))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert message in done.stderr
    assert not out.exists()


def test_a_url_with_nothing_listening_is_a_one_line_error(tmp_path: Path):

    done = run_cli("run", "--url", f"http://127.0.0.1:{LOCAL.free_port()}/", "--out", str(tmp_path))
    assert done.returncode == 1
    assert "start your server" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("LocalHost.", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("example.com", False),
    ],
)
def test_only_literal_loopback_hosts_and_localhost_count(host: str, loopback: bool):
    assert is_loopback_host(host) is loopback


def test_parse_target_url_keeps_the_path_and_query_and_the_endpoint_brackets_ipv6():
    target = parse_target_url("http://[::1]:8080/api/{msisdn}?x=1", allow_remote=False)
    assert (target.host, target.port, target.path) == ("::1", 8080, "/api/{msisdn}?x=1")
    assert str(target.front) == "[::1]:8080"
    assert parse_target_url("http://localhost", allow_remote=False).path == "/"
    assert parse_target_url("http://localhost", allow_remote=False).port == 80


def test_allow_remote_lets_a_remote_host_through_the_check():
    with pytest.raises(UsageError, match="--allow-remote"):
        parse_target_url("http://192.0.2.7:8000/", allow_remote=False)
    assert parse_target_url("http://192.0.2.7:8000/", allow_remote=True).host == "192.0.2.7"


def url_plan(tmp_path: Path, url: str, *, allow_remote: bool) -> RunPlan:
    target = parse_target_url(url, allow_remote=True)
    return RunPlan(
        stack_names=(),
        apps=(target_app(target, ExpectedResponse(status=204)),),
        profiles=(PROFILES["smoke"],),
        repeats=1,
        overrides={},
        split=plan_cpu_split([0, 1], None, None),
        out_dir=tmp_path / "results",
        references=False,
        url=url,
        allow_remote=allow_remote,
    )


def test_resume_rebuilds_the_url_target_from_the_plan(tmp_path: Path):
    plan = url_plan(tmp_path, "http://127.0.0.1:8000/health", allow_remote=False)
    save(new_document(plan, ["serverbench"]), plan.out_dir / "results.json")
    resumed, _ = resume_plan(plan.out_dir)
    assert resumed.url == plan.url
    assert [job.stack for job in plan_jobs(resumed)] == ["url"]
    assert resumed.apps[0].load_path == "/health"
    assert resumed.apps[0].expected.status == 204


def test_resume_checks_the_url_again(tmp_path: Path):
    plan = url_plan(tmp_path, "http://192.0.2.7/", allow_remote=False)
    save(new_document(plan, ["serverbench"]), plan.out_dir / "results.json")
    with pytest.raises(UsageError, match="--allow-remote"):
        resume_plan(plan.out_dir)
