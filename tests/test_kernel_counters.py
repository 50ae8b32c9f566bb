from pathlib import Path

from serverbench.observe.kernel_counters import difference, parse_netstat, read_counters

NETSTAT = """\
TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops TCPTimeouts
TcpExt: 12 0 340 345 7
IpExt: InNoRoutes InTruncatedPkts
IpExt: 0 0
"""


def test_the_listen_queue_counters_are_read_from_tcpext():
    assert parse_netstat(NETSTAT) == {
        "syncookies_sent": 12,
        "listen_overflows": 340,
        "listen_drops": 345,
    }


def test_difference_over_a_window():
    before = {"listen_overflows": 340, "listen_drops": 345, "syncookies_sent": 12}
    after = {"listen_overflows": 1340, "listen_drops": 1345, "syncookies_sent": 12}
    assert difference(before, after) == {
        "listen_overflows": 1000,
        "listen_drops": 1000,
        "syncookies_sent": 0,
    }


def test_this_hosts_counters_or_nothing(tmp_path: Path):
    assert set(read_counters()) <= {"listen_overflows", "listen_drops", "syncookies_sent"}
    assert read_counters(tmp_path / "absent") == {}
