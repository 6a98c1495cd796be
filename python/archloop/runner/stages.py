"""Running one stage of candidate code: timing it and classifying what it raises."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from archloop.runner.failures import CandidateFailure, FailureClass, classify_exception, describe_exception


@contextmanager
def stage(name: str, default: FailureClass, timings: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    except CandidateFailure as failure:
        failure.stage = failure.stage or name
        raise
    except BaseException as error:  # SystemExit from candidate code is a failure too
        if isinstance(error, KeyboardInterrupt):
            raise
        raise CandidateFailure(classify_exception(error, default), describe_exception(error), name) from error
    finally:
        timings[f"{name}S"] = round(time.perf_counter() - started, 4)
