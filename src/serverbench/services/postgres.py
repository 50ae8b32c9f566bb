"""A throwaway PostgreSQL for one job: initdb and postgres in the job's folder, on a free port.

Nothing outside the job's folder is touched: no system service, no cluster of the
distribution's (Debian's package creates one at install time; it is never used), no unix
socket in /var/run (TCP on 127.0.0.1 only), no files in /dev/shm (dynamic shared memory in
the data folder). As root it runs as the `postgres` user (`nobody` without it) through the
`run_as` shim, which hands it its data folder as a file descriptor, so the run folder stays
owner-only. Access needs the password generated for the job (scram-sha-256).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import signal
from pathlib import Path
from typing import ClassVar

from serverbench.services.base import (
    ServiceContext,
    ServiceFile,
    ServicePlan,
    ServiceProcess,
    ServiceSetting,
    Step,
)

USER = "benchmarkdbuser"  # TechEmpower's role name, so their SQL and apps read the same
PASSWORD_FD = 4
BIN_DIR_ENV = "SERVERBENCH_PG_BINDIR"  # another PostgreSQL's binaries (initdb, postgres, psql)
DOCS = "https://www.postgresql.org/docs/current/runtime-config.html"


def bin_dirs() -> list[Path]:
    """Debian's PostgreSQL binaries, newest major version first."""

    def major(path: str) -> int:
        name = Path(path).parent.name
        return int(name) if name.isdigit() else -1

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)
    return [Path(path) for path in found if os.access(Path(path) / "postgres", os.X_OK)]


def default_run_as() -> str | None:
    """Who runs the database: serverbench's own user, or an unprivileged one when root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    return None


def database_url(*, host: str, port: int, password: str, database: str) -> str:
    return f"postgresql://{USER}:{password}@{host}:{port}/{database}"


def _settings(ctx: ServiceContext) -> tuple[ServiceSetting, ...]:
    return (
        ServiceSetting(
            name="listen", value=f"{ctx.host}:{ctx.port}", source="serverbench: loopback only"
        ),
        ServiceSetting(
            name="max_connections",
            value=1000,
            source=(
                "serverbench: above every stack's workers x pool size on large hosts "
                "(PostgreSQL's default 100 is below gunicorn's 2N+1 workers x 4 from 13 CPUs)"
            ),
        ),
        ServiceSetting(name="shared_buffers", value="128MB", source=f"PostgreSQL default ({DOCS})"),
        ServiceSetting(
            name="fsync",
            value="off",
            source="serverbench: a throwaway database; no disk flushes inside the measurement",
        ),
        ServiceSetting(
            name="autovacuum",
            value="off",
            source=(
                "serverbench: read-only data, analyzed at setup; no worker processes coming "
                "and going inside the measurement"
            ),
        ),
        ServiceSetting(
            name="dynamic_shared_memory_type",
            value="mmap",
            source="serverbench: in the data folder, so a killed database leaves nothing in /dev/shm",
        ),
        ServiceSetting(
            name="unix_socket_directories",
            value="",
            source="serverbench: TCP only, so nothing is created in /var/run/postgresql or /tmp",
        ),
        ServiceSetting(
            name="run_as",
            value=ctx.run_as or "serverbench's own user",
            source="PostgreSQL refuses to run as root",
        ),
    )


class Postgres:
    name: ClassVar[str] = "postgres"
    summary: ClassVar[str] = "a throwaway PostgreSQL in the job's folder (initdb + postgres)"

    def __init__(self, bin_dir: Path | None = None) -> None:
        chosen = os.environ.get(BIN_DIR_ENV)
        found = [Path(chosen)] if chosen else bin_dirs()
        self.bin_dir = bin_dir or (found[0] if found else None)

    def unavailable_reason(self) -> str | None:
        if self.bin_dir is None:
            return (
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres); "
                "run scripts/setup, or: apt-get install postgresql"
            )
        if not os.access(self.bin_dir / "postgres", os.X_OK):
            return f"{self.bin_dir}/postgres is not an executable; fix ${BIN_DIR_ENV}"
        if os.geteuid() == 0 and default_run_as() is None:
            return (
                "no unprivileged user to run PostgreSQL as; create one: adduser --system postgres"
            )
        return None

    @property
    def version(self) -> str:
        return f"PostgreSQL {self.bin_dir.parent.name}" if self.bin_dir else ""

    def _tool(self, name: str) -> str:
        assert self.bin_dir is not None, "plan() called on an unavailable service"
        return str(self.bin_dir / name)

    def default_run_as(self) -> str | None:
        return default_run_as()

    def plan(self, ctx: ServiceContext) -> ServicePlan:
        database = ctx.database
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
            raise ValueError(f"database name {database!r} is not a plain SQL identifier")
        folder = (ctx.run_dir / "postgres").absolute()
        data_dir = folder / "data"
        password_file = folder / "password"
        setup_file = folder / "setup.sql"
        settings = _settings(ctx)
        shim = [ctx.python, "-m", "serverbench.shims.run_as"]
        if ctx.run_as:
            shim += ["--user", ctx.run_as]
        shim += ["--dir", str(data_dir)]
        data = "/proc/self/fd/3"
        options: list[str] = []
        for setting in settings:
            if setting.name in ("listen", "run_as"):
                continue
            options += ["-c", f"{setting.name}={setting.value}"]
        client_env = {"PGPASSWORD": ctx.password, "PGCONNECT_TIMEOUT": "5"}
        connect = ["-h", ctx.host, "-p", str(ctx.port), "-U", USER]
        psql = [self._tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *connect]
        setup = [
            Step(
                name="createdb",
                argv=(*psql, "-d", "postgres", "-c", f"CREATE DATABASE {database}"),
                env=client_env,
            )
        ]
        files = [ServiceFile(path=password_file, content=ctx.password + "\n")]
        if ctx.setup_sql:
            files.append(ServiceFile(path=setup_file, content=ctx.setup_sql))
            setup.append(
                Step(
                    name="setup-sql",
                    argv=(*psql, "-d", database, "-f", str(setup_file)),
                    env=client_env,
                    timeout_s=120.0,
                )
            )
        return ServicePlan(
            name=self.name,
            version=self.version,
            files=tuple(files),
            init=(
                Step(
                    name="initdb",
                    argv=(
                        *shim,
                        "--file",
                        f"{PASSWORD_FD}={password_file}",
                        "--",
                        self._tool("initdb"),
                        "-D",
                        data,
                        "-U",
                        USER,
                        f"--pwfile=/proc/self/fd/{PASSWORD_FD}",
                        "--auth=scram-sha-256",
                        "-E",
                        "UTF8",
                        # C: the same sort order on every machine, and no locale to install
                        "--locale=C",
                        "--no-sync",
                        "--no-instructions",
                    ),
                    timeout_s=120.0,
                ),
            ),
            process=ServiceProcess(
                name="postgres",
                argv=(
                    *shim,
                    "--",
                    self._tool("postgres"),
                    "-D",
                    data,
                    "-c",
                    f"listen_addresses={ctx.host}",
                    "-c",
                    f"port={ctx.port}",
                    *options,
                ),
                # fast shutdown: ends client sessions at once and removes its shared memory
                stop_signal=signal.SIGINT,
            ),
            ready=Step(
                name="pg_isready",
                argv=(self._tool("pg_isready"), "-q", "-t", "1", *connect, "-d", "postgres"),
                timeout_s=5.0,
            ),
            setup=tuple(setup),
            app_env={
                "DATABASE_URL": database_url(
                    host=ctx.host, port=ctx.port, password=ctx.password, database=database
                )
            },
            settings=settings,
            remove_after=(data_dir, password_file),
            secrets=(ctx.password,),
        )

    def leftovers(self, plan: ServicePlan) -> tuple[Step, ...]:
        """A killed postmaster leaves its small System V segment; a clean stop removes it."""
        try:
            pidfile = (plan.remove_after[0] / "postmaster.pid").read_text()
            segments = Path("/proc/sysvipc/shm").read_text()
        except OSError:
            return ()
        segment = shared_memory_id(pidfile, segments)
        if segment is None:
            return ()
        return (Step(name="ipcrm", argv=("ipcrm", "-m", str(segment)), timeout_s=5.0),)


def shared_memory_id(pidfile_text: str, sysvipc_text: str) -> int | None:
    """The System V segment postmaster.pid names (line 7: "key id") if it is still there and
    nobody is attached; checked against /proc/sysvipc/shm so that a reused id is never removed.
    """
    lines = pidfile_text.splitlines()
    fields = lines[6].split() if len(lines) >= 7 else []
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        return None
    key, segment = fields
    for line in sysvipc_text.splitlines()[1:]:
        columns = line.split()  # key shmid perms size cpid lpid nattch ...
        if len(columns) > 6 and columns[0] == key and columns[1] == segment and columns[6] == "0":
            return int(segment)
    return None
