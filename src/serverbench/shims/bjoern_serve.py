"""Run a WSGI app on bjoern: one process, or N forked processes sharing the port (SO_REUSEPORT).

    python -m serverbench.shims.bjoern_serve APP HOST PORT [--processes N] [--backlog N]

bjoern ignores SIGINT while keep-alive clients stay connected, so serverbench stops it with
SIGTERM; with several processes the parent forwards SIGTERM to its children and waits.
"""

import argparse
import contextlib
import os
import signal
import sys
from types import FrameType

import bjoern

from serverbench.shims.loader import load_object


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bjoern_serve")
    parser.add_argument("app")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--backlog", type=int, default=1024)
    args = parser.parse_args(argv)
    app = load_object(args.app)
    if args.processes == 1:
        bjoern.run(app, args.host, args.port, listen_backlog=args.backlog)
        return 0
    children: list[int] = []
    for _ in range(args.processes):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            bjoern.run(app, args.host, args.port, reuse_port=True, listen_backlog=args.backlog)
            os._exit(0)
        children.append(pid)

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        os.waitpid(child, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
