"""The command line: argv -> the right command, errors as one line, exit codes.

    serverbench stacks | doctor | check | serve | run | report | compare

Only ServerbenchError is caught and printed as `error: ...`; anything else is a bug and keeps
its traceback. Ctrl-C and SIGTERM stop every process serverbench started before it exits; a
SIGKILL does too, through the guardian (run/guardian.py).
Files serverbench and its children create are owner-only (umask 077).
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from serverbench import __version__
from serverbench.commands import COMMANDS
from serverbench.errors import ServerbenchError, UsageError
from serverbench.observe.host_limits import raise_nofile_limit
from serverbench.run import guardian, process

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serverbench",
        description="Which Python server, settings and topology should my app run on, and what will it hold?",
    )
    parser.add_argument("--version", action="version", version=f"serverbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # what the machine lock shows as its owner's command
    args.argv = list(argv if argv is not None else sys.argv[1:])
    handler: Handler = args.handler
    previous = signal.signal(signal.SIGTERM, _terminate)
    # a shell that starts us in the background ignores SIGINT for us; Ctrl-C must still stop
    # everything we started
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    # configs, logs and results, ours and our children's, are for this user only
    previous_umask = os.umask(0o077)
    atexit.register(process.stop_all)
    atexit.register(guardian.shutdown)
    raise_nofile_limit()
    try:
        return handler(args)
    except ServerbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    except KeyboardInterrupt:
        print("interrupted; stopping everything serverbench started", file=sys.stderr)
        return 130
    finally:
        process.stop_all()
        guardian.shutdown()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        os.umask(previous_umask)
