"""Running wrk: the one place serverbench spawns it, with a hard bound on how long it may take.

wrk runs in its own session (PID == process group), dies with serverbench (run/guardian.py), so however the wait ends - normally, on
overrun, on Ctrl-C or on any exception - its whole group can be killed and nothing is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from serverbench.errors import LoadGeneratorError
from serverbench.load.wrk import (
    WrkMeasurement,
    WrkSettings,
    build_argv,
    lua_script_path,
    parse,
    script_env,
)
from serverbench.run import guardian
from serverbench.run.process import log_tail


def script_path(settings: WrkSettings, out_dir: Path, label: str) -> Path:
    """The Lua script wrk runs: ours, or ours with the settings' extra Lua in the job folder."""
    return out_dir / f"{label}.wrk.lua" if settings.extra_lua else lua_script_path()


def run_wrk(
    settings: WrkSettings,
    url: str,
    *,
    out_dir: Path,
    label: str,
    cpus: str | None = None,
    grace_s: float = 30.0,
    on_start: Callable[[int], None] | None = None,
) -> WrkMeasurement:
    """Run wrk once against `url` and return what it measured.

    wrk's output goes to `out_dir/<label>.wrk.log`, the Lua script's JSON document to
    `out_dir/<label>.wrk.json`. wrk may take its duration + timeout + `grace_s` (the Lua
    done() and start-up fit in the grace); past that it is killed. `on_start` gets wrk's pid
    right after the spawn (with taskset, taskset execs wrk, so the pid is wrk's).
    """
    script = script_path(settings, out_dir, label)
    if settings.extra_lua:
        out_dir.mkdir(parents=True, exist_ok=True)
        script.write_text(lua_script_path().read_text() + settings.extra_lua)
    argv = build_argv(settings, url, str(script), cpus)
    tools = [("wrk", "wrk")] + ([("taskset", "util-linux")] if cpus is not None else [])
    for tool, package in tools:
        if shutil.which(tool) is None:
            raise LoadGeneratorError(f"{tool} not found; install it: apt-get install {package}")
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / f"{label}.wrk.log"
    json_path = out_dir / f"{label}.wrk.json"
    # A document left by an earlier run must not pass for this run's
    json_path.unlink(missing_ok=True)
    env = {**os.environ, **script_env(json_path)}
    bound_s = settings.wrk_duration_s + settings.wrk_timeout_s + grace_s

    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                **guardian.popen_options(),
            )
        except OSError as exc:
            raise LoadGeneratorError(
                f"cannot start wrk ({exc}); check that wrk is installed: apt-get install wrk"
            ) from exc
        guardian.adopt(proc.pid)
        try:
            if on_start is not None:
                on_start(proc.pid)
            try:
                returncode = proc.wait(timeout=bound_s)
            except subprocess.TimeoutExpired:
                raise LoadGeneratorError(
                    f"wrk did not finish within {bound_s:.0f} s (duration + timeout + "
                    f"{grace_s:.0f} s grace) and was killed; see {log_path}, and give a "
                    "longer grace if its Lua done() needs it"
                ) from None
        finally:
            _kill_group(proc)

    if returncode != 0:
        raise LoadGeneratorError(
            f"wrk exited with code {returncode}:\n{log_tail(log_path) or '(empty log)'}\n"
            f"check that {url} is up and answering; full log: {log_path}"
        )
    try:
        doc = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise LoadGeneratorError(
            f"wrk wrote no JSON document to {json_path}:\n{log_tail(log_path) or '(empty log)'}\n"
            "check that the wrk is 4.x with Lua scripting (wrk -v)"
        ) from None
    except (OSError, ValueError) as exc:
        raise LoadGeneratorError(
            f"wrk's JSON document {json_path} is unreadable ({exc}); "
            "check free disk space and re-run"
        ) from exc
    if not isinstance(doc, dict):
        raise LoadGeneratorError(f"wrk's JSON document {json_path} is not an object; re-run")
    return parse(doc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill wrk's process group (PGID == its pid) unless it is already gone, then reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
