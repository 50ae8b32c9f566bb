import dataclasses
import subprocess

import pytest

from serverbench.observe.doctor import (
    CHECKS,
    Finding,
    HostFacts,
    diagnose,
    read_host_facts,
    render,
    warnings_of,
)
from serverbench.observe.noise import ForeignProcess
from tests.conftest import SERVERBENCH

READY = HostFacts(
    cpu_count=2,
    governors={0: "performance", 1: "performance"},
    boost_file="/sys/devices/system/cpu/intel_pstate/no_turbo",
    boost_on=False,
    sample_s=1.0,
    steal_share=0.001,
    busy_processes=(),
    sysctls={
        "net.core.somaxconn": "65535",
        "net.ipv4.tcp_max_syn_backlog": "65535",
        "net.ipv4.ip_local_port_range": "1024 65535",
    },
    nofile_soft=1024,
    nofile_hard=1_048_576,
    transparent_hugepages="madvise",
    swap_total_bytes=0,
    swap_used_bytes=0,
    wrk="/usr/bin/wrk",
    nginx="/usr/sbin/nginx",
)


def _statuses(facts: HostFacts, connections: int = 8000) -> dict[str, str]:
    return {f.check: f.status for f in diagnose(facts, connections)}


def test_a_ready_machine_is_ok_everywhere():
    assert set(_statuses(READY).values()) == {"ok"}
    assert warnings_of(diagnose(READY, 8000)) == []


@pytest.mark.parametrize(
    ("change", "check", "status", "fix"),
    [
        ({"governors": {0: "powersave", 1: "performance"}}, "CPU governor", "warn", "performance"),
        ({"boost_on": True}, "turbo boost", "warn", "echo 1 | sudo tee"),
        ({"steal_share": 0.08}, "CPU steal", "warn", "--precision"),
        (
            {"busy_processes": (ForeignProcess(pid=77, name="backup", cpu_s=0.5, cpu=0),)},
            "busy processes",
            "warn",
            "(pids 77)",
        ),
        (
            {"sysctls": {**READY.sysctls, "net.core.somaxconn": "4096"}},
            "somaxconn",
            "warn",
            "sysctl -w net.core.somaxconn=8000",
        ),
        (
            {"sysctls": {**READY.sysctls, "net.ipv4.tcp_max_syn_backlog": "2048"}},
            "SYN backlog",
            "warn",
            "tcp_max_syn_backlog=8000",
        ),
        (
            {"sysctls": {**READY.sysctls, "net.ipv4.ip_local_port_range": "32768 40000"}},
            "local port range",
            "warn",
            "1024 65535",
        ),
        ({"nofile_hard": 4096}, "open files (ulimit -n)", "fail", "ulimit -n 8256"),
        ({"transparent_hugepages": "always"}, "transparent hugepages", "warn", "madvise"),
        ({"swap_total_bytes": 2**30, "swap_used_bytes": 2**27}, "swap", "warn", "swapoff"),
        ({"wrk": None}, "wrk", "fail", "apt-get install wrk"),
        ({"nginx": None}, "nginx", "warn", "apt-get install nginx"),
        ({"socket_reset_problem": "ss -K reset no socket"}, "socket reset", "warn", "root"),
    ],
)
def test_each_check_fires_on_its_evidence_with_the_command_that_fixes_it(
    change, check, status, fix
):
    facts = dataclasses.replace(READY, **change)
    findings = {f.check: f for f in diagnose(facts, 8000)}
    assert findings[check].status == status
    assert fix in findings[check].fix
    others = {name: f.status for name, f in findings.items() if name != check}
    assert set(others.values()) == {"ok"}


def test_what_a_vm_does_not_expose_is_info_not_a_warning():
    vm = dataclasses.replace(
        READY, governors={}, boost_file=None, boost_on=None, transparent_hugepages=None
    )
    statuses = _statuses(vm)
    assert statuses["CPU governor"] == "info"
    assert statuses["turbo boost"] == "info"
    assert statuses["transparent hugepages"] == "info"


def test_limits_follow_the_connections_asked_for():
    small = dataclasses.replace(READY, sysctls={**READY.sysctls, "net.core.somaxconn": "4096"})
    assert _statuses(small, connections=1000)["somaxconn"] == "ok"
    assert _statuses(small, connections=8000)["somaxconn"] == "warn"
    no_reset = dataclasses.replace(READY, socket_reset_problem="ss not found")
    assert _statuses(no_reset, connections=100)["socket reset"] == "info"
    assert _statuses(no_reset, connections=1000)["socket reset"] == "warn"


def test_every_check_is_listed_once_and_the_rendering_shows_why_and_fix():
    names = [finding.check for finding in diagnose(READY, 8000)]
    assert len(set(names)) == len(names) == len(CHECKS)
    text = render(
        [
            Finding(check="wrk", status="ok", found="/usr/bin/wrk"),
            Finding(check="swap", status="warn", found="1 MiB used", why="slow", fix="swapoff"),
        ]
    )
    assert text.splitlines() == [
        "ok    wrk   /usr/bin/wrk",
        "warn  swap  1 MiB used",
        "            why: slow",
        "            fix: swapoff",
    ]


def test_reading_this_host_never_fails():
    facts = read_host_facts(sample_s=0.05)
    assert facts.cpu_count >= 1
    assert len(diagnose(facts, 8000)) == len(CHECKS)


def test_doctor_command_prints_every_check():
    done = subprocess.run(
        [*SERVERBENCH, "doctor", "--sample", "0.1"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode in (0, 1), done.stderr
    assert "somaxconn" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith(("ready", "not ready"))
