"""Base model and LoRA set-up for the trainer: precision, optional 4-bit loading, target
modules that exist in the model, and continuing from the previous cycle's adapter."""

import importlib.util
import logging
from pathlib import Path

import torch

from archloop.llm.jsonlog import log
from archloop.lora.job import JobError, LoraJob

logger = logging.getLogger("archloop.lora")


def can_load_4bit() -> bool:
    return torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None


def existing_targets(module_names: list[str], wanted: list[str]) -> tuple[list[str], list[str]]:
    """Split `wanted` into names that match some module (by last name component, as PEFT
    matches them) and names that match none."""
    leaves = {name.rsplit(".", 1)[-1] for name in module_names}
    return [t for t in wanted if t in leaves], [t for t in wanted if t not in leaves]


def load_base(job: LoraJob):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = Path(job.baseModel)
    if not (base / "config.json").is_file():
        raise JobError("missing-base-model", f"no transformers checkpoint at {base} (config.json missing)",
                       baseModel=str(base))
    tokenizer = AutoTokenizer.from_pretrained(base)
    if not tokenizer.chat_template:
        raise JobError("missing-base-model", f"the tokenizer in {base} has no chat template", baseModel=str(base))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = {"dtype": torch.float32}
    quantized = job.load4bit and can_load_4bit()
    if job.load4bit and not quantized:
        log(logger, logging.WARNING, "load4bit needs CUDA and bitsandbytes; training in full precision",
            cuda=torch.cuda.is_available(), bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None)
    if quantized:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16 if job.bf16 else torch.float16)
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    return model, tokenizer, quantized


def attach_lora(model, job: LoraJob):
    """A trainable PeftModel: the previous adapter continued, or a fresh LoRA from the job."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if job.previousAdapter is not None:
        previous = Path(job.previousAdapter)
        if not (previous / "adapter_config.json").is_file():
            raise JobError("bad-job", f"previousAdapter {previous} holds no LoRA adapter", field="previousAdapter")
        peft_model = PeftModel.from_pretrained(model, str(previous), is_trainable=True)
        config = peft_model.peft_config["default"]
        if (config.r, config.lora_alpha) != (job.r, job.alpha):
            log(logger, logging.WARNING, "continuing the previous adapter keeps its rank and alpha",
                r=config.r, alpha=config.lora_alpha)
        return peft_model
    targets, missing = existing_targets([n for n, _ in model.named_modules()], job.targetModules)
    if missing:
        log(logger, logging.WARNING, "targetModules absent from the model are skipped", missing=missing)
    if not targets:
        raise JobError("bad-job", f"targetModules: none of {job.targetModules} exist in the model",
                       field="targetModules")
    config = LoraConfig(r=job.r, lora_alpha=job.alpha, lora_dropout=job.dropout, target_modules=targets,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def lora_settings(peft_model) -> dict:
    """The LoRA shape actually trained, for the manifest."""
    config = peft_model.peft_config["default"]
    return {"r": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
            "targetModules": sorted(config.target_modules)}
