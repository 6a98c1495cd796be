"""LLM benchmarks for a GPU machine, on a random-weight model of SmolLM2-135M's shape (no
weights need to be present): sampling tokens/s through the server's engine (8 sequential
samples vs one n=8 batch, plus a larger batch) and LoRA steps/s through the trainer CLI.

    bash bench/gpu_llm.sh            # on the GPU machine
    python bench/llm_gpu.py --quick  # a small CPU smoke run of the same code"""

import argparse
import json
import os
import random
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
from archloop.llm.engine import Engine  # noqa: E402
from archloop.llm.sampling import Sampling  # noqa: E402
from archloop.llm.synthetic import SMOLLM2_135M, TINY, random_text, save_synthetic  # noqa: E402


def sampling_bench(model_dir: Path, device: str, max_tokens: int, big_n: int) -> dict:
    engine = Engine(model_dir, "random", None, device)
    prompt = engine.encode(engine.chat_prompt([{"role": "user", "content": random_text(64, 4096, random.Random(0))}]))

    def sample(n: int, seed: int) -> tuple[int, float]:
        result = engine.generate("random", [prompt], Sampling(n, 0.7, 0.95, 100, max_tokens, (), seed))
        return sum(c.completion_tokens for c in result.choices), result.seconds

    sample(1, 0)  # warm-up (kernels, allocator)
    ttft = sorted(engine.generate("random", [prompt], Sampling(1, 0.7, 0.95, 100, 1, (), s)).seconds
                  for s in range(5))[2]
    sequential = [sample(1, s) for s in range(8)]
    seq_rate = sum(t for t, _ in sequential) / sum(s for _, s in sequential)
    rates = {n: (lambda t, s: t / s)(*sample(n, 0)) for n in (8, big_n)}
    return {"device": str(engine.device), "maxTokens": max_tokens, "timeToFirstTokenSeconds": round(ttft, 4),
            "sequentialTokensPerSecond": round(seq_rate, 1),
            "batchedTokensPerSecond": {str(n): round(r, 1) for n, r in rates.items()},
            "ratioN8": round(rates[8] / seq_rate, 2)}


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
            "sampling": sampling_bench(model_dir, "cuda" if cuda else "cpu", 8 if args.quick else 256,
                                       16 if args.quick else 64),
            "lora": lora_bench(model_dir, 64 if args.quick else 1024, 2 if args.quick else 8,
                               3 if args.quick else 20, cuda and torch.cuda.is_bf16_supported()),
        }
    report["wallSeconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
