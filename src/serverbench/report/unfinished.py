"""What a report says first about a run that has not finished: still going, or interrupted
and how to continue it.

results.json alone cannot tell a run that is still going from one whose serverbench was
killed (SIGKILL leaves it marked `running`); the command that renders the report asks the
folder's owner lock (run/lock.py) and passes what it learned here.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from serverbench.results.model import ResultsDocument
from serverbench.run.lock import FolderOwner

SO_FAR = "The figures below are what it measured until then."


def resume_command(document: ResultsDocument, folder: Path) -> str:
    """The command that continues the run: capacity searches resume with `capacity`."""
    command = "capacity" if document.command[1:2] == ("capacity",) else "run"
    return f"serverbench {command} --resume {shlex.quote(str(folder))}"


def unfinished_note(document: ResultsDocument, folder: Path, owner: FolderOwner) -> str | None:
    """None for a complete run; else what the reader must know before any figure."""
    if document.status == "complete":
        return None
    who = owner.owner.describe() if owner.owner else "the serverbench that ran it"
    if owner.alive:  # also a resume that has not yet saved its `running`
        return (
            f"This run is still going: {who}. The figures below are what it had measured when "
            "this report was written."
        )
    resume = f"Continue it with `{resume_command(document, folder)}`."
    if document.status == "interrupted":
        return (
            "This run was interrupted before it finished (Ctrl-C, SIGTERM or an error). "
            f"{SO_FAR} {resume}"
        )
    if owner.alive is None:
        return (
            "results.json says this run is still going, but its folder names no owner to ask "
            "(written by an older serverbench, or copied): if none is writing it any more, it "
            f"was interrupted. {SO_FAR} {resume}"
        )
    gone = (
        f"its owner {who} is gone (killed before it could mark the run)"
        if owner.owner
        else f"{who} has ended without marking it"
    )
    return (
        f"This run was interrupted: results.json still says running, but {gone}. {SO_FAR} {resume}"
    )
