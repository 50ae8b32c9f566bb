"""Pure tests of host_limits: CPU lists and splits, /proc/net/tcp parsing, the drain wait."""

from pathlib import Path

import pytest

from serverbench.errors import UsageError
from serverbench.observe.host_limits import (
    TCP_ESTABLISHED,
    TCP_TIME_WAIT,
    CpuSplit,
    backlog_warnings_for,
    check_connections_fit,
    count_state,
    format_cpu_list,
    parse_cpu_list,
    parse_proc_net_tcp,
    plan_cpu_split,
    raise_nofile_limit,
    read_proc_net_tcp,
    read_sysctls,
    time_wait_count,
    wait_for_time_wait_drain,
)

# Captured from a host during a benchmark (trailing spaces trimmed).
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1521 1 00000000aa7e426d 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 48213 1 0000000012345678 20 4 30 10 -1
   2: 0100007F:BBD0 0100007F:47D7 06 00000000:00000000 03:00000F73 00000000     0        0 0 3 0000000061ff816a
   3: 0100007F:BBD4 0100007F:47D7 06 00000000:00000000 03:000012E4 00000000     0        0 0 3 00000000e37f4396
"""

PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D2A4 06 00000000:00000000 03:00000F00 00000000     0        0 0 3 0000000000000000
"""


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0", (0,)),
        ("0-3", (0, 1, 2, 3)),
        ("0,2,5", (0, 2, 5)),
        ("0-1,4", (0, 1, 4)),
        (" 3 , 1 ", (1, 3)),
        ("2,2,1-2", (1, 2)),
    ],
)
def test_parse_cpu_list(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize("text", ["", "a", "1-", "-1", "3-1", "0,,1", "1.5", "0-x"])
def test_parse_cpu_list_rejects_bad_input(text: str) -> None:
    with pytest.raises(UsageError, match="--server-cpus"):
        parse_cpu_list(text, "--server-cpus")


@pytest.mark.parametrize(
    ("cpus", "text"),
    [((0,), "0"), ((0, 1, 2), "0-2"), ((0, 2), "0,2"), ((0, 2, 3, 4, 7), "0,2-4,7"), ((), "")],
)
def test_format_cpu_list(cpus: tuple[int, ...], text: str) -> None:
    assert format_cpu_list(cpus) == text


@pytest.mark.parametrize(
    ("n", "server", "client"),
    [(2, "0", "1"), (3, "0-1", "2"), (4, "0-2", "3"), (8, "0-5", "6-7"), (12, "0-7", "8-11")],
)
def test_default_split(n: int, server: str, client: str) -> None:
    split = plan_cpu_split(range(n), None, None)
    assert split.server_taskset() == server
    assert split.client_taskset() == client
    assert not split.shared


def test_default_split_on_one_cpu_is_shared() -> None:
    split = plan_cpu_split([0], None, None)
    assert split == CpuSplit(server_cpus=(0,), client_cpus=(0,), shared=True)


def test_default_split_on_non_contiguous_affinity() -> None:
    split = plan_cpu_split([0, 2, 3], None, None)
    assert split.server_cpus == (0, 2)
    assert split.client_cpus == (3,)


def test_explicit_split() -> None:
    split = plan_cpu_split(range(4), "0,2", "1,3")
    assert (split.server_taskset(), split.client_taskset(), split.shared) == ("0,2", "1,3", False)


def test_one_side_given_other_gets_the_rest() -> None:
    split = plan_cpu_split(range(4), "0", None)
    assert split.client_cpus == (1, 2, 3)
    split = plan_cpu_split(range(4), None, "3")
    assert split.server_cpus == (0, 1, 2)


def test_one_side_takes_all_cpus_other_shares() -> None:
    split = plan_cpu_split(range(2), "0-1", None)
    assert split.client_cpus == (0, 1)
    assert split.shared


def test_user_chosen_overlap_is_shared() -> None:
    assert plan_cpu_split(range(2), "0", "0").shared


def test_unavailable_cpu_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        plan_cpu_split([0, 1], "7", None)
    assert str(info.value).startswith(
        "--server-cpus 7: CPU 7 is not available here (available: 0-1)"
    )
    with pytest.raises(UsageError, match=r"--client-cpus 1-3: CPUs 2-3 are not available"):
        plan_cpu_split([0, 1], None, "1-3")


def test_no_available_cpu_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        plan_cpu_split([], None, None)


def test_parse_proc_net_tcp() -> None:
    sockets = parse_proc_net_tcp(PROC_NET_TCP)
    assert [s.state for s in sockets] == [0x0A, TCP_ESTABLISHED, TCP_TIME_WAIT, TCP_TIME_WAIT]
    assert sockets[1].inode == 48213
    assert count_state(PROC_NET_TCP, TCP_TIME_WAIT) == 2
    assert count_state(PROC_NET_TCP6, TCP_TIME_WAIT) == 1
    assert parse_proc_net_tcp("") == []
    assert parse_proc_net_tcp(PROC_NET_TCP.splitlines()[0] + "\n   9: garbage\n") == []


def test_time_wait_count_reads_both_files(tmp_path: Path) -> None:
    (tmp_path / "tcp").write_text(PROC_NET_TCP)
    (tmp_path / "tcp6").write_text(PROC_NET_TCP6)
    files = (tmp_path / "tcp", tmp_path / "tcp6", tmp_path / "missing")
    assert time_wait_count(files) == 3
    assert count_state(read_proc_net_tcp(files), TCP_ESTABLISHED) == 1


def test_time_wait_count_on_this_host() -> None:
    assert time_wait_count() >= 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_drain_returns_at_once_when_below_threshold() -> None:
    fake = FakeClock()
    waited = wait_for_time_wait_drain(
        100, 30.0, sleep=fake.sleep, clock=fake.clock, count=lambda: 50
    )
    assert waited == 0.0
    assert fake.sleeps == []


def test_drain_waits_until_count_drops() -> None:
    fake = FakeClock()
    counts = iter([5000, 3000, 1000, 90])
    waited = wait_for_time_wait_drain(
        100, 30.0, sleep=fake.sleep, clock=fake.clock, count=lambda: next(counts), poll_s=0.5
    )
    assert waited == pytest.approx(1.5)


def test_drain_gives_up_at_max_wait() -> None:
    fake = FakeClock()
    waited = wait_for_time_wait_drain(
        100, 2.2, sleep=fake.sleep, clock=fake.clock, count=lambda: 5000, poll_s=0.5
    )
    assert waited == pytest.approx(2.2)
    assert fake.sleeps[-1] == pytest.approx(0.2)


def test_backlog_warnings_name_the_fix() -> None:
    sysctls = {"net.core.somaxconn": "128", "net.ipv4.tcp_max_syn_backlog": "4096"}
    warnings = backlog_warnings_for(1000, sysctls)
    assert len(warnings) == 1
    assert "sysctl -w net.core.somaxconn=1000" in warnings[0]
    assert backlog_warnings_for(100, sysctls) == []
    assert len(backlog_warnings_for(5000, sysctls)) == 2
    assert backlog_warnings_for(5000, {}) == []


def test_read_sysctls_omits_missing(tmp_path: Path) -> None:
    (tmp_path / "net" / "core").mkdir(parents=True)
    (tmp_path / "net" / "core" / "somaxconn").write_text("4096\n")
    (tmp_path / "net" / "ipv4").mkdir()
    (tmp_path / "net" / "ipv4" / "ip_local_port_range").write_text("32768\t60999\n")
    assert read_sysctls(proc_sys=tmp_path) == {
        "net.core.somaxconn": "4096",
        "net.ipv4.ip_local_port_range": "32768 60999",
    }


def test_raise_nofile_limit_reaches_hard() -> None:
    soft, hard = raise_nofile_limit()
    assert soft == hard or hard == -1


def test_check_connections_fit() -> None:
    check_connections_fit(10)
    soft, _ = raise_nofile_limit()
    if soft == -1:
        pytest.skip("unlimited open files")
    with pytest.raises(UsageError, match=r"ulimit -n") as info:
        check_connections_fit(soft)
    assert str(soft) in str(info.value)
    assert "limits.conf" in str(info.value)
