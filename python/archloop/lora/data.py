"""Training pairs: the JSONL file of conversations, tokenized exactly as the model meets them
when it is sampled, with the loss on what it writes and nothing else.

A line is {"messages": [...], "completion": "..."}: `messages` is the sampling request as sent
(the user turn, then the assistant turn's prefilled start, if any), `completion` what the
model should write after it. A line without `completion` ({"messages": [..., assistant]}) is a
conversation whose last assistant turn is the whole completion.

Why archloop tokenizes instead of TRL: TRL tokenizes prompt+completion as one text, so BPE
merges tokens across the boundary (a prefill that ends in "\\n" followed by indented code
becomes one "\\n        " token), and the model would be trained on a context it never sees:
a sampling server tokenizes the prompt (prefill included) on its own and then generates. Here
the prompt and the completion are tokenized separately and concatenated, as at sampling."""

import json
from pathlib import Path

from archloop.lora.job import JobError


def check_messages(messages, where: str) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise JobError("bad-job", f"{where}: 'messages' must be a non-empty list", field="pairsFile")
    for m in messages:
        if not (isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str)):
            raise JobError("bad-job", f"{where}: each message needs role system|user|assistant and string content",
                           field="pairsFile")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def to_pair(record, where: str) -> dict:
    """{"messages": the request up to the completion, "completion": the text to learn}."""
    if not isinstance(record, dict):
        raise JobError("bad-job", f"{where}: a line must be a JSON object", field="pairsFile")
    messages = check_messages(record.get("messages"), where)
    completion = record.get("completion")
    if completion is None:
        if messages[-1]["role"] != "assistant":
            raise JobError("bad-job", f"{where}: no assistant turn to train on", field="pairsFile")
        return {"messages": messages[:-1], "completion": messages[-1]["content"]}
    if not isinstance(completion, str) or not completion:
        raise JobError("bad-job", f"{where}: 'completion' must be a non-empty string", field="pairsFile")
    return {"messages": messages, "completion": completion}


def read_pairs(path: Path) -> list[dict]:
    if not path.is_file():
        raise JobError("bad-job", f"pairsFile {path} does not exist", field="pairsFile")
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise JobError("bad-job", f"{path}:{number}: not JSON ({e})", field="pairsFile") from None
        pairs.append(to_pair(record, f"{path}:{number}"))
    if not pairs:
        raise JobError("empty-corpus", f"{path} holds no training pairs", pairsFile=str(path))
    return pairs


def render_prompt(tokenizer, messages: list[dict]) -> str:
    """The text a sampling server feeds the model for `messages`: the chat template up to the
    assistant's turn header, then a final assistant message continued verbatim (vLLM's
    continue_final_message; the embedded server, src/llm/embedded/chat.ts, does the same)."""
    if messages and messages[-1]["role"] == "assistant":
        head = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        return head + messages[-1]["content"]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render_completion(tokenizer, pair: dict, where: str) -> str:
    """The completion as the template closes it: the text, then the end-of-turn the model must
    learn to emit (e.g. "<|im_end|>\\n")."""
    messages = pair["messages"]
    prefill = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""
    history = messages[:-1] if prefill else messages
    prompt = render_prompt(tokenizer, messages)
    closed = tokenizer.apply_chat_template(history + [{"role": "assistant", "content": prefill + pair["completion"]}],
                                           tokenize=False)
    if not closed.startswith(prompt) or not closed[len(prompt):].startswith(pair["completion"]):
        raise JobError("bad-job", f"{where}: the chat template does not render the reply verbatim, so the prefilled "
                       "prompt and the closed conversation disagree", field="pairsFile")
    return closed[len(prompt):]


def tokenize_pair(tokenizer, pair: dict, where: str = "pair") -> dict:
    """input_ids = prompt tokens + completion tokens, each tokenized on its own; labels mask
    the prompt (-100) so the loss covers only what the model writes."""
    prompt_ids = tokenizer(render_prompt(tokenizer, pair["messages"]), add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(render_completion(tokenizer, pair, where), add_special_tokens=False)["input_ids"]
    return {
        "input_ids": prompt_ids + completion_ids,
        "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids),
        "labels": [-100] * len(prompt_ids) + completion_ids,
    }


def tokenize_pairs(tokenizer, pairs: list[dict], max_len: int) -> tuple[list[dict], int]:
    """Tokenized rows, and how many pairs were left out as longer than `max_len` (cutting one
    would teach a program that stops mid-line)."""
    rows = [tokenize_pair(tokenizer, pair, f"pair {i + 1}") for i, pair in enumerate(pairs)]
    kept = [row for row in rows if len(row["input_ids"]) <= max_len]
    if not kept:
        raise JobError("empty-corpus", f"every training pair is longer than maxSeqLen {max_len} tokens",
                       field="maxSeqLen")
    return kept, len(rows) - len(kept)
