"""Validation throughput: candidates/s through the real CLI, bubblewrap vs --unsafe-no-sandbox,
interleaved in one run so both see the same machine load; plus the warm in-process time
(no interpreter start, torch already imported) to show where the seconds go.

usage: .venv/bin/python bench/sandbox_validate.py [--rounds 3]
"""
from __future__ import annotations

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
sys.path.insert(0, str(ROOT / "python"))

from tests.runner.corpus import VALID  # noqa: E402

PROGRAMS = ["simple", "residual_add", "concat", "depthwise_separable", "attention"]


def run_cli(code: str, unsafe: bool, env: dict) -> float:
    request = {"kind": "validate", "code": code, "dataset": {"name": "synthetic"},
               "training": {"threads": 2}}
    args = [sys.executable, "-m", "archloop.runner", "validate"] + (["--unsafe-no-sandbox"] if unsafe else [])
    started = time.perf_counter()
    proc = subprocess.run(args, input=json.dumps(request), capture_output=True, text=True, env=env, cwd=ROOT / "python")
    wall = time.perf_counter() - started
    result = json.loads(proc.stdout.strip().splitlines()[-1])["result"]
    assert result["ok"], result["failure"]
    return wall


def warm_inprocess(rounds: int, datasets: str) -> list[float]:
    import torch

    from archloop.runner import validate
    from archloop.runner.datasets import registry
    from archloop.runner.protocol import ContractSection, DatasetSection, InnerRequest, TrainingSection

    torch.set_num_threads(2)
    directory = registry.prepare(DatasetSection(name="synthetic"))
    spec = registry.spec_of(DatasetSection(name="synthetic"))
    times = []
    with tempfile.TemporaryDirectory() as job:
        for _ in range(rounds):
            for name in PROGRAMS:
                request = InnerRequest(kind="validate", code=VALID[name], spec=spec, data_dir=str(directory),
                                       contract=ContractSection(), training=TrainingSection(), audit_hook=False, job_dir=job)
                started = time.perf_counter()
                assert validate.run(request, lambda *a, **k: None).ok
                times.append(time.perf_counter() - started)
    return times[len(PROGRAMS):] or times  # first round pays one-off lazy imports


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    datasets = tempfile.mkdtemp(prefix="bench-datasets-")
    os.chmod(datasets, 0o755)
    env = {"PATH": os.environ["PATH"], "ARCHLOOP_DATASETS": datasets, "PYTHONPATH": str(ROOT / "python")}
    os.environ["ARCHLOOP_DATASETS"] = datasets
    run_cli(VALID["simple"], True, env)  # builds the dataset cache, warms the page cache
    walls = {"bwrap": [], "none": []}
    for _ in range(args.rounds):
        for name in PROGRAMS:
            walls["bwrap"].append(run_cli(VALID[name], False, env))
            walls["none"].append(run_cli(VALID[name], True, env))
    warm = warm_inprocess(2, datasets)
    report = {
        "candidates": len(walls["bwrap"]),
        "bwrap_median_s": round(statistics.median(walls["bwrap"]), 3),
        "unsandboxed_median_s": round(statistics.median(walls["none"]), 3),
        "bwrap_candidates_per_s": round(len(walls["bwrap"]) / sum(walls["bwrap"]), 3),
        "unsandboxed_candidates_per_s": round(len(walls["none"]) / sum(walls["none"]), 3),
        "sandbox_overhead_ratio": round(statistics.median(walls["bwrap"]) / statistics.median(walls["none"]), 3),
        "warm_inprocess_median_s": round(statistics.median(warm), 3),
        "load_avg_1m": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
