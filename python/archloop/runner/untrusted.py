"""Reading what comes out of the sandbox. The candidate runs in the sandboxed interpreter
and can write anything to the event channel, so every line is hostile input: parsing it
never raises, and what it yields is either a validated model or nothing.
"""

import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from archloop.runner.protocol import InnerResult, ProgressEvent, clean_text

MAX_DEPTH = 12  # deeper than any legitimate event (graph attrs nest 6 levels)
JsonValue = bool | int | float | str | list | dict | None


class TooDeep(Exception):
    pass


def cleaned(value: JsonValue, depth: int = 0) -> JsonValue:
    """A copy with every string (keys too) cleaned of NULs and lone surrogates, which
    pydantic, UTF-8 encoders and Postgres all reject; refuses nesting beyond MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise TooDeep()
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [cleaned(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {clean_text(str(key)): cleaned(item, depth + 1) for key, item in value.items()}
    return value


def parse_line(line: bytes) -> dict | None:
    """A JSON object from one event line, or None (invalid UTF-8 or JSON, too deep, not an object)."""
    try:
        payload = cleaned(json.loads(line))
    except (ValueError, RecursionError, TooDeep, MemoryError):
        return None
    return payload if isinstance(payload, dict) else None


def progress_of(payload: dict) -> ProgressEvent | None:
    if payload.get("event") != "progress":
        return None
    try:
        return ProgressEvent.model_validate(payload)
    except ValidationError:
        return None


@dataclass
class Results:
    """Every `result` event the sandbox wrote: a genuine run writes exactly one."""

    valid: list[InnerResult] = field(default_factory=list)
    count: int = 0
    unreadable: int = 0  # lines that are not a JSON object at all
    first_error: str | None = None


def results_of(lines: list[bytes]) -> Results:
    found = Results()
    for line in lines:
        payload = parse_line(line)
        if payload is None:
            found.unreadable += 1
            continue
        if payload.get("event") != "result":
            continue
        found.count += 1
        try:
            found.valid.append(InnerResult.model_validate(payload.get("result")))
        except ValidationError as error:
            found.first_error = found.first_error or _summary(error)
    return found


def _summary(error: ValidationError) -> str:
    issues = [f"{'.'.join(str(p) for p in issue['loc'])}: {issue['msg']}" for issue in error.errors()[:3]]
    return clean_text("; ".join(issues))[:500]
