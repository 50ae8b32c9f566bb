"""The machine lock as the commands take it: --wait-for-lock, and what the user is told.

`run`, `check` and `serve` hold it for their whole life (see serverbench.run.lock): a second
one is refused naming the first, or waits with --wait-for-lock. A lock left by a serverbench
that was killed is taken over, and whatever of its work still ran is stopped and named first.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from serverbench.results.model import Event, ProcessExit, ResultsDocument
from serverbench.results.store import results_path, save
from serverbench.run import lock
from serverbench.run.records import now


def add_lock_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait-for-lock",
        action="store_true",
        help="if another serverbench is benchmarking on this machine, wait for it to finish "
        "instead of refusing (one benchmark at a time: two would share the CPUs)",
    )


def _waiting(owner: lock.Owner | None) -> None:
    who = owner.describe() if owner else "another serverbench"
    print(
        f"waiting for {who} to finish: this machine runs one benchmark at a time",
        file=sys.stderr,
        flush=True,
    )


@contextlib.contextmanager
def exclusive(args: argparse.Namespace, argv: Sequence[str]) -> Iterator[lock.Takeover | None]:
    """Hold the machine lock for the block; warn about a dead owner's leftovers."""
    command = " ".join(["serverbench", *argv])
    with lock.machine_lock(
        command, wait=bool(getattr(args, "wait_for_lock", False)), on_wait=_waiting
    ) as takeover:
        if takeover is not None and takeover.stopped:
            print(f"warning: {takeover.describe()}", file=sys.stderr)
        yield takeover


def record_owner_gone(document: ResultsDocument, folder: Path, takeover: lock.Takeover) -> None:
    """A run left `running` by a serverbench that died: said, recorded, its leftovers stopped."""
    owner = takeover.owner
    print(f"warning: the run in {folder} lost its owner: {takeover.describe()}", file=sys.stderr)
    document.events.append(
        Event(
            at=now(),
            kind="owner_gone",
            owner_pid=owner.pid if owner else None,
            owner_command=owner.command if owner else None,
            owner_started_at=owner.started_at if owner else None,
            leftovers_stopped=tuple(
                ProcessExit(pid=m.pid, process=m.name) for m in takeover.stopped
            ),
        )
    )
    save(document, results_path(folder))
