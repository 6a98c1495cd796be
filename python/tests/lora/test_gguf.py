"""PEFT adapter → llama.cpp GGUF LoRA: tensor names of the base GGUF, lora_a (r × in) and
lora_b (out × r), alpha (rsLoRA folded in), and clear errors for what llama.cpp cannot load."""

import json
import math

import gguf
import numpy as np
import pytest
from safetensors.numpy import save_file

from archloop.lora.gguf import ConversionError, convert

# SmolLM2-135M: hidden 576, 3 KV heads of 64, MLP 1536.
SHAPES = {"self_attn.q_proj": (576, 576), "self_attn.v_proj": (192, 576), "mlp.down_proj": (576, 1536)}


def peft_adapter(path, r=4, alpha=8, layers=(0, 29), extra=None, **config):
    path.mkdir()
    rng = np.random.default_rng(0)
    tensors = {}
    for layer in layers:
        for module, (out, inp) in SHAPES.items():
            key = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{key}.lora_A.weight"] = rng.standard_normal((r, inp)).astype(np.float32)
            tensors[f"{key}.lora_B.weight"] = rng.standard_normal((out, r)).astype(np.float32)
    tensors.update(extra or {})
    save_file(tensors, str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": r, "lora_alpha": alpha, **config}))
    return tensors


def test_names_shapes_and_alpha(smollm_gguf, tmp_path):
    tensors = peft_adapter(tmp_path / "adapter")
    summary = convert(tmp_path / "adapter", smollm_gguf, tmp_path / "adapter.gguf")
    assert summary["tensors"] == 12 and summary["arch"] == "llama"
    reader = gguf.GGUFReader(tmp_path / "adapter.gguf")
    field = reader.fields["adapter.lora.alpha"]
    assert field.parts[field.data[0]][0] == pytest.approx(8.0)
    names = {t.name: t for t in reader.tensors}
    a = names["blk.29.ffn_down.weight.lora_a"]
    b = names["blk.29.ffn_down.weight.lora_b"]
    assert list(a.shape) == [1536, 4] and list(b.shape) == [4, 576]  # ggml order: (in, r) and (r, out)
    source = tensors["base_model.model.model.layers.29.mlp.down_proj.lora_A.weight"]
    assert np.array_equal(np.asarray(a.data).reshape(source.shape), source)
    assert "blk.0.attn_v.weight.lora_b" in names and not list(tmp_path.glob("adapter.gguf.tmp-*"))


def test_rslora_scale_is_kept(smollm_gguf, tmp_path):
    peft_adapter(tmp_path / "adapter", r=16, alpha=8, use_rslora=True)
    assert convert(tmp_path / "adapter", smollm_gguf, tmp_path / "a.gguf")["alpha"] == pytest.approx(8 * math.sqrt(16))


def test_refuses_what_llama_cpp_cannot_load(smollm_gguf, tmp_path):
    peft_adapter(tmp_path / "saved", modules_to_save=["lm_head"])
    with pytest.raises(ConversionError, match="modules_to_save"):
        convert(tmp_path / "saved", smollm_gguf, tmp_path / "x.gguf")
    peft_adapter(tmp_path / "wrong", extra={"base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight": np.zeros((4, 100), np.float32),
                                             "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight": np.zeros((192, 4), np.float32)})
    with pytest.raises(ConversionError, match="do not fit"):
        convert(tmp_path / "wrong", smollm_gguf, tmp_path / "y.gguf")
