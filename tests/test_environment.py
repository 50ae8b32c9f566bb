"""Tests of environment: version parsing, dict round trip, old files, and collecting for real."""

from pathlib import Path

import pytest

from serverbench.observe.environment import (
    Environment,
    collect_environment,
    cpu_governor,
    cpu_model,
    nginx_version,
    os_release,
    parse_nginx_version,
    parse_wrk_version,
    wrk_version,
)

SAMPLE = Environment(
    hostname="bench1",
    cpu_model="AMD EPYC 7B13",
    cpu_count=2,
    memory_bytes=8 * 1024**3,
    kernel="6.1.0-18-amd64",
    os_release="Debian GNU/Linux 12 (bookworm)",
    python_version="3.11.7",
    python_executable="/work/main/.venv/bin/python",
    serverbench_version="0.1.0",
    wrk_version="4.1.0",
    nginx_version=None,
    packages={"gunicorn": "27.0.1", "uvicorn": "0.30.0"},
    cpu_governor="performance",
    sysctls={"net.core.somaxconn": "4096", "net.ipv4.ip_local_port_range": "32768 60999"},
    nofile_soft=65536,
    nofile_hard=65536,
    started_at="2025-01-02T03:04:05+00:00",
)


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("wrk 4.1.0 [epoll] Copyright (C) 2012 Will Glozer\nUsage: wrk <options> <url>\n", "4.1.0"),
        ("wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer\n", "debian/4.1.0-3+b2"),
        ("\nwrk 4.2.0 [kqueue] Copyright\n", "4.2.0"),
        ("command not found", None),
    ],
)
def test_parse_wrk_version(output: str, version: str | None) -> None:
    assert parse_wrk_version(output) == version


def test_parse_nginx_version() -> None:
    assert parse_nginx_version("\nnginx version: nginx/1.22.1\n") == "1.22.1"
    assert parse_nginx_version("nginx version: openresty/1.25.3.1\n") == "1.25.3.1"
    assert parse_nginx_version("") is None


def test_missing_tools_are_none() -> None:
    assert wrk_version("/nonexistent/wrk") is None
    assert nginx_version("serverbench-no-such-tool") is None


def test_files_missing_fall_back(tmp_path: Path) -> None:
    assert cpu_governor(tmp_path / "none") is None
    assert cpu_model(tmp_path / "none")
    assert os_release(tmp_path / "none")
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Test CPU @ 3GHz\n")
    assert cpu_model(tmp_path / "cpuinfo") == "Test CPU @ 3GHz"
    (tmp_path / "os-release").write_text('NAME="X"\nPRETTY_NAME="X Linux 1"\n')
    assert os_release(tmp_path / "os-release") == "X Linux 1"


def test_collect_environment_on_this_host() -> None:
    env = collect_environment()
    assert env.cpu_count >= 1
    assert env.memory_bytes > 0
    assert env.python_executable
    assert "psutil" in env.packages
    if Path("/proc/sys/net/core/somaxconn").exists():
        assert env.sysctls["net.core.somaxconn"].isdigit()
    assert env.started_at.endswith("+00:00")
