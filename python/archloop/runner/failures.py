"""Failure classes of a candidate, and how exceptions map onto them.

A candidate's failure is a result, never a crash of the runner: every stage raises
CandidateFailure with a class and a precise message, and `classify_exception` turns
whatever the untrusted code raised into one.
"""

import errno
import socket
from enum import Enum


class FailureClass(str, Enum):
    SYNTAX = "syntax"
    CONTRACT = "contract"
    IMPORT = "import"
    INSTANTIATE = "instantiate"
    FORWARD = "forward"
    SHAPE = "shape"
    NON_FINITE = "non-finite"
    TOO_LARGE = "too-large"
    TRAIN_ERROR = "train-error"
    EVAL_ERROR = "eval-error"
    NAN_LOSS = "nan-loss"
    LOW_ACCURACY = "low-accuracy"
    TIMEOUT = "timeout"
    OOM = "oom"
    SANDBOX_VIOLATION = "sandbox-violation"
    CRASH = "crash"


class CandidateFailure(Exception):
    """A classified failure of the candidate program (not of the runner)."""

    def __init__(self, failure_class: FailureClass, message: str, stage: str = ""):
        super().__init__(message)
        self.failure_class = failure_class
        self.message = message
        self.stage = stage


class SandboxViolation(Exception):
    """Raised by the audit hook when candidate code attempts a forbidden operation."""


# errno values that mean "the sandbox said no" rather than "the program has a bug".
_DENIED_ERRNOS = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENETUNREACH, errno.EHOSTUNREACH,
    errno.ECONNREFUSED, errno.EAGAIN, errno.EFBIG, errno.ENOSPC,
}
_OOM_MARKERS = ("out of memory", "can't allocate memory", "defaultcpuallocator", "std::bad_alloc", "cannot allocate memory")


def _walk_causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def classify_exception(exc: BaseException, default: FailureClass) -> FailureClass:
    """The failure class for an exception raised by candidate code in a given stage."""
    for cause in _walk_causes(exc):
        if isinstance(cause, CandidateFailure):
            return cause.failure_class
        if isinstance(cause, SandboxViolation):
            return FailureClass.SANDBOX_VIOLATION
        if isinstance(cause, MemoryError):
            return FailureClass.OOM
        if type(cause).__name__ == "OutOfMemoryError":
            return FailureClass.OOM
        if isinstance(cause, RuntimeError) and any(m in str(cause).lower() for m in _OOM_MARKERS):
            return FailureClass.OOM
        if isinstance(cause, socket.gaierror):
            return FailureClass.SANDBOX_VIOLATION
        if isinstance(cause, OSError) and cause.errno in _DENIED_ERRNOS:
            return FailureClass.SANDBOX_VIOLATION
    return default


CANDIDATE_FILE = "candidate.py"


def candidate_line(exc: BaseException) -> tuple[int, str] | None:
    """The innermost line of the candidate's own file in the traceback, and its text: what a
    repair prompt points the LLM at (the framework's frames below it say nothing to it)."""
    import linecache
    import traceback

    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith(CANDIDATE_FILE):
            found = (frame.lineno or 0, (frame.line or linecache.getline(frame.filename, frame.lineno or 0)).strip())
    return found


def describe_exception(exc: BaseException, limit: int = 2000) -> str:
    """`TypeName: message (line N: code)`, bounded in length (messages come from untrusted code)."""
    text = f"{type(exc).__name__}: {exc}"
    where = candidate_line(exc)
    suffix = ""
    if where is not None:
        line = where[1] if len(where[1]) <= 200 else where[1][:197] + "..."
        suffix = f" (line {where[0]}: {line})"
    room = limit - len(suffix)
    return (text if len(text) <= room else text[: room - 3] + "...") + suffix
