"""One sandboxed training epoch of bench/sandbox_reference_net.py through the real runner CLI,
repeated; prints the median epoch time (trainS), images/s and the whole-job wall time.

usage: .venv/bin/python bench/sandbox_train_epoch.py [--train 50000 --test 10000 --batch 16
       --device cuda --bf16 --channels-last --runs 5 --unsafe-no-sandbox]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=50000)
    parser.add_argument("--test", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--unsafe-no-sandbox", action="store_true")
    args = parser.parse_args()
    datasets = os.environ.get("ARCHLOOP_DATASETS") or tempfile.mkdtemp(prefix="bench-datasets-")
    os.chmod(datasets, 0o755)
    env = {"PATH": os.environ["PATH"], "ARCHLOOP_DATASETS": datasets, "PYTHONPATH": str(ROOT / "python")}
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    if args.unsafe_no_sandbox:
        env["ARCHLOOP_ALLOW_UNSAFE"] = "1"  # the comparison run, on a machine of our own
    request = {
        "kind": "train", "code": (ROOT / "bench" / "sandbox_reference_net.py").read_text(),
        "dataset": {"name": "synthetic", "syntheticTrainSize": args.train, "syntheticTestSize": args.test},
        "training": {"batchSize": args.batch, "device": args.device, "bf16": args.bf16, "channelsLast": args.channels_last,
                     "threads": args.threads, "timeLimitS": 900},
    }
    command = [sys.executable, "-m", "archloop.runner", "train"] + (["--unsafe-no-sandbox"] if args.unsafe_no_sandbox else [])
    runs = []
    for _ in range(args.runs):
        started = time.perf_counter()
        proc = subprocess.run(command, input=json.dumps(request), capture_output=True, text=True, env=env, cwd=ROOT / "python")
        wall = time.perf_counter() - started
        last = json.loads(proc.stdout.strip().splitlines()[-1])
        if last.get("event") != "result":
            sys.exit(f"runner error: {last} {proc.stderr[-2000:]}")
        result = last["result"]
        runs.append({"ok": result["ok"], "failure": result["failure"], "accuracy": result["accuracy"], "device": result["device"],
                     "bf16": result["bf16"], "channelsLast": result["channelsLast"], "trainS": result["timings"].get("trainS"),
                     "evalS": result["timings"].get("evalS"), "imagesPerS": result["timings"].get("imagesPerS"),
                     "startupS": result["timings"].get("startupS"), "wallS": round(wall, 3)})
    ok = [r for r in runs if r["ok"]]
    summary = {
        "runs": runs,
        "median_trainS": statistics.median(r["trainS"] for r in ok) if ok else None,
        "median_imagesPerS": statistics.median(r["imagesPerS"] for r in ok) if ok else None,
        "median_wallS": statistics.median(r["wallS"] for r in runs),
        "sandbox": "none" if args.unsafe_no_sandbox else "bwrap",
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
