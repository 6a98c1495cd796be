"""The unprivileged uid the candidate runs as (RLIMIT_NPROC does nothing for root)."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass


class SandboxUnavailable(Exception):
    """The sandbox cannot be set up on this machine (an infrastructure error, not the candidate's)."""


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    drop_privileges: bool  # True: we are root and switch to uid/gid with setpriv inside bwrap


def ensure_user(name: str) -> Identity:
    """Root: the dedicated system user (created when missing). Otherwise: the caller's own ids,
    confined by an unprivileged user namespace."""
    if os.geteuid() != 0:
        return Identity(os.getuid(), os.getgid(), drop_privileges=False)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if shutil.which("useradd") is None:
            raise SandboxUnavailable(f"user {name} is missing and useradd is not installed") from None
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "--user-group", name],
            check=True, capture_output=True,
        )
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise SandboxUnavailable(f"sandbox user {name} must not be root")
    return Identity(entry.pw_uid, entry.pw_gid, drop_privileges=True)
