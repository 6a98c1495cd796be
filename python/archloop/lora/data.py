"""Training pairs: the JSONL file of chat conversations, turned into TRL's conversational
prompt/completion rows so that the loss covers only the assistant's answer."""

import json
from pathlib import Path

from archloop.lora.job import JobError


def to_row(messages: list[dict]) -> dict:
    """Split a conversation at its last assistant turn: that turn is the completion, everything
    before it the prompt."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return {"prompt": messages[:last], "completion": [messages[last]]}


def check_messages(messages, where: str) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise JobError("bad-job", f"{where}: 'messages' must be a non-empty list", field="pairsFile")
    for m in messages:
        if not (isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str)):
            raise JobError("bad-job", f"{where}: each message needs role system|user|assistant and string content",
                           field="pairsFile")
    if not any(m["role"] == "assistant" for m in messages):
        raise JobError("bad-job", f"{where}: no assistant turn to train on", field="pairsFile")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def read_pairs(path: Path) -> list[dict]:
    if not path.is_file():
        raise JobError("bad-job", f"pairsFile {path} does not exist", field="pairsFile")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise JobError("bad-job", f"{path}:{number}: not JSON ({e})", field="pairsFile") from None
        messages = record.get("messages") if isinstance(record, dict) else None
        rows.append(to_row(check_messages(messages, f"{path}:{number}")))
    if not rows:
        raise JobError("empty-corpus", f"{path} holds no training pairs", pairsFile=str(path))
    return rows
