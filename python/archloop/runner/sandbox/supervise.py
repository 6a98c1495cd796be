"""Running the sandboxed process: feed its request, read its events, cap its output,
enforce the wall clock, and kill the whole process tree when it is over.

With bwrap, killing bwrap kills the sandbox's PID 1 (--die-with-parent), and the kernel
then kills every process in that PID namespace, however it forked or setsid'd. Without
bwrap (`sweep`), the caller is a child subreaper and every descendant left is killed here.
"""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from .. import lifeline

EVENTS_LIMIT = 16 * 1024 * 1024
LINE_LIMIT = 4 * 1024 * 1024


class TailBuffer:
    """Keeps the last `limit` bytes of a stream and counts what it dropped."""

    def __init__(self, limit: int):
        self.limit, self.data, self.dropped, self.total = limit, bytearray(), 0, 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        excess = len(self.data) - self.limit
        if excess > 0:
            del self.data[:excess]
            self.dropped += excess

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclass
class Outcome:
    returncode: Optional[int]
    timed_out: bool
    output_flood: bool
    events_flood: bool
    wall_s: float
    stdout: TailBuffer
    stderr: TailBuffer
    lines: list[bytes] = field(default_factory=list)


def run(
    argv: list[str],
    request: bytes,
    events_write_fd: int,
    events_read_fd: int,
    wall_limit_s: float,
    tail_bytes: int,
    output_limit: int,
    on_line: Callable[[bytes], None],
    env: Optional[dict[str, str]] = None,
    extra_fds: tuple[int, ...] = (),
    sweep: bool = False,
) -> Outcome:
    """extra_fds: inherited by the child (bwrap reads the seccomp filter and data from them)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        pass_fds=(events_write_fd, *extra_fds), env=env if env is not None else {}, start_new_session=True,
        close_fds=True,
    )
    os.close(events_write_fd)
    outcome = Outcome(None, False, False, False, 0.0, TailBuffer(tail_bytes), TailBuffer(tail_bytes))
    try:
        proc.stdin.write(request)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
    selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
    events = os.fdopen(events_read_fd, "rb", buffering=0)
    selector.register(events, selectors.EVENT_READ, "events")
    pending, events_total = bytearray(), 0
    deadline = started + wall_limit_s

    def kill() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    while selector.get_map():
        if proc.poll() is not None:
            # The main process is gone: stragglers (only possible without bwrap) die with it,
            # and what is still buffered in the pipes gets two seconds to drain.
            kill()
            deadline = min(deadline, time.monotonic() + 2.0)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            outcome.timed_out = proc.poll() is None
            kill()
            break
        for key, _ in selector.select(timeout=min(remaining, 1.0)):
            chunk = os.read(key.fileobj.fileno(), 65536)
            if not chunk:
                selector.unregister(key.fileobj)
                continue
            if key.data == "events":
                events_total += len(chunk)
                if events_total > EVENTS_LIMIT or len(pending) > LINE_LIMIT:
                    outcome.events_flood = True
                    kill()
                    break
                pending += chunk
                *complete, rest = bytes(pending).split(b"\n")
                pending = bytearray(rest)
                for line in complete:
                    outcome.lines.append(line)
                    on_line(line)
            else:
                buffer = outcome.stdout if key.data == "stdout" else outcome.stderr
                buffer.add(chunk)
                if outcome.stdout.total + outcome.stderr.total > output_limit:
                    outcome.output_flood = True
                    kill()
                    break
        if outcome.output_flood or outcome.events_flood:
            break
    for key in list(selector.get_map().values()):
        selector.unregister(key.fileobj)
    try:
        outcome.returncode = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        kill()
        outcome.returncode = proc.wait()
    if sweep:
        lifeline.kill_descendants()
    for stream in (proc.stdout, proc.stderr, events):
        stream.close()
    outcome.wall_s = round(time.monotonic() - started, 4)
    return outcome
