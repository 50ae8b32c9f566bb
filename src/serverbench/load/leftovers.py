"""The connections a finished load leaves in the kernel, and their reset.

When a load generator exits, the kernel keeps closing its connections: each FIN waits for the
server's ACK. Under a load that overflows the server's listen queue (the seed's 8,000
connections) thousands of them wait for ever longer: the queue dropped the handshake's last
packet or the FIN itself, so the server still holds the connection half-made, or accepted but
not yet seen closed, and the client retransmits with an exponential back-off for minutes.
Measured with gunicorn (sync workers) and the seed's high shape
(benchmarks/leftover_connections.py, modes alternating): wrk leaves 7,000-8,000 connections
closing, most in FIN-WAIT-1; left to the kernel, gunicorn answered again 2-90 s after the
window (median 29 s, 4 rounds; its log: every worker blocked reading a request that never came,
until its 30 s timeout), with them reset after 1.6-2.4 s. That wait is the generator's
teardown, not the server's recovery; the warm-up's leftovers also arrive during the measured
window (whether that moved gunicorn's figure, its spread at 8,000 connections could not tell:
0-1,004 good req/s either way). So when a window ends serverbench resets them (`ss -K`: a RST
each, which frees the server's side at once): only sockets to the target's address and port
that are already closing, never an open connection.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

from serverbench.stacks.base import TcpEndpoint

CLOSING_STATES = ("fin-wait-1", "fin-wait-2", "closing", "last-ack")
SS_TIMEOUT_S = 10.0


def closing_argv(target: TcpEndpoint, *, kill: bool) -> tuple[str, ...]:
    """ss listing (or, with `kill`, destroying) this machine's closing TCP sockets to `target`,
    one line per socket."""
    states = [word for state in CLOSING_STATES for word in ("state", state)]
    flags = ("-K", "-tnH") if kill else ("-tnH",)
    # ss reads `host:port`, IPv6 in brackets, as the endpoint writes itself
    return ("ss", *flags, *states, "dst", str(target))


def socket_count(output: str) -> int:
    return sum(1 for line in output.splitlines() if line.strip())


def reset_outcome(reset: int, still_closing: int) -> int | None:
    """How many were reset, or None when some were left and none could be: a kernel without
    socket destruction (CONFIG_INET_DIAG_DESTROY) makes ss skip every socket silently."""
    return None if reset == 0 and still_closing > 0 else reset


def _ss(argv: tuple[str, ...]) -> int | None:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=SS_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return socket_count(done.stdout) if done.returncode == 0 else None


def reset_closing_connections(target: TcpEndpoint) -> int | None:
    """Reset the closing connections to `target`; how many, or None when it could not be done
    (no ss, a kernel without socket destruction, or not root: then nothing changes)."""
    if shutil.which("ss") is None:
        return None
    reset = _ss(closing_argv(target, kill=True))
    still_closing = _ss(closing_argv(target, kill=False))
    if reset is None or still_closing is None:
        return None
    return reset_outcome(reset, still_closing)


def reset_problem() -> str | None:
    """Why this machine cannot reset a load's closing connections, or None when it can: tried
    on a connection of its own, closed by its client before the listener accepted it."""
    if shutil.which("ss") is None:
        return "ss not found"
    try:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            target = TcpEndpoint(host="127.0.0.1", port=listener.getsockname()[1])
            socket.create_connection((target.host, target.port), timeout=1.0).close()
            for _ in range(100):  # closing once the listener's kernel acknowledged the FIN
                if _ss(closing_argv(target, kill=False)):
                    break
                time.sleep(0.01)
            reset = reset_closing_connections(target)
    except OSError as error:
        return f"could not try it on loopback ({error})"
    if reset:
        return None
    return "ss -K reset no socket (it needs root, and a kernel with CONFIG_INET_DIAG_DESTROY)"
