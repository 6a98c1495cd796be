"""The trainer's protocol channel: JSON lines on the real stdout. Everything else that would
print to stdout (libraries, C extensions) is redirected to stderr, so the caller can parse
every stdout line."""

import json
import os
import sys

_channel = None


def claim_stdout() -> None:
    global _channel
    _channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def emit(event: dict) -> None:
    out = _channel or sys.stdout
    out.write(json.dumps(event) + "\n")
    out.flush()
