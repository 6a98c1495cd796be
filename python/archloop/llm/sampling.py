"""Pure translation between OpenAI sampling fields and transformers' `generate`, and the
post-processing of generated token rows into OpenAI choices."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    n: int
    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    completion_tokens: int


def generate_kwargs(s: Sampling) -> dict:
    """Keyword arguments for `model.generate`. Temperature 0 means greedy, as in OpenAI/vLLM.
    The caller repeats each prompt `n` times in the batch (transformers refuses
    num_return_sequences > 1 for greedy decoding, which OpenAI allows)."""
    kwargs = {"max_new_tokens": s.max_tokens}
    if s.temperature == 0:
        return kwargs | {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    return kwargs | {
        "do_sample": True,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k if s.top_k > 0 else None,
    }


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """`text` up to (excluding) the earliest stop string, and whether one occurred."""
    cuts = [i for i in (text.find(stop) for stop in stops) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def split_row(row: list[int], eos_ids: set[int]) -> tuple[list[int], bool]:
    """The generated tokens of one row before its first EOS, and whether an EOS ended it."""
    for i, token in enumerate(row):
        if token in eos_ids:
            return row[:i], True
    return row, False


def make_choice(row: list[int], eos_ids: set[int], decode, s: Sampling) -> Choice:
    """One OpenAI choice from a generated row (tokens after the prompt, padding included)."""
    tokens, ended = split_row(row, eos_ids)
    text, stopped = cut_at_stop(decode(tokens), s.stop)
    if stopped:
        return Choice(text, "stop", len(tokens))
    if ended:
        return Choice(text, "stop", len(tokens) + 1)  # the EOS token was generated too
    return Choice(text, "length", len(tokens))
