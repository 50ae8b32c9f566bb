"""`serverbench report` on a run that has not finished: still going, or interrupted (Ctrl-C, or
a serverbench killed with -9 that left results.json saying `running`) with the command that
continues it. The owner is asked through the results folder's lock, held by a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from serverbench.cli import main
from serverbench.report.unfinished import unfinished_note
from serverbench.results.store import load, save
from serverbench.run import guardian, lock

DATA = Path(__file__).parent / "data" / "results"
UNKNOWN = lock.FolderOwner(alive=None, owner=None)  # no owner file
ENDED = lock.FolderOwner(alive=False, owner=None)  # released by a clean end

OWNER = """\
import sys, time
from pathlib import Path
from serverbench.run import lock

lock.run_lock(Path(sys.argv[1]), "serverbench run --out " + sys.argv[1])
print("owned", flush=True)
time.sleep(600)
"""


@pytest.fixture
def running(tmp_path: Path) -> Path:
    """A results folder whose results.json says `running`, as a live or killed run leaves it."""
    document = load(DATA / "smoke-3stacks.json")
    document.status = "running"
    folder = tmp_path / "results"
    save(document, folder / "results.json")
    return folder


@pytest.fixture
def owner(running: Path) -> Iterator[subprocess.Popen[str]]:
    """A process owning the folder as `serverbench run` does; killed at the end if still alive."""
    child = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(running)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "owned\n"
    yield child
    if child.poll() is None:
        child.kill()
    child.wait()


def report(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """The Markdown report written and what the command said on stderr."""
    assert main(["report", str(folder), "--format", "md"]) == 0
    return (folder / "report.md").read_text(), capsys.readouterr().err


def test_a_run_whose_owner_was_killed_is_reported_interrupted_with_the_resume_command(
    running: Path, owner: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    text, err = report(running, capsys)
    note = text.split("\n\n")[1]  # first, under the title
    assert note.startswith("**Note:** This run was interrupted: results.json still says running")
    assert f"pid {owner.pid}" in note
    assert "is gone" in note
    assert f"`serverbench run --resume {running}`" in note
    assert "still going" not in text.replace("still says running", "")
    assert "(status: interrupted)" in text
    assert load(running / "results.json").status == "running"  # left for --resume to record
    assert err.startswith("warning: this run was interrupted: ")
    assert f"serverbench run --resume {running}" in err


def test_a_run_still_going_is_said_so_and_not_called_interrupted(
    running: Path, owner: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text, err = report(running, capsys)
    assert (
        f"**Note:** This run is still going: `serverbench run --out {running}` (pid {owner.pid}"
        in text
    )
    assert "interrupted" not in text
    assert "--resume" not in text
    assert "(status: running)" in text
    assert err.startswith("warning: this run is still going")


def test_a_recycled_pid_does_not_keep_a_dead_owner_alive(
    running: Path, owner: subprocess.Popen[str]
) -> None:
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    path = running / lock.RUN_LOCK_NAME
    # the dead owner's line, with the pid of a live process (this one) that started at another
    # time: the lock says dead whatever the pid, and the pid check compares start times
    line = path.read_text().splitlines()[0]
    recycled = line.replace(f'"pid": {owner.pid}', f'"pid": {os.getpid()}')
    path.write_text(recycled + "\n")
    found = lock.folder_owner(running)
    assert found.alive is False
    assert found.owner is not None
    assert found.owner.pid == os.getpid()
    assert not lock._started_as(found.owner)
    me = replace(found.owner, start_ticks=guardian.start_ticks(os.getpid()) or 0)
    assert lock._started_as(me)


def test_a_folder_without_an_owner_file_and_a_released_one(running: Path) -> None:
    assert lock.folder_owner(running) == UNKNOWN
    owned, _ = lock.run_lock(running, "serverbench run")
    owned.release()  # a clean end empties the file
    assert lock.folder_owner(running) == ENDED


def test_the_note_for_each_state() -> None:
    document = load(DATA / "smoke-3stacks.json")
    folder = Path("/r/x y")
    assert unfinished_note(document, folder, UNKNOWN) is None  # complete
    document.status = "interrupted"
    interrupted = unfinished_note(document, folder, ENDED) or ""
    assert interrupted.startswith("This run was interrupted before it finished (Ctrl-C")
    assert interrupted.endswith("Continue it with `serverbench run --resume '/r/x y'`.")
    resuming = lock.Owner(
        pid=4321, command="serverbench run --resume x", started_at="2026-11-28T12:00:00+00:00",
        start_ticks=0,
    )  # fmt: skip
    # a resume under way that has not yet saved `running`: going, whatever the file says
    going = unfinished_note(document, folder, lock.FolderOwner(alive=True, owner=resuming)) or ""
    assert going.startswith("This run is still going: `serverbench run --resume x` (pid 4321,")
    document.status = "running"
    unknown = unfinished_note(document, folder, UNKNOWN) or ""
    assert "names no owner to ask" in unknown
    assert "serverbench run --resume" in unknown
    released = unfinished_note(document, folder, ENDED) or ""
    assert "the serverbench that ran it has ended without marking it" in released
    document.command = ("serverbench", "capacity", "--slo", "p99=50ms")
    searched = unfinished_note(document, folder, ENDED) or ""
    assert "`serverbench capacity --resume '/r/x y'`" in searched
