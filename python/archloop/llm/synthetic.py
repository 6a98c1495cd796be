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
