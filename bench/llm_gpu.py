"""LoRA benchmark for a GPU machine, on a random-weight model of SmolLM2-135M's shape (no
weights need to be present): steps/s through the trainer CLI. (Sampling on a GPU worker is
vLLM's job, or the embedded llama.cpp server's; their speed is theirs, not measured here.)

    bash bench/gpu_llm.sh            # on the GPU machine
    python bench/llm_gpu.py --quick  # a small CPU smoke run of the same code"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "python"), str(Path(__file__).parent)]

from archloop.llm.env import force_offline  # noqa: E402

force_offline()

import torch  # noqa: E402

import llm_lora  # noqa: E402
from archloop.llm.synthetic import SMOLLM2_135M, TINY, save_synthetic  # noqa: E402


def lora_bench(model_dir: Path, seq_len: int, batch: int, steps: int, bf16: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        llm_lora.write_pairs(workdir / "pairs.jsonl", steps * batch)
        job = {"baseModel": str(model_dir), "pairsFile": str(workdir / "pairs.jsonl"),
               "outputDir": str(workdir / "out"), "previousAdapter": None, "r": 32, "alpha": 32, "dropout": 0.05,
               "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
               "lr": 1e-5, "epochs": 1, "batchSize": batch, "maxSeqLen": seq_len, "checkpointEvery": 10_000,
               "bf16": bf16, "load4bit": False, "seed": 0, "maxSteps": steps}
        env = os.environ | {"PYTHONPATH": str(REPO / "python")}
        rate = llm_lora.steps_per_second(llm_lora.run_trainer(job, env, workdir))
    return {"seqLen": seq_len, "batch": batch, "bf16": bf16, "steps": steps, "stepsPerSecond": round(rate, 3),
            "tokensPerSecond": round(rate * seq_len * batch, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny model, few tokens: checks the script on CPU")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    shape = TINY if args.quick else SMOLLM2_135M
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_synthetic(Path(tmp) / "model", shape)
        report = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "gpu": torch.cuda.get_device_name(0) if cuda else None,
            "torch": torch.__version__,
            "shape": shape,
            "lora": lora_bench(model_dir, 64 if args.quick else 1024, 2 if args.quick else 8,
                               3 if args.quick else 20, cuda and torch.cuda.is_bf16_supported()),
        }
    report["wallSeconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
