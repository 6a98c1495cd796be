"""Validation throughput: candidates/s through the real CLI, bubblewrap vs --unsafe-no-sandbox,
interleaved in one run so both see the same machine load; plus the warm in-process time
(no interpreter start, torch already imported) to show where the seconds go, and the bare
cost of the sandbox itself: the full bwrap command line the runner builds (minimal mounts,
a per-slot uid, the seccomp filter, the memfd data copy) around `python -c pass`, against
the same interpreter run directly.

usage: .venv/bin/python bench/sandbox_validate.py [--rounds 3] [--bare-runs 20]
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
sys.path.insert(0, str(ROOT / "python"))

from tests.runner.corpus import VALID  # noqa: E402

PROGRAMS = ["simple", "residual_add", "concat", "depthwise_separable", "attention"]


def run_cli(code: str, unsafe: bool, env: dict) -> float:
    request = {"kind": "validate", "code": code, "dataset": {"name": "synthetic"},
               "training": {"threads": 2}}
    args = [sys.executable, "-m", "archloop.runner", "validate"] + (["--unsafe-no-sandbox"] if unsafe else [])
    env = {**env, "ARCHLOOP_ALLOW_UNSAFE": "1"} if unsafe else env  # the comparison run, on a machine of our own
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


def bare_sandbox(runs: int, data_mb: int) -> dict:
    """Milliseconds for bwrap + setpriv + seccomp around an interpreter that does nothing;
    data_mb: the size of the test images copied in (0 for validate, 30 for a CIFAR train job)."""
    from archloop.runner.sandbox import identity, layout, seccomp

    slot = identity.acquire_slot(32, 60) if os.geteuid() == 0 else None
    ident = identity.identity_for("archloop-sbx", slot)
    fd = os.memfd_create("seccomp")
    os.write(fd, seccomp.for_machine())
    data = os.memfd_create("data")
    os.write(data, b"\0" * (data_mb << 20))
    with tempfile.NamedTemporaryFile(suffix=".npy") as train_x:
        os.chmod(train_x.name, 0o644)
        view = layout.Layout(interpreter=layout.interpreter(), system_dirs=layout.system_dirs(),
                             package_dir=str(ROOT / "python" / "archloop"), data_binds={"train_x.npy": train_x.name},
                             data_fds={"test_x.npy": data}, identity=ident, seccomp_fd=fd, job_dir_bytes=1 << 28,
                             tmp_bytes=1 << 26, shm_bytes=1 << 26, env={"PATH": "/usr/bin"})
        python = [os.path.normpath(sys.executable), "-S", "-c", "pass"]
        sandboxed = layout.bwrap_args(view, python)
        times = {"bwrap": [], "direct": []}
        for _ in range(runs):
            for name, argv in (("bwrap", sandboxed), ("direct", python)):
                for handle in (fd, data):
                    os.lseek(handle, 0, os.SEEK_SET)
                started = time.perf_counter()
                subprocess.run(argv, pass_fds=(fd, data), check=True, capture_output=True)
                times[name].append(time.perf_counter() - started)
    if slot:
        slot.release()
    bwrap_ms, direct_ms = (statistics.median(times[k]) * 1000 for k in ("bwrap", "direct"))
    return {f"bare_{data_mb}mb_bwrap_median_ms": round(bwrap_ms, 1), f"bare_{data_mb}mb_direct_median_ms": round(direct_ms, 1),
            f"bare_{data_mb}mb_sandbox_overhead_ms": round(bwrap_ms - direct_ms, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bare-runs", type=int, default=20)
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
    bare = {**bare_sandbox(args.bare_runs, 0), **bare_sandbox(args.bare_runs, 30)}
    report = {
        "candidates": len(walls["bwrap"]),
        "bwrap_median_s": round(statistics.median(walls["bwrap"]), 3),
        "unsandboxed_median_s": round(statistics.median(walls["none"]), 3),
        "bwrap_candidates_per_s": round(len(walls["bwrap"]) / sum(walls["bwrap"]), 3),
        "unsandboxed_candidates_per_s": round(len(walls["none"]) / sum(walls["none"]), 3),
        "sandbox_overhead_ratio": round(statistics.median(walls["bwrap"]) / statistics.median(walls["none"]), 3),
        "warm_inprocess_median_s": round(statistics.median(warm), 3),
        **bare,
        "load_avg_1m": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
