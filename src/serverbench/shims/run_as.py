"""Start a command as an unprivileged user, handing it a folder it could not reach by path.

PostgreSQL refuses to run as root, and serverbench's run folders are owner-only (umask 077),
so the database user cannot walk the path to its data folder. Rather than open the run
folder's parents to other users, this shim (still root) creates the folder, gives it to the
user, opens it as file descriptor 3, drops to the user and execs the command, which names the
folder `/proc/self/fd/3`: a descriptor opened by root stays usable after the switch, and the
kernel follows it without checking the parents. Files the command must read (a password file)
are passed the same way as further descriptors, and given to the user. Not root: the same, without the switch.

    python -m serverbench.shims.run_as [--user NAME] --dir PATH [--file N=PATH ...] -- COMMAND...
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys

DIR_FD = 3


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run_as")
    parser.add_argument("--user")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--file", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command given")
    return args


def _place(fd: int, target: int) -> None:
    if fd != target:
        os.dup2(fd, target, inheritable=True)
        os.close(fd)
    else:
        os.set_inheritable(fd, True)


def main(argv: list[str]) -> None:
    args = _parse(argv)
    user = pwd.getpwnam(args.user) if args.user else None
    os.makedirs(args.dir, mode=0o700, exist_ok=True)
    if user is not None and os.geteuid() == 0:
        os.chown(args.dir, user.pw_uid, user.pw_gid)
    _place(os.open(args.dir, os.O_RDONLY | os.O_DIRECTORY), DIR_FD)
    for spec in args.file:
        number, _, path = spec.partition("=")
        # reading /proc/self/fd/N opens the file anew, which checks the file's own owner
        if user is not None and os.geteuid() == 0:
            os.chown(path, user.pw_uid, user.pw_gid)
        _place(os.open(path, os.O_RDONLY), int(number))
    if user is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    os.execvp(args.command[0], args.command)


if __name__ == "__main__":
    main(sys.argv[1:])
