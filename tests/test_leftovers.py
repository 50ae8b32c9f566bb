"""The load's leftover connections: the reset command, and the reset against the real kernel."""

import os
import socket
import subprocess
import time

import pytest

from serverbench.load.leftovers import (
    closing_argv,
    reset_closing_connections,
    reset_outcome,
    reset_problem,
    socket_count,
)
from serverbench.stacks.base import TcpEndpoint


def test_the_reset_names_only_closing_sockets_to_the_target():
    argv = closing_argv(TcpEndpoint(host="127.0.0.1", port=8123), kill=True)
    assert argv[:3] == ("ss", "-K", "-tnH")
    assert closing_argv(TcpEndpoint(host="127.0.0.1", port=8123), kill=False)[:2] == ("ss", "-tnH")
    assert argv[-2:] == ("dst", "127.0.0.1:8123")
    states = [argv[i + 1] for i, word in enumerate(argv) if word == "state"]
    assert states == ["fin-wait-1", "fin-wait-2", "closing", "last-ack"]  # never established


def test_an_ipv6_target_is_bracketed_as_ss_parses_it():
    assert closing_argv(TcpEndpoint(host="::1", port=80), kill=True)[-1] == "[::1]:80"


def test_the_count_is_one_per_socket_line():
    assert socket_count("") == 0
    assert socket_count("FIN-WAIT-1 0 1 127.0.0.1:5 127.0.0.1:80\nFIN-WAIT-2 0 0 a b\n\n") == 2


def test_a_kernel_that_destroys_nothing_is_told_apart_from_nothing_to_reset():
    assert reset_outcome(0, 0) == 0  # nothing was closing
    assert reset_outcome(7500, 0) == 7500
    assert reset_outcome(0, 7500) is None  # ss skipped them all: not supported here


def _client_states(port: int) -> list[str]:
    out = subprocess.run(
        ["ss", "-tanH", "dst", "127.0.0.1", "dport", "=", f":{port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@pytest.mark.integration
def test_closed_connections_the_server_never_accepted_are_reset_and_open_ones_kept():
    # a server that accepts nothing yet: the clients' closes wait in FIN-WAIT-2 until it
    # does, like the leftovers of an overloaded listen queue (theirs mostly in FIN-WAIT-1)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        live = socket.create_connection(("127.0.0.1", port))
        for _ in range(3):
            socket.create_connection(("127.0.0.1", port)).close()
        deadline = time.monotonic() + 5
        while _client_states(port).count("FIN-WAIT-2") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        reset = reset_closing_connections(TcpEndpoint(host="127.0.0.1", port=port))
        if reset is None:
            pytest.skip("this kernel or user cannot destroy sockets (ss -K)")
        assert reset == 3
        assert _client_states(port) == ["ESTAB"]  # the open connection is untouched
        live.close()


@pytest.mark.integration
def test_the_probe_finds_that_this_machine_can_reset_as_root():
    if os.geteuid() != 0:
        pytest.skip("destroying sockets needs root")
    assert reset_problem() is None
