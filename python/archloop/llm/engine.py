"""The model behind the server: tokenizer, base model, adapters, and one batched `generate`
per request (all `n` samples of all prompts in the same call)."""

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from archloop.llm.adapters import AdapterSet
from archloop.llm.openai_errors import bad_request, model_not_found
from archloop.llm.sampling import Choice, Sampling, generate_kwargs, make_choice


@dataclass(frozen=True)
class Result:
    choices: list[Choice]
    prompt_tokens: int
    seconds: float


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Engine:
    def __init__(self, model_dir: Path, served_name: str, adapters_dir: Path | None, device: str = "auto"):
        self.model_dir = model_dir
        self.served_name = served_name
        self.device = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"  # batched generation continues every row at the end
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.context_len = int(getattr(model.config, "max_position_embeddings", 2048))
        self.eos_ids = self._end_token_ids(model)
        self.adapters = AdapterSet(model, served_name, adapters_dir)
        self.created = int(time.time())
        self.lock = threading.Lock()  # one generate (or adapter change) at a time

    def _end_token_ids(self, model) -> set[int]:
        eos = model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        ids.add(self.tokenizer.eos_token_id)
        ids.add(self.tokenizer.pad_token_id)  # rows that finished early are padded with it
        return {i for i in ids if i is not None}

    def require_model(self, name: str) -> None:
        with self.lock:
            if not self.adapters.knows(name):
                raise model_not_found(name)

    def chat_prompt(self, messages: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def encode(self, text: str) -> list[int]:
        # Chat prompts already hold their special tokens, so add none here.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def check_length(self, prompts: list[list[int]], max_tokens: int) -> None:
        longest = max(len(p) for p in prompts)
        if longest + max_tokens > self.context_len:
            raise bad_request(
                f"This model's maximum context length is {self.context_len} tokens. However, you requested "
                f"{longest + max_tokens} tokens ({longest} in the messages, {max_tokens} in the completion).",
                "max_tokens",
            )

    def default_max_tokens(self, prompts: list[list[int]]) -> int:
        return max(1, self.context_len - max(len(p) for p in prompts))

    def generate(self, model_name: str, prompts: list[list[int]], s: Sampling) -> Result:
        self.check_length(prompts, s.max_tokens)
        rows = [p for p in prompts for _ in range(s.n)]  # choice i*n+j is sample j of prompt i
        batch = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt").to(self.device)
        started = time.perf_counter()
        with self.lock, torch.inference_mode():
            if not self.adapters.knows(model_name):
                raise model_not_found(model_name)
            if s.seed is not None:
                torch.manual_seed(s.seed)
            with self.adapters.active(model_name) as model:
                out = model.generate(
                    **batch,
                    **generate_kwargs(s),
                    pad_token_id=self.tokenizer.pad_token_id,
                    stop_strings=list(s.stop) or None,
                    tokenizer=self.tokenizer if s.stop else None,
                )
        generated = out[:, batch["input_ids"].shape[1] :].tolist()
        decode = lambda tokens: self.tokenizer.decode(tokens, skip_special_tokens=True)  # noqa: E731
        choices = [make_choice(row, self.eos_ids, decode, s) for row in generated]
        return Result(choices, sum(len(p) for p in prompts), time.perf_counter() - started)

    def load_adapter(self, name: str, path: str) -> Path:
        with self.lock:
            return self.adapters.load(name, path)

    def unload_adapter(self, name: str) -> None:
        with self.lock:
            self.adapters.unload(name)

    def model_cards(self) -> list[dict]:
        base = {"id": self.served_name, "object": "model", "created": self.created, "owned_by": "archloop",
                "root": str(self.model_dir), "parent": None, "max_model_len": self.context_len}
        with self.lock:
            adapters = [
                {"id": name, "object": "model", "created": self.created, "owned_by": "archloop",
                 "root": str(path), "parent": self.served_name, "max_model_len": self.context_len}
                for name, path in self.adapters.paths.items()
            ]
        return [base, *adapters]
