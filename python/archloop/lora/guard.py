"""What keeps one trainer per output dir and no trainer without its worker.

- `lock_output_dir`: an exclusive flock on <outputDir>/.lock for the process's lifetime (the
  kernel drops it when the process dies, SIGKILL included). A second trainer on the same
  dir fails at once with the class `output-dir-locked`, instead of racing the first over the
  same checkpoints (an orphaned trainer and its retry would otherwise both write there).
- `die_with_parent`: PR_SET_PDEATHSIG, so the kernel SIGKILLs the trainer when the worker
  that started it dies; then a check that this parent is still the one that started us
  (it may have died before the prctl call)."""

import ctypes
import fcntl
import os
import signal
import sys
from pathlib import Path

from archloop.lora.job import JobError

PR_SET_PDEATHSIG = 1
# Set by the worker (src/llm/trainer.ts) to its own pid.
PARENT_PID_VAR = "ARCHLOOP_PARENT_PID"

_held: list[int] = []  # lock fds, open until the process exits


def die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    expected = os.environ.get(PARENT_PID_VAR)
    if expected and os.getppid() != int(expected):
        # The worker died between starting us and the prctl call: nobody reads our output.
        os._exit(1)


def lock_output_dir(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise JobError("output-dir-locked", f"{out} is in use by another trainer (pid {holder})",
                       outputDir=str(out)) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held.append(fd)
