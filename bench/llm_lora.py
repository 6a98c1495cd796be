"""LoRA training speed of the real trainer CLI (python -m archloop.lora) on the converted
SmolLM2-135M at a fixed sequence length, with the paper's LoRA settings (r 32, alpha 32,
dropout 0.05, q/k/v/o/gate/up/down).

    OMP_NUM_THREADS=2 .venv/bin/python bench/llm_lora.py [--seq-len 1024] [--steps 6] [--batch 1]

Every pair is longer than --seq-len tokens, so each sequence is truncated to exactly that
length. Steps/s is taken between the first and the last progress event (the first step,
which includes one-time set-up, is excluded)."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = "import torch.nn as nn\nclass Net(nn.Module):\n    def forward(self, x):\n        return self.layers(x)\n"


def write_pairs(path: Path, count: int) -> None:
    with path.open("w") as f:
        for i in range(count):
            messages = [{"role": "user", "content": f"Write network {i} for CIFAR-10."},
                        {"role": "assistant", "content": f"```python\n{CODE * 200}```"}]
            f.write(json.dumps({"messages": messages}) + "\n")


def run_trainer(job: dict, env: dict, workdir: Path) -> list[tuple[float, dict]]:
    job_file = workdir / "job.json"
    job_file.write_text(json.dumps(job))
    proc = subprocess.Popen([sys.executable, "-m", "archloop.lora", "--job", str(job_file)], env=env,
                            stdout=subprocess.PIPE, stderr=(workdir / "trainer.log").open("w"), text=True)
    events = [(time.perf_counter(), json.loads(line)) for line in proc.stdout]
    if proc.wait() != 0:
        raise SystemExit(f"trainer failed: {events[-1:]}; see {workdir / 'trainer.log'}")
    return events


def steps_per_second(events: list[tuple[float, dict]]) -> float:
    progress = [(t, e["step"]) for t, e in events if e["event"] == "progress"]
    (t0, s0), (t1, s1) = progress[0], progress[-1]
    return (s1 - s0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the converted SmolLM2")
    args = parser.parse_args()
    env = os.environ | {"PYTHONPATH": str(REPO / "python")}
    if args.model_dir is None:
        prepared = subprocess.run([sys.executable, "-m", "archloop.llm.prepare_model"], env=env, check=True,
                                  capture_output=True, text=True)
        args.model_dir = Path(json.loads(prepared.stdout)["modelDir"])
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_pairs(workdir / "pairs.jsonl", args.steps * args.batch)
        job = {"baseModel": str(args.model_dir), "pairsFile": str(workdir / "pairs.jsonl"),
               "outputDir": str(workdir / "out"), "previousAdapter": None, "r": 32, "alpha": 32, "dropout": 0.05,
               "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
               "lr": 1e-5, "epochs": 1, "batchSize": args.batch, "maxSeqLen": args.seq_len,
               "checkpointEvery": 10_000, "bf16": args.bf16, "load4bit": False, "seed": 0, "maxSteps": args.steps}
        started = time.perf_counter()
        events = run_trainer(job, env, workdir)
    rate = steps_per_second(events)
    print(json.dumps({"seqLen": args.seq_len, "batch": args.batch, "bf16": args.bf16, "steps": args.steps,
                      "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
                      "stepsPerSecond": round(rate, 4), "secondsPerStep": round(1 / rate, 2),
                      "tokensPerSecond": round(rate * args.seq_len * args.batch, 1),
                      "wallSeconds": round(time.perf_counter() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
