"""Tying processes to their parents (Linux prctl through ctypes, on the trusted side only).

- The runner dies with its worker: the TS client spawns it in its own process group (so a
  timeout can kill the group) and passes its pid in ARCHLOOP_PARENT_PID; the runner asks
  for SIGKILL when its parent dies, then checks the parent is still the one it was given
  (it may have died before the request took effect). bwrap --die-with-parent and the
  sandbox's PID namespace take everything below down with it.
- Without bubblewrap there is no PID namespace: the runner becomes a child subreaper, so a
  candidate's setsid/double-forked descendants are re-parented to it and killed after the job.
"""

import ctypes
import os
import signal
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
EXIT_ORPHANED = 75


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def die_with_parent(expected_parent: int | None) -> None:
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(EXIT_ORPHANED)  # the parent died before the death signal was armed


def parent_from_env(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def become_subreaper() -> None:
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return found


def kill_descendants(rounds: int = 50) -> int:
    """SIGKILL every child of this process (orphans re-parent here as we go); returns how many."""
    killed = 0
    for _ in range(rounds):
        pids = children(os.getpid())
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.02)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
    return killed
