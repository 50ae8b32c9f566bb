"""What app a project folder holds, found by reading its files (nothing is imported or run).

`serverbench init` proposes a configuration from this: a Django project's WSGI and ASGI
modules and settings module (through manage.py), module-level Flask, Quart, FastAPI, Starlette
or Litestar app objects, and a virtualenv in the folder (the Python its servers should run on).
Reading instead of importing keeps `init` safe in any project: importing settings or an app
may connect to a database or need environment variables that are not set yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# the folders a project's own code is not in
_SKIP = frozenset(
    {".git", ".hg", ".tox", ".nox", ".venv", "venv", "env", "node_modules", "__pycache__"}
    | {"build", "dist", "site-packages", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
)
_MAX_DEPTH = 3
_MAX_FILES = 2000
_MAX_FILE_BYTES = 512 * 1024
_SETTINGS = re.compile(r"""DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([\w.]+)['"]""")
# `app = Flask(__name__)` at module level: the object a server imports
_FRAMEWORKS: tuple[tuple[str, str, str], ...] = (
    ("Flask", "wsgi", "Flask"),
    ("Quart", "asgi", "Quart"),
    ("FastAPI", "asgi", "FastAPI"),
    ("Starlette", "asgi", "Starlette"),
    ("Litestar", "asgi", "Litestar"),
)
_ASSIGN = re.compile(r"^([A-Za-z_]\w*)\s*(?::\s*[\w.\[\]]+\s*)?=\s*(?:[\w]+\.)?(\w+)\(", re.M)
VENV_DIRS = (".venv", "venv", "env")


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectedApp:
    spec: str  # module:attr
    interface: str  # wsgi or asgi
    framework: str
    source: str  # the file it was found in, relative to the project folder


@dataclass(frozen=True, slots=True, kw_only=True)
class Detection:
    folder: Path
    framework: str | None  # the first framework found, for the file's comments
    apps: tuple[DetectedApp, ...]
    env: dict[str, str]  # e.g. DJANGO_SETTINGS_MODULE
    python: str | None  # a virtualenv's interpreter in the folder, relative to it
    notes: tuple[str, ...]  # what init could not decide, said in the file's comments


def detect(folder: Path) -> Detection:
    folder = folder.resolve()
    django = _django(folder)
    apps = list(django[0]) if django else []
    env = {"DJANGO_SETTINGS_MODULE": django[1]} if django else {}
    notes: list[str] = []
    if not django:
        apps.extend(_module_level_apps(folder))
        if not apps:
            notes.append(
                "no app was found: set apps to your WSGI/ASGI object as module:attribute "
                "(an app factory such as create_app() needs a module that calls it)"
            )
    return Detection(
        folder=folder,
        framework=apps[0].framework if apps else None,
        apps=tuple(apps),
        env=env,
        python=_venv_python(folder),
        notes=tuple(notes),
    )


def _django(folder: Path) -> tuple[list[DetectedApp], str] | None:
    manage = folder / "manage.py"
    if not manage.is_file():
        return None
    found = _SETTINGS.search(_read(manage))
    if found is None:
        return None
    settings = found.group(1)
    package = settings.rpartition(".")[0]
    apps = []
    for module, interface in (("wsgi", "wsgi"), ("asgi", "asgi")):
        source = folder / Path(*package.split(".")) / f"{module}.py"
        if source.is_file() and re.search(r"^application\s*=", _read(source), re.M):
            apps.append(
                DetectedApp(
                    spec=f"{package}.{module}:application",
                    interface=interface,
                    framework="Django",
                    source=str(source.relative_to(folder)),
                )
            )
    return (apps, settings) if apps else None


def _module_level_apps(folder: Path) -> list[DetectedApp]:
    found = []
    for path in _python_files(folder):
        text = _read(path)
        for match in _ASSIGN.finditer(text):
            name, called = match.groups()
            for framework, interface, constructor in _FRAMEWORKS:
                # the name alone could be anyone's class: the file must import the framework
                if called != constructor or not re.search(
                    rf"^\s*(from|import)\s+{framework.lower()}\b", text, re.M
                ):
                    continue
                relative = path.relative_to(folder).with_suffix("")
                parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
                found.append(
                    DetectedApp(
                        spec=f"{'.'.join(parts)}:{name}",
                        interface=interface,
                        framework=framework,
                        source=str(path.relative_to(folder)),
                    )
                )
    return found


def _python_files(folder: Path) -> list[Path]:
    """The project's .py files, shallowest first, skipping virtualenvs and caches."""
    files: list[Path] = []
    level = [folder]
    for _ in range(_MAX_DEPTH):
        below: list[Path] = []
        for directory in level:
            try:
                entries = sorted(directory.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir() and entry.name not in _SKIP and not entry.name.startswith("."):
                    if not (entry / "pyvenv.cfg").exists():
                        below.append(entry)
                elif entry.suffix == ".py" and entry.is_file() and _importable(entry, folder):
                    files.append(entry)
                if len(files) >= _MAX_FILES:
                    return files
        level = below
    return files


def _importable(path: Path, folder: Path) -> bool:
    """Every folder between the project and the file is a package name (tests/ and scripts are too)."""
    relative = path.relative_to(folder).with_suffix("")
    return all(part.isidentifier() for part in relative.parts)


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(_MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _venv_python(folder: Path) -> str | None:
    for name in VENV_DIRS:
        if (folder / name / "pyvenv.cfg").is_file() and (folder / name / "bin" / "python").exists():
            return f"{name}/bin/python"
    return None
