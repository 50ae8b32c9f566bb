"""The Python the servers run on: serverbench's own, or the app's (`--python`, `python` in the config).

A user's app lives in its own virtualenv with its own dependencies; the servers must import it,
so they run with that virtualenv's interpreter. One child process asks that interpreter, once,
for its version, its installed distributions and its top-level modules: stacks check their
server packages there, a missing one is named with the exact pip command for that interpreter,
and the versions recorded with the results are that interpreter's.

serverbench's own code that runs inside server processes (`serverbench.shims`, the app probe)
uses the standard library only; for another interpreter it is put on PYTHONPATH through a
folder holding nothing but a link to the serverbench package, so none of serverbench's own
dependencies leak into the app's environment.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256
from importlib import metadata
from pathlib import Path
from typing import Any

from serverbench.errors import UsageError

MIN_VERSION = (3, 10)  # the shims and the app probe use kw_only dataclasses
_PROBE_TIMEOUT_S = 30.0
_PROBE = r"""
import importlib.metadata as m, json, pkgutil, sys
dists = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        dists.setdefault(name, d.version)
report = {
    "version": [sys.version_info.major, sys.version_info.minor, sys.version_info.micro],
    "prefix": sys.prefix,
    "distributions": dists,
    "modules": sorted({m.name for m in pkgutil.iter_modules()} | set(sys.builtin_module_names)),
}
print(json.dumps(report))
"""


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class Interpreter:
    executable: str  # the path servers are started with, as given (a venv's python is a link)
    version: str
    prefix: str
    # another interpreter's, listed once by the probe; serverbench's own looks each one up
    distributions: Mapping[str, str]  # normalized name -> version
    modules: frozenset[str]  # top-level importable names
    own: bool  # serverbench's own interpreter

    def has_module(self, module: str) -> bool:
        top = module.partition(".")[0]
        if self.own:
            return importlib.util.find_spec(top) is not None
        return top in self.modules

    def missing(self, *modules: str) -> str | None:
        """The first of modules this interpreter cannot import, if any."""
        return next((m for m in modules if not self.has_module(m)), None)

    def version_of(self, distribution: str) -> str | None:
        if self.own:
            try:
                return metadata.version(distribution)
            except metadata.PackageNotFoundError:
                return None
        return self.distributions.get(normalize(distribution))

    def versions(self, distributions: tuple[str, ...]) -> dict[str, str]:
        return {d: v for d in distributions if (v := self.version_of(d)) is not None}

    def pip_install(self, *requirements: str) -> str:
        """The exact command that installs requirements for this interpreter."""
        quoted = " ".join(f"'{r}'" for r in requirements)
        return f"{self.executable} -m pip install {quoted}"

    def missing_module_reason(self, module: str, *requirements: str) -> str:
        where = "" if self.own else f" in {self.prefix}"
        return f"Python module {module} is not installed{where}; run: {self.pip_install(*requirements)}"

    def tool(self, name: str) -> str:
        """A console script installed beside this interpreter (for servers with no `-m`)."""
        return str(Path(self.executable).parent / name)

    def server_pythonpath(self) -> str | None:
        """What must be on the servers' PYTHONPATH so that serverbench.shims imports; None if nothing."""
        return None if self.own else str(shim_folder())


@functools.cache
def own() -> Interpreter:
    """serverbench's own interpreter: nothing to probe, each package is looked up when asked."""
    return Interpreter(
        executable=sys.executable,
        version=platform.python_version(),
        prefix=sys.prefix,
        distributions={},
        modules=frozenset(),
        own=True,
    )


@functools.cache
def probe(executable: str) -> Interpreter:
    """Ask the interpreter at `executable` what it is and what it has; UsageError if it cannot say."""
    path = Path(executable).expanduser()
    if not path.exists():
        raise UsageError(
            f"--python {executable}: no such file; give your app's interpreter, for example "
            "--python /path/to/venv/bin/python"
        )
    if path.is_dir():
        hint = path / "bin" / "python"
        raise UsageError(
            f"--python {executable} is a folder; give the interpreter inside it, e.g. --python {hint}"
        )
    if not os.access(path, os.X_OK):
        raise UsageError(f"--python {executable} is not executable; give a Python interpreter")
    try:
        done = subprocess.run(
            [str(path), "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")},
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(
            f"--python {executable} did not run ({error}); give a working Python interpreter"
        ) from None
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = " ".join(done.stderr.strip().splitlines()[-2:])
        raise UsageError(
            f"--python {executable} is not a Python {MIN_VERSION[0]}.{MIN_VERSION[1]}+ "
            f"interpreter ({tail or 'it printed nothing'}); give your app's virtualenv python"
        ) from None
    return _interpreter(executable, report)


def _interpreter(executable: str, report: dict[str, Any]) -> Interpreter:
    path = Path(executable).expanduser()
    version = tuple(report["version"])
    if version[:2] < MIN_VERSION:
        raise UsageError(
            f"--python {executable} is Python {'.'.join(map(str, version))}; the servers need "
            f"Python {MIN_VERSION[0]}.{MIN_VERSION[1]} or newer"
        )
    return Interpreter(
        executable=str(path) if path.is_absolute() else str(path.absolute()),
        version=".".join(map(str, version)),
        prefix=report["prefix"],
        distributions={normalize(k): v for k, v in report["distributions"].items()},
        modules=frozenset(report["modules"]),
        # a venv's python links to the base interpreter: the same environment has the same prefix
        own=Path(report["prefix"]).resolve() == Path(sys.prefix).resolve()
        and version == tuple(sys.version_info[:3]),
    )


def shim_folder() -> Path:
    """A folder whose only entry links to this serverbench package, for another interpreter's path."""
    package = Path(__file__).resolve().parent.parent
    digest = sha256(str(package).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"serverbench-{os.getuid()}" / f"shims-{digest}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.parent.stat().st_uid != os.getuid():
        raise UsageError(
            f"{folder.parent} belongs to another user; remove it or set TMPDIR to a folder of yours"
        )
    link = folder / "serverbench"
    try:
        link.symlink_to(package, target_is_directory=True)
    except FileExistsError:
        if link.resolve() != package:
            link.unlink()
            link.symlink_to(package, target_is_directory=True)
    return folder
