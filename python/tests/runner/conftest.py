"""Shared fixtures: one dataset cache per session, in-process pipelines (torch imported
once, in this process) and a helper that runs a job through the real CLI + sandbox."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[2]
TRAIN_SIZE, TEST_SIZE = 2048, 512


@pytest.fixture(scope="session", autouse=True)
def datasets_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    os.chmod(root, 0o755)
    os.environ["ARCHLOOP_DATASETS"] = str(root)
    return root


@pytest.fixture(scope="session")
def torch_threads():
    import torch

    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def synthetic(datasets_root):
    from archloop.runner.datasets import cache, registry
    from archloop.runner.protocol import DatasetSection

    section = DatasetSection(name="synthetic", synthetic_train_size=TRAIN_SIZE, synthetic_test_size=TEST_SIZE)
    directory = registry.prepare(section)
    return section, directory, cache.read_spec(directory)


def inner_request(kind, code, synthetic, tmp_path, **overrides):
    from archloop.runner.protocol import ContractSection, InnerRequest, TrainingSection

    section, directory, spec = synthetic
    return InnerRequest(
        kind=kind, code=code, spec=spec, data_dir=str(directory),
        contract=ContractSection(**overrides.get("contract", {})),
        training=TrainingSection(**{"threads": 1, "batch_size": 16, "max_train_images": 512, **overrides.get("training", {})}),
        audit_hook=False, job_dir=str(tmp_path),
    )


@pytest.fixture
def validate_inprocess(synthetic, tmp_path, torch_threads):
    from archloop.runner import validate

    def run(code, **overrides):
        return validate.run(inner_request("validate", code, synthetic, tmp_path, **overrides), lambda *a, **k: None)

    return run


@pytest.fixture
def train_inprocess(synthetic, tmp_path, torch_threads):
    from archloop.runner import train

    def run(code, **overrides):
        events = []
        result = train.run(inner_request("train", code, synthetic, tmp_path, **overrides),
                           lambda stage, **fields: events.append((stage, fields)))
        return result, events

    return run


SYNTHETIC = {"name": "synthetic", "syntheticTrainSize": TRAIN_SIZE, "syntheticTestSize": TEST_SIZE}


def run_cli(kind: str, code: str, *, sandbox=None, contract=None, training=None, extra_args=(), env_extra=None,
            timeout=180, dataset=None, python=None, cwd=None) -> tuple[dict, list[dict], subprocess.CompletedProcess]:
    """Runs `python -m archloop.runner <kind>` as the TS client does; returns (result, progress, process)."""
    request = {
        "kind": kind, "code": code,
        "dataset": dataset or SYNTHETIC,
        "contract": {"validateTimeoutS": 30, **(contract or {})},
        "training": {"threads": 1, "batchSize": 16, "timeLimitS": 30, **(training or {})},
        "sandbox": {"graceS": 30, **(sandbox or {})},
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ARCHLOOP_DATASETS": os.environ["ARCHLOOP_DATASETS"],
           "PYTHONPATH": str(PYTHON_DIR), **(env_extra or {})}
    proc = subprocess.run([python or sys.executable, "-m", "archloop.runner", kind, *extra_args], input=json.dumps(request),
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=str(cwd or PYTHON_DIR))
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    results = [e["result"] for e in events if e.get("event") == "result"]
    progress = [e for e in events if e.get("event") == "progress"]
    errors = [e for e in events if e.get("event") == "error"]
    if errors:
        return {"error": errors[-1]["message"]}, progress, proc
    assert len(results) == 1, f"expected one result, got stdout={proc.stdout[-2000:]} stderr={proc.stderr[-2000:]}"
    return results[0], progress, proc
