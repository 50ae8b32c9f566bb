"""Live progress of a long run: what is measured now, elapsed time, and time left.

A terminal gets a rich progress bar; anything else (CI, a pipe) gets one plain line per step.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class RunProgress:
    def __init__(self, total_s: float, steps: int) -> None:
        self.total_s = max(total_s, 1.0)
        self.steps = steps
        self.done_s = 0.0
        self.step = 0
        self.started = time.monotonic()
        self.console = Console(stderr=True)
        self._bar: Progress | None = None
        self._task = None
        if sys.stderr.isatty():
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[left]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._task = self._bar.add_task("starting", total=self.total_s, left="")

    def __enter__(self) -> RunProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def extend(self, seconds: float, steps: int) -> None:
        """More work than planned: the rounds --precision adds."""
        if steps == 0:
            return
        self.total_s += seconds
        self.steps += steps
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=self.total_s)

    def left_s(self) -> float:
        elapsed = time.monotonic() - self.started
        if self.done_s <= 0:
            return self.total_s
        rate = elapsed / self.done_s  # real seconds per planned second so far
        return max(0.0, (self.total_s - self.done_s) * rate)

    def begin(self, label: str) -> None:
        self.step += 1
        elapsed = time.monotonic() - self.started
        text = f"[{self.step}/{self.steps}] {label}"
        left = f"~{_clock(self.left_s())} left"
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=text, left=left)
        else:
            print(f"{text}  (elapsed {_clock(elapsed)}, {left})", file=sys.stderr, flush=True)

    def finish(self, planned_s: float) -> None:
        self.done_s += planned_s
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=min(self.done_s, self.total_s))

    def note(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message)
        else:
            print(message, file=sys.stderr, flush=True)
