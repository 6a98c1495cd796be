"""Convert an embedded model's GGUF weights (python -m archloop.llm.weights) once into a
dequantized transformers checkpoint, which the LoRA trainer loads (PEFT trains float
weights; llama.cpp serves the GGUF file itself).

    python -m archloop.llm.prepare_model --name qwen2.5-coder-1.5b-instruct [--out DIR]

Idempotent: the marker file is written last, so a directory without it (an interrupted
conversion) is cleared and converted again; a complete one is left alone."""

import argparse
import json
import shutil
import sys
from pathlib import Path

from archloop.llm.env import force_offline
from archloop.llm.weights import CATALOG, WeightsError, default_cache, fetch, lookup

MARKER = "archloop-prepared.json"


class PrepareError(Exception):
    pass


def default_out(name: str) -> Path:
    """Beside the GGUF file, shared by every checkout on the machine (6 GB for 1.5B: converted once)."""
    return default_cache() / f"{name}.hf"


def is_prepared(out: Path) -> bool:
    return (out / MARKER).is_file()


def convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise PrepareError(f"{gguf.name} carries no chat template; the trainer needs one")
    # dequantize=True turns every GGUF block into a plain float32 weight and drops the
    # quantization config, so the result saves and trains like any transformers checkpoint.
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        dtype=torch.float32,
        quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True),
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def prepare(name: str, out: Path) -> Path:
    """Convert into `out` unless a complete conversion is already there; returns `out`."""
    if is_prepared(out):
        return out
    weights = lookup(name)
    try:
        gguf = fetch(name)
    except WeightsError as error:
        raise PrepareError(str(error)) from None
    if out.exists():
        shutil.rmtree(out)  # a partial conversion from an interrupted run
    out.mkdir(parents=True)
    convert(gguf, out)
    marker = {"name": name, "source": weights.source, "ggufSha256": weights.sha256, "licence": weights.licence}
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, choices=sorted(CATALOG), help="embedded model")
    parser.add_argument("--out", type=Path, default=None, help="checkpoint directory")
    args = parser.parse_args(argv)
    force_offline()
    from archloop.llm import jsonlog

    jsonlog.setup()
    out = args.out or default_out(args.name)
    try:
        already = is_prepared(out)
        prepare(args.name, out)
    except PrepareError as e:
        print(f"prepare_model: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"event": "prepared", "modelDir": str(out), "converted": not already}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
