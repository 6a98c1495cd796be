"""A PEFT LoRA adapter (what the trainer writes and vLLM loads) as a llama.cpp GGUF LoRA
file (what the embedded server loads), for a base model given as its GGUF file.

    python -m archloop.lora.gguf --adapter DIR --base BASE.gguf --out FILE.gguf

llama.cpp's own converter (convert_lora_to_gguf.py) lives in its source tree, not in any
package we install; the format is small: `general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`, and per adapted weight W two tensors `<W>.lora_a` (r × in) and
`<W>.lora_b` (out × r), named as in the base GGUF. llama.cpp scales by alpha / r.
Written to a temporary file and renamed, so a reader never sees half a file.
"""

import argparse
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

# PEFT saves weights as base_model.model.<module>.lora_A.weight (the adapter name removed).
LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<part>[AB])\.weight$")


class ConversionError(Exception):
    pass


@dataclass(frozen=True)
class Base:
    arch: str
    blocks: int
    heads: int
    kv_heads: int
    shapes: dict[str, tuple[int, int]]  # 2-D weights: name -> (in, out)


def read_base(path: Path) -> Base:
    reader = gguf.GGUFReader(path)
    arch = reader.fields["general.architecture"].contents()

    def number(key: str) -> int:
        field = reader.fields.get(f"{arch}.{key}")
        if field is None:
            raise ConversionError(f"{path}: no {arch}.{key} in the GGUF metadata")
        return int(field.contents())

    shapes = {t.name: (int(t.shape[0]), int(t.shape[1])) for t in reader.tensors if len(t.shape) == 2}
    heads = number("attention.head_count")
    kv_field = reader.fields.get(f"{arch}.attention.head_count_kv")
    return Base(arch, number("block_count"), heads, int(kv_field.contents()) if kv_field else heads, shapes)


# llama.cpp's llama converter reorders q and k rows from HF's rotate-half RoPE layout to an
# interleaved one; a LoRA's B (out × r) feeds those rows, so it is reordered the same way.
# Qwen2 keeps HF's layout (llama.cpp runs it with NEOX RoPE), and so do the other architectures here.
PERMUTED_ARCHS = {"llama"}


def permute_rows(b: np.ndarray, heads: int) -> np.ndarray:
    rows = b.shape[0]
    return b.reshape(heads, 2, rows // heads // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def arch_enum(arch: str) -> gguf.MODEL_ARCH:
    for value, name in gguf.MODEL_ARCH_NAMES.items():
        if name == arch:
            return value
    raise ConversionError(f"unknown GGUF architecture {arch!r}")


def scaled_alpha(config: dict) -> float:
    """The alpha that gives llama.cpp's alpha / r the scale PEFT used (rsLoRA: alpha / sqrt(r))."""
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    return alpha * math.sqrt(r) if config.get("use_rslora") else alpha


def load_adapter_tensors(adapter_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        raise ConversionError(f"{adapter_dir}: no adapter_model.safetensors")
    try:
        return load_file(str(weights))
    except (TypeError, ValueError):  # bfloat16 has no numpy dtype: go through torch
        from safetensors.torch import load_file as load_torch

        return {k: v.float().numpy() for k, v in load_torch(str(weights)).items()}


def convert(adapter_dir: Path, base: Path, out: Path) -> dict:
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise ConversionError(f"{adapter_dir}: not a LoRA adapter ({config.get('peft_type')})")
    if config.get("modules_to_save"):
        raise ConversionError(f"{adapter_dir}: modules_to_save is not supported by llama.cpp LoRA")
    info = read_base(base)
    arch, shapes = info.arch, info.shapes
    names = gguf.get_tensor_name_map(arch_enum(arch), info.blocks)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in load_adapter_tensors(adapter_dir).items():
        match = LORA_KEY.match(key)
        if match is None:
            raise ConversionError(f"{adapter_dir}: unexpected tensor {key}")
        target = names.get_name(match["module"] + ".weight", try_suffixes=(".weight",))
        if target is None or target not in shapes:
            raise ConversionError(f"{key}: no matching weight in {base.name} ({target})")
        pairs.setdefault(target, {})[match["part"]] = np.ascontiguousarray(value, dtype=np.float32)

    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    writer = gguf.GGUFWriter(tmp, arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, scaled_alpha(config))
    for target in sorted(pairs):
        a, b = pairs[target].get("A"), pairs[target].get("B")
        if a is None or b is None:
            raise ConversionError(f"{target}: lora_A or lora_B missing")
        n_in, n_out = shapes[target]
        if a.shape != (a.shape[0], n_in) or b.shape != (n_out, a.shape[0]):
            raise ConversionError(f"{target}: LoRA shapes {a.shape} / {b.shape} do not fit the base weight (in {n_in}, out {n_out})")
        if arch in PERMUTED_ARCHS and target.endswith(("attn_q.weight", "attn_k.weight")):
            b = permute_rows(b, info.heads if target.endswith("attn_q.weight") else info.kv_heads)
        writer.add_tensor(f"{target}.lora_a", a)
        writer.add_tensor(f"{target}.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)
    return {"out": str(out), "arch": arch, "tensors": 2 * len(pairs), "r": int(config["r"]), "alpha": scaled_alpha(config)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archloop.lora.gguf", description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, required=True, help="PEFT adapter directory")
    parser.add_argument("--base", type=Path, required=True, help="the base model's GGUF file")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        summary = convert(args.adapter, args.base, args.out)
    except (ConversionError, OSError, KeyError, ValueError) as error:
        print(f"archloop.lora.gguf: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"event": "converted", **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
