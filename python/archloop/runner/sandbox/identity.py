"""The unprivileged uid a candidate runs as, one per concurrent slot.

RLIMIT_NPROC counts every process of a uid on the machine, so jobs that shared one uid
shared one budget: a candidate holding 63 threads kept every other job from starting one.
A root worker therefore runs each concurrent job as its own system user, <prefix>-<slot>,
and holds an exclusive lock on that slot for the job's lifetime. The locks live in one
directory per machine (the uids are per machine, whichever checkout or worker runs the
job) and are flock()s, so a runner that dies releases its slot with its last fd.

A non-root worker cannot switch uid; it runs each job in its own user namespace, where
the kernel counts RLIMIT_NPROC per namespace (ucounts), which separates the budgets too.
"""

import fcntl
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOCK_DIR = Path("/run/archloop-sandbox")


class SandboxUnavailable(Exception):
    """The sandbox cannot be set up on this machine (an infrastructure error, not the candidate's)."""


class SlotsBusy(SandboxUnavailable):
    """Every slot stayed taken for the whole wait: transient, worth a retry."""


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    drop_privileges: bool  # True: we are root and switch to uid/gid with setpriv inside bwrap
    slot: int | None = None


def slot_user(prefix: str, slot: int) -> str:
    return f"{prefix}-{slot}"


def ensure_user(name: str) -> pwd.struct_passwd:
    """The system user `name`, created when missing (root only)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if shutil.which("useradd") is None:
            raise SandboxUnavailable(f"user {name} is missing and useradd is not installed") from None
        done = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "--user-group", name],
            capture_output=True, text=True,
        )
        try:
            entry = pwd.getpwnam(name)  # a concurrent runner may have created it first
        except KeyError:
            raise SandboxUnavailable(f"useradd {name} failed: {done.stderr.strip()[:300]}") from None
    if entry.pw_uid == 0:
        raise SandboxUnavailable(f"sandbox user {name} must not be root")
    return entry


class Slot:
    """An exclusive claim on one sandbox uid; release() (or process exit) frees it."""

    def __init__(self, index: int, fd: int):
        self.index, self.fd = index, fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def acquire_slot(count: int, wait_s: float, lock_dir: Path = LOCK_DIR, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> Slot:
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    deadline = clock() + wait_s
    while True:
        for index in range(count):
            fd = try_lock(lock_dir / f"slot-{index}.lock")
            if fd is not None:
                return Slot(index, fd)
        if clock() >= deadline:
            raise SlotsBusy(f"all {count} sandbox slots stayed busy for {wait_s:g} s (raise ARCHLOOP_SANDBOX_SLOTS)")
        sleep(0.05)


def identity_for(prefix: str, slot: Slot | None) -> Identity:
    """Root with a slot: that slot's user. Otherwise: the caller's own ids, confined by an
    unprivileged user namespace."""
    if os.geteuid() != 0 or slot is None:
        return Identity(os.getuid(), os.getgid(), drop_privileges=False)
    entry = ensure_user(slot_user(prefix, slot.index))
    return Identity(entry.pw_uid, entry.pw_gid, drop_privileges=True, slot=slot.index)
