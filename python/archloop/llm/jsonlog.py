"""Structured logs: one JSON object per line on stderr (stdout is reserved for protocol output)."""

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # library FutureWarnings become JSON lines too
    # Library loggers (uvicorn, transformers) propagate to the root handler instead of printing.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "peft", "trl"):
        lib = logging.getLogger(name)
        lib.handlers[:] = []
        lib.propagate = True
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    hf_logging.disable_progress_bar()


def log(logger: logging.Logger, level: int, msg: str, **fields) -> None:
    """Log `msg` with structured `fields` merged into the JSON line."""
    logger.log(level, msg, extra={"fields": fields})
