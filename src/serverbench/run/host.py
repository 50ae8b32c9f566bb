"""The machine the servers run on: where they bind, where the load connects, free ports.

Everything that depends on which machine runs a stack goes through a `Host`: today only the
local one exists. Binding and connecting are separate addresses so that a host reached over a
network can bind on all its interfaces while the load connects to its address.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Protocol

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


LOCAL = LocalHost()
