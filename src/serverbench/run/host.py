"""The machine the servers run on: where they bind, where the load connects, how their
processes start, where their files are written, and what its kernel counts.

Everything that depends on which machine runs a stack goes through a `Host`: starting
processes, writing their generated files, sampling their resources, reading /proc. Today only
the local machine exists; a remote host is one more class with the same members, and stacks,
engines and the report do not change. Binding and connecting are separate addresses so that a
host reached over a network can bind on all its interfaces while the load connects to its
address.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from serverbench.observe import host_limits, kernel_counters
from serverbench.observe.noise import NoiseProbe
from serverbench.observe.sampler import Monitor
from serverbench.run.process import ManagedProcess
from serverbench.run.verify import accepts_connection
from serverbench.stacks.base import TcpEndpoint


class Host(Protocol):
    @property
    def bind_address(self) -> str:
        """The address servers listen on."""
        ...

    @property
    def connect_address(self) -> str:
        """The address the load and the verifier connect to."""
        ...

    def free_port(self) -> int:
        """A TCP port nothing listens on now."""
        ...

    def port_in_use(self, port: int) -> bool: ...

    def make_private_dir(self, path: Path) -> None:
        """A folder only its owner reads: logs, configs, sockets."""
        ...

    def write_file(self, path: Path, content: str) -> None:
        """A generated file (a config), readable by its owner only."""
        ...

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        cpus: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> ManagedProcess:
        """A process in its own session, output to log_path, pinned to cpus when given."""
        ...

    def sampler(self, components: Mapping[str, int]) -> Monitor:
        """A resource sampler over the process trees rooted at these pids."""
        ...

    def listen_queue_counters(self) -> dict[str, int]:
        """The kernel's counters of connections dropped before a server accepted them."""
        ...

    def noise_probe(self, server_cpus: Sequence[int], client_cpus: Sequence[int]) -> NoiseProbe:
        """What else the machine does on these CPUs while a window is measured."""
        ...

    def time_wait_count(self) -> int: ...

    def wait_for_time_wait_drain(self, threshold: int, max_wait_s: float) -> float:
        """Seconds waited until at most `threshold` TIME_WAIT sockets remain."""
        ...


@dataclass(frozen=True, slots=True)
class LocalHost:
    """This machine, on IPv4 loopback: nothing serverbench starts is reachable from outside."""

    bind_address: str = "127.0.0.1"
    connect_address: str = "127.0.0.1"

    def free_port(self) -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((self.bind_address, 0))
            port: int = sock.getsockname()[1]
            return port

    def port_in_use(self, port: int) -> bool:
        return accepts_connection(TcpEndpoint(host=self.connect_address, port=port), timeout_s=0.2)

    def make_private_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)

    def write_file(self, path: Path, content: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(content)
        path.chmod(0o600)

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        cpus: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> ManagedProcess:
        return ManagedProcess(
            name, argv, log_path=log_path, env=env, cwd=cwd, cpus=cpus, stop_signal=stop_signal
        )

    def sampler(self, components: Mapping[str, int]) -> Monitor:
        return Monitor(components)

    def listen_queue_counters(self) -> dict[str, int]:
        return kernel_counters.read_counters()

    def noise_probe(self, server_cpus: Sequence[int], client_cpus: Sequence[int]) -> NoiseProbe:
        return NoiseProbe(server_cpus, client_cpus)

    def time_wait_count(self) -> int:
        return host_limits.time_wait_count()

    def wait_for_time_wait_drain(self, threshold: int, max_wait_s: float) -> float:
        return host_limits.wait_for_time_wait_drain(threshold, max_wait_s)


LOCAL = LocalHost()
