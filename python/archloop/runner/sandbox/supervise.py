"""Watching one sandboxed job: feed its request, read its events, cap its output, enforce
the wall clock, and kill it when it is over.

The job is either a candidate forked by a zygote (the zygote reports its end on its
control socket and kills it on request: the candidate's PID namespace dies with it) or,
without bubblewrap, a process of our own (`Spawned`; we are a child subreaper and sweep
every descendant left, however it forked or setsid'd).
"""

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from archloop.runner import lifeline

EVENTS_LIMIT = 16 * 1024 * 1024
LINE_LIMIT = 4 * 1024 * 1024
# A genuine run writes a few lines per stage and at most one progress line a second
# (train.PROGRESS_EVERY_S); the byte cap alone would admit ~16 M empty lines, each a
# Python call in the trusted `serve` that every job of a worker shares.
EVENTS_LINES_BASE = 10_000
EVENTS_LINES_PER_S = 4
DRAIN_S = 2.0  # after the end, what is still buffered in the pipes gets this long to arrive
KILL_WAIT_S = 10.0


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
    returncode: int | None
    timed_out: bool
    output_flood: bool
    events_flood: bool
    wall_s: float
    stdout: TailBuffer
    stderr: TailBuffer
    lines: list[bytes] = field(default_factory=list)  # event lines other than progress (results, unreadable)
    events_lines: int = 0
    events_detail: str = ""  # which cap a flood broke
    killed_unconfirmed: bool = False  # a kill was asked for and its end never reported


@dataclass
class Reply:
    """What `on_line` may answer a line with: more input for the job's stdin, and a limit
    (seconds from now) that brings the deadline closer (handover.py: the test images)."""

    data: bytes
    limit_s: float


class Watched(Protocol):
    """A running job seen from outside: `end_fd` becomes readable when `ended()` may have news."""

    end_fd: int

    def ended(self) -> int | None:
        """The exit code once the job is over (128+n for a signal), else None."""

    def kill(self) -> None:
        ...


@dataclass
class Pipes:
    """Our ends of the job's standard streams and event channel."""

    stdin: int
    stdout: int
    stderr: int
    events: int


def lines_limit(wall_limit_s: float) -> int:
    """The most event lines a job may write: far above a genuine run's, far below a flood's."""
    return EVENTS_LINES_BASE + int(EVENTS_LINES_PER_S * wall_limit_s)


def supervise(job: Watched, pipes: Pipes, request: bytes, wall_limit_s: float, tail_bytes: int, output_limit: int,
              on_line: Callable[[bytes], Reply | bool]) -> Outcome:
    """Runs until the job has ended and its streams are drained, or a limit is broken (then
    the job is killed and its end awaited). stdin stays open after the request, for what
    `on_line` answers. Closes every fd in `pipes`.

    on_line: called once per event line. False: not a progress event, and the line is kept
    in `outcome.lines` (only such lines can be results). True: a progress event, consumed
    and not kept. A `Reply`: a progress event that also answers: its bytes are written to
    the job's stdin and its limit brings the deadline closer. The channel costs O(1) per
    line and per byte: a chunk is split once, never the buffered rest again, and past the
    line or byte cap nothing more is looked at (the job is killed as a flood)."""
    started = time.monotonic()
    outcome = Outcome(None, False, False, False, 0.0, TailBuffer(tail_bytes), TailBuffer(tail_bytes))
    selector = selectors.DefaultSelector()
    names = {pipes.stdout: "stdout", pipes.stderr: "stderr", pipes.events: "events"}
    for fd, name in names.items():
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ, name)
    os.set_blocking(pipes.stdin, False)
    selector.register(pipes.stdin, selectors.EVENT_WRITE, "stdin")
    selector.register(job.end_fd, selectors.EVENT_READ, "end")
    pending, events_total, unsent = bytearray(), 0, memoryview(request)
    max_lines = lines_limit(wall_limit_s)
    deadline = started + wall_limit_s
    killed_at: float | None = None
    ended_at: float | None = None
    open_streams = set(names.values())

    def kill() -> None:
        nonlocal killed_at
        if killed_at is None:
            killed_at = time.monotonic()
            job.kill()

    def answer(reply: Reply) -> None:
        nonlocal unsent, deadline
        deadline = min(deadline, time.monotonic() + reply.limit_s)
        if pipes.stdin >= 0:
            if not unsent:
                selector.register(pipes.stdin, selectors.EVENT_WRITE, "stdin")
            unsent = memoryview(bytes(unsent) + reply.data)

    def read(fd: int, name: str) -> None:
        nonlocal pending, events_total
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            selector.unregister(fd)
            open_streams.discard(name)
            return
        if name != "events":
            (outcome.stdout if name == "stdout" else outcome.stderr).add(chunk)
            outcome.output_flood = outcome.output_flood or outcome.stdout.total + outcome.stderr.total > output_limit
            return
        if outcome.events_flood:
            return  # already over a cap: drained unread until the kill lands
        events_total += len(chunk)
        parts = chunk.split(b"\n")
        outcome.events_lines += len(parts) - 1
        if events_total > EVENTS_LIMIT:
            outcome.events_detail = f"more than {EVENTS_LIMIT >> 20} MiB"
        elif outcome.events_lines > max_lines:
            outcome.events_detail = f"more than {max_lines} lines"
        elif len(pending) + len(parts[0]) > LINE_LIMIT:
            outcome.events_detail = f"a line over {LINE_LIMIT >> 20} MiB"
        if outcome.events_detail:
            outcome.events_flood = True
            return
        if len(parts) == 1:
            pending += chunk
            return
        parts[0], pending = bytes(pending) + parts[0], bytearray(parts[-1])
        for line in parts[:-1]:
            verdict = on_line(line)
            if isinstance(verdict, Reply):
                answer(verdict)
            elif not verdict:
                outcome.lines.append(line)

    while True:
        now = time.monotonic()
        if ended_at is not None:
            if not open_streams or now - ended_at > DRAIN_S:
                break
            wait = ended_at + DRAIN_S - now
        elif killed_at is not None:
            if now - killed_at > KILL_WAIT_S:
                outcome.killed_unconfirmed = True
                break
            wait = killed_at + KILL_WAIT_S - now
        elif now >= deadline:
            outcome.timed_out = True
            kill()
            continue
        else:
            wait = deadline - now
        for key, _ in selector.select(timeout=max(0.0, min(wait, 1.0))):
            name = key.data
            if name == "end":
                code = job.ended()
                if code is not None:
                    outcome.returncode, ended_at = code, time.monotonic()
                    selector.unregister(job.end_fd)
            elif name == "stdin":
                try:
                    unsent = unsent[os.write(pipes.stdin, unsent):]
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # the job stopped reading (it ended, or closed stdin)
                    unsent = memoryview(b"")
                    selector.unregister(key.fd)
                    os.close(pipes.stdin)
                    pipes.stdin = -1
                    continue
                if not unsent:
                    selector.unregister(key.fd)
            else:
                read(key.fd, name)
        if outcome.output_flood or outcome.events_flood:
            kill()

    selector.close()
    for fd in (pipes.stdin, pipes.stdout, pipes.stderr, pipes.events):
        if fd >= 0:
            os.close(fd)
    outcome.wall_s = round(time.monotonic() - started, 4)
    return outcome


def pipes() -> tuple[Pipes, Pipes]:
    """(ours, theirs): our ends, and the job's ends (stdin read, stdout/stderr/events write)."""
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    events_r, events_w = os.pipe()
    return Pipes(stdin_w, stdout_r, stderr_r, events_r), Pipes(stdin_r, stdout_w, stderr_w, events_w)


def close(theirs: Pipes) -> None:
    for fd in (theirs.stdin, theirs.stdout, theirs.stderr, theirs.events):
        os.close(fd)


class Spawned:
    """A process of our own (the unsafe mode's inner process), in its own session; after it
    ends, every descendant left is killed (the caller is a child subreaper)."""

    def __init__(self, argv: list[str], env: dict[str, str], theirs: Pipes, events_fd_number: int):
        self.proc = subprocess.Popen(
            argv, stdin=theirs.stdin, stdout=theirs.stdout, stderr=theirs.stderr, env=env, start_new_session=True,
            close_fds=True, pass_fds=(theirs.events,),
        )
        assert events_fd_number == theirs.events
        self.end_fd = os.pidfd_open(self.proc.pid)

    def ended(self) -> int | None:
        code = self.proc.poll()
        if code is None:
            return None
        self.kill()  # stragglers in its session go with it; setsid'd ones are swept in close()
        return 128 - code if code < 0 else code

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        self.kill()
        try:
            self.proc.wait(timeout=KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
        lifeline.kill_descendants()
        os.close(self.end_fd)
