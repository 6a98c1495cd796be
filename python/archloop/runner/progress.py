"""A job's progress events, passed on from the sandbox to the worker. The candidate can
write its own, and they become activity heartbeats: each line is validated, and how many
get through is bounded."""

import math
import threading
import time
from collections.abc import Callable

from archloop.runner import untrusted
from archloop.runner.handover import Handover
from archloop.runner.sandbox.supervise import Reply

PROGRESS_INTERVAL_S = 0.25
PROGRESS_MAX_EVENTS = 10_000
QUEUE_BEAT_S = 5.0
QUEUED = "queued"
Emit = Callable[[dict], None]


class ProgressThrottle:
    """Lets an event through when its stage changes, else at most once per interval, and
    never more than max_events in all."""

    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S, max_events: int = PROGRESS_MAX_EVENTS):
        self.interval_s, self.max_events = interval_s, max_events
        self.stage: str | None = None
        self.last = -math.inf
        self.sent = 0

    def allow(self, stage: str, now: float) -> bool:
        if self.sent >= self.max_events or (stage == self.stage and now - self.last < self.interval_s):
            return False
        self.stage, self.last = stage, now
        self.sent += 1
        return True


class Progress:
    """The event-line callback of one run: emits its valid progress events (throttled), notes
    that the sandbox started, times its start-up (startupS) from the hand-over to the
    'ready' stage, and answers a train job's `eval` stage with its test images (handover)."""

    def __init__(self, emit: Emit, timings: dict[str, float], handover: Handover | None = None):
        self.emit, self.timings, self.handover = emit, timings, handover
        self.throttle = ProgressThrottle()
        self.started = False
        self.handed = time.perf_counter()

    def hand_over(self) -> float:
        """The job goes to the sandbox now: its start-up is timed from here."""
        self.handed = time.perf_counter()
        return self.handed

    def on_line(self, line: bytes) -> Reply | bool:  # untrusted: must never raise
        """Parses the line once. False: not a progress event, which the caller keeps (only
        such lines can be results, result.interpret). True: a progress event (valid or not),
        consumed. A `Reply`: a valid progress event that the hand-over answers (the test
        images, after `learn` returns), also consumed."""
        payload = untrusted.parse_line(line)
        if payload is None or payload.get("event") != "progress":
            return False
        event = untrusted.progress_of(payload)
        if event is None:
            return True
        self.started = True
        if event.stage == "ready" and "startupS" not in self.timings:
            self.timings["startupS"] = round(time.perf_counter() - self.handed, 4)
        if self.throttle.allow(event.stage, time.monotonic()):
            self.emit(event.model_dump(by_alias=True, exclude_none=True))
        answer = self.handover.reply(event.stage, time.perf_counter() - self.handed) if self.handover else None
        return Reply(*answer) if answer else True


class QueueBeat:
    """While a job waits for its sandbox (the dataset cache, a zygote, a slot uid), a
    `queued` progress event every interval: the worker turns it into activity heartbeats,
    and starts the job's own clock only at the first other stage (src/sandbox/pool.ts).
    The candidate's limits start with its sandbox, so time in the queue is never its."""

    def __init__(self, emit: Emit, interval_s: float = QUEUE_BEAT_S):
        self.emit, self.interval_s = emit, interval_s
        self.started = time.monotonic()
        self._done = threading.Event()
        threading.Thread(target=self._beat, daemon=True, name="archloop-queue-beat").start()

    def _beat(self) -> None:
        while not self._done.wait(self.interval_s):
            self.emit({"event": "progress", "stage": QUEUED, "elapsedS": round(time.monotonic() - self.started, 1)})

    def stop(self) -> None:
        """The job is handed to its sandbox (or ends before): no more beats."""
        self._done.set()
