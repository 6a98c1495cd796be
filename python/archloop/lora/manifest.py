"""manifest.json beside each adapter: what it was trained from and how."""

import platform
import time
from importlib.metadata import version

from archloop.lora.job import LoraJob


def library_versions() -> dict:
    names = ("torch", "transformers", "peft", "trl", "accelerate")
    return {"python": platform.python_version()} | {name: version(name) for name in names}


def build_manifest(job: LoraJob, data_hash: str, pairs: int, lora: dict, quantized: bool,
                   steps: int, final_loss: float | None) -> dict:
    return {
        "baseModel": job.baseModel,
        "previousAdapter": job.previousAdapter,
        "dataHash": f"sha256:{data_hash}",
        "pairs": pairs,
        "hyperparameters": lora | {
            "lr": job.lr, "epochs": job.epochs, "batchSize": job.batchSize, "maxSeqLen": job.maxSeqLen,
            "bf16": job.bf16, "load4bit": quantized, "seed": job.seed, "maxSteps": job.maxSteps,
        },
        "steps": steps,
        "finalLoss": final_loss,
        "versions": library_versions(),
        "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
