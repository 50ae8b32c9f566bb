"""The machine facts a results file records, so a reader can tell what the numbers ran on.

Owns `Environment`: hardware, OS, Python, tool and package versions, CPU governor, the network
sysctls that bound a benchmark, the open-file limit, and when the run started. Collecting never
fails because something is missing: a missing tool, file or package is recorded as absent.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil

from serverbench import __version__
from serverbench.observe.host_limits import read_sysctls

# Distribution names as published; the key recorded is the first spelling, lower-case.
PACKAGE_SPELLINGS: tuple[tuple[str, ...], ...] = (
    ("gunicorn",),
    ("uvicorn",),
    ("uvloop",),
    ("httptools",),
    ("a2wsgi",),
    ("bjoern",),
    ("granian",),
    ("hypercorn",),
    ("waitress",),
    ("uwsgi", "uWSGI"),
    ("supervisor",),
    ("flask", "Flask"),
    ("fastapi",),
    ("starlette",),
    ("werkzeug", "Werkzeug"),
    ("psutil",),
    ("hdrhistogram",),
)

# Where system tools live when /usr/sbin is not on a normal user's PATH.
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/local/nginx/sbin")

TOOL_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    hostname: str = ""
    cpu_model: str = ""
    cpu_count: int = 0
    memory_bytes: int = 0
    kernel: str = ""
    os_release: str = ""
    python_version: str = ""
    python_executable: str = ""
    serverbench_version: str = ""
    wrk_version: str | None = None
    nginx_version: str | None = None
    packages: dict[str, str] = field(default_factory=dict)  # distribution -> version
    cpu_governor: str | None = None
    sysctls: dict[str, str] = field(default_factory=dict)  # name -> value, unreadable omitted
    nofile_soft: int = 0  # -1 means unlimited
    nofile_hard: int = 0
    started_at: str = ""  # ISO 8601, UTC


def collect_environment(wrk: str = "wrk", nginx: str = "nginx") -> Environment:
    """Collect the facts of this machine and process now; `wrk`/`nginx` are names or paths."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return Environment(
        hostname=socket.gethostname(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 0,
        memory_bytes=psutil.virtual_memory().total,
        kernel=platform.release(),
        os_release=os_release(),
        python_version=platform.python_version(),
        python_executable=sys.executable,
        serverbench_version=__version__,
        wrk_version=wrk_version(wrk),
        nginx_version=nginx_version(nginx),
        packages=installed_packages(),
        cpu_governor=cpu_governor(),
        sysctls=read_sysctls(),
        nofile_soft=soft,
        nofile_hard=hard,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        text = cpuinfo.read_text()
    except OSError:
        text = ""
    # x86 says "model name"; some ARM kernels only "Hardware" or "Processor".
    for key in ("model name", "Hardware", "Processor"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def os_release(path: Path = Path("/etc/os-release")) -> str:
    try:
        text = path.read_text()
    except OSError:
        return platform.platform()
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key == "PRETTY_NAME":
            return value.strip().strip('"')
    return platform.platform()


def cpu_governor(
    path: Path = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
) -> str | None:
    """cpu0's frequency governor ("performance", "powersave"), None where cpufreq is absent."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def installed_packages() -> dict[str, str]:
    packages: dict[str, str] = {}
    for spellings in PACKAGE_SPELLINGS:
        for name in spellings:
            try:
                packages[spellings[0]] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
            break
    return packages


def find_tool(name: str) -> str | None:
    """The path of a tool by name or path, also looking in sbin directories; None if absent."""
    found = shutil.which(name)
    if found is not None or os.sep in name:
        return found
    for directory in SBIN_DIRS:
        found = shutil.which(name, path=directory)
        if found is not None:
            return found
    return None


def _tool_output(name: str, *args: str) -> str | None:
    """stdout+stderr of a version command; its exit status is ignored (`wrk -v` exits 1)."""
    path = find_tool(name)
    if path is None:
        return None
    try:
        done = subprocess.run(
            [path, *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TOOL_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout + "\n" + done.stderr


def parse_wrk_version(output: str) -> str | None:
    """ "wrk 4.1.0 [epoll] Copyright ..." -> "4.1.0" ("debian/4.1.0-3+b2" as Debian prints it)."""
    match = re.search(r"^wrk\s+(\S+)", output, re.MULTILINE)
    return match.group(1) if match else None


def parse_nginx_version(output: str) -> str | None:
    """ "nginx version: nginx/1.22.1" -> "1.22.1"."""
    match = re.search(r"nginx version:\s*\S+?/(\S+)", output)
    return match.group(1) if match else None


def wrk_version(wrk: str = "wrk") -> str | None:
    output = _tool_output(wrk, "-v")
    return None if output is None else parse_wrk_version(output)


def nginx_version(nginx: str = "nginx") -> str | None:
    output = _tool_output(nginx, "-v")
    return None if output is None else parse_nginx_version(output)
