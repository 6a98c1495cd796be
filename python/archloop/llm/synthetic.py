"""Random-weight llama models with a word-level tokenizer, built locally (no hub): for tests and
for benchmarks of the real model's shape. Each vocabulary word is one token, so synthetic text
has an exact, known token count."""

import random
from pathlib import Path

SPECIALS = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ROLES = ["system", "user", "assistant"]

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# SmolLM2-135M-Instruct's shape (config.json of the converted checkpoint).
SMOLLM2_135M = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                    num_key_value_heads=3, max_position_embeddings=8192, vocab_size=49152)
TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=512, vocab_size=128,
            initializer_range=0.3)  # large enough that LoRA can move the tied output layer's logits


def words(vocab_size: int) -> list[str]:
    """The vocabulary: special tokens, role names, then w0, w1, ... up to `vocab_size` entries."""
    fixed = SPECIALS + ROLES
    return fixed + [f"w{i}" for i in range(vocab_size - len(fixed))]


def make_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(words(vocab_size))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", bos_token=None)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tokenizer.chat_template = CHATML
    return tokenizer


def make_model(shape: dict, tokenizer, seed: int = 0):
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(**shape, tie_word_embeddings=True, rope_theta=100000.0,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    return model


def save_synthetic(out: Path, shape: dict = TINY, seed: int = 0) -> Path:
    tokenizer = make_tokenizer(shape["vocab_size"])
    make_model(shape, tokenizer, seed).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def random_text(n_words: int, vocab_size: int, rng: random.Random) -> str:
    ordinary = words(vocab_size)[len(SPECIALS) + len(ROLES):]
    return " ".join(rng.choice(ordinary) for _ in range(n_words))


def _permute_rope(w, n_head: int):
    """HF's rotate-half q/k layout to llama.cpp's interleaved one (what its converter does for llama)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def save_tiny_gguf_pair(out: Path, tokenizer_gguf: Path, seed: int = 0) -> tuple[Path, Path]:
    """A tiny random llama with a real BPE tokenizer (SmolLM2's, copied from its GGUF), saved
    twice: as a transformers checkpoint (what the LoRA trainer loads) and as a GGUF file with
    the same weights (what the embedded llama.cpp server serves). Seconds to build, and a LoRA
    step on it takes a fraction of a second, so the fine-tune → convert → serve path can be
    tested end to end on CPU."""
    import gguf
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    shape = dict(TINY, vocab_size=49152, max_position_embeddings=2048)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_gguf.parent, gguf_file=tokenizer_gguf.name)
    model = make_model(shape, tokenizer, seed)
    hf_dir = out / "hf"
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)

    reader = gguf.GGUFReader(tokenizer_gguf)
    writer = gguf.GGUFWriter(out / "model.gguf", "llama")
    writer.add_name("archloop tiny test llama")
    writer.add_context_length(shape["max_position_embeddings"])
    writer.add_embedding_length(shape["hidden_size"])
    writer.add_block_count(shape["num_hidden_layers"])
    writer.add_feed_forward_length(shape["intermediate_size"])
    writer.add_head_count(shape["num_attention_heads"])
    writer.add_head_count_kv(shape["num_key_value_heads"])
    writer.add_rope_freq_base(100000.0)  # make_model's rope_theta
    writer.add_layer_norm_rms_eps(model.config.rms_norm_eps)
    writer.add_vocab_size(shape["vocab_size"])
    writer.add_rope_dimension_count(shape["hidden_size"] // shape["num_attention_heads"])
    for name, field in reader.fields.items():
        if name.startswith("tokenizer."):
            sub = field.types[1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(name, field.contents(), field.types[0], sub_type=sub)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, shape["num_hidden_layers"])
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight":
            continue  # tied to the embeddings; llama.cpp falls back to token_embd
        array = tensor.detach().to(torch.float32).numpy()
        if hf_name.endswith("q_proj.weight"):
            array = _permute_rope(array, shape["num_attention_heads"])
        elif hf_name.endswith("k_proj.weight"):
            array = _permute_rope(array, shape["num_key_value_heads"])
        target = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        writer.add_tensor(target, np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return hf_dir, out / "model.gguf"
