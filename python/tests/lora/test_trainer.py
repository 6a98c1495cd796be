"""The LoRA trainer CLI on a tiny random llama: loss falls, a SIGKILLed run resumes from its
checkpoint, each failure has its own class, one trainer holds an output dir at a time, and a
trainer dies with the process that started it. (Serving the adapter is tested against the
embedded llama.cpp server in test/llm/embedded/server.test.ts.)"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[2]
ENV = os.environ | {"PYTHONPATH": str(PYTHON_DIR), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "OMP_NUM_THREADS": "1"}

ANSWER = "w20 w21 w22 w23 w24 w25 w26 w27"


def write_pairs(path: Path, count: int) -> Path:
    with path.open("w") as f:
        for i in range(count):
            messages = [{"role": "system", "content": "w0 w1"}, {"role": "user", "content": f"w2 w3 w{10 + i % 4}"},
                        {"role": "assistant", "content": ANSWER}]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def job_for(tmp: Path, base: Path, pairs: Path, **overrides) -> dict:
    return {"baseModel": str(base), "pairsFile": str(pairs), "outputDir": str(tmp / "out"), "previousAdapter": None,
            "r": 8, "alpha": 16, "dropout": 0.0, "targetModules": ["q_proj", "v_proj", "gate_proj", "c_attn"],
            "lr": 0.02, "epochs": 1, "batchSize": 4, "maxSeqLen": 64, "checkpointEvery": 2, "bf16": False,
            "load4bit": False, "seed": 3, "maxSteps": 0} | overrides


def start(tmp: Path, job: dict) -> subprocess.Popen:
    path = tmp / f"job-{len(list(tmp.glob('job-*')))}.json"
    path.write_text(json.dumps(job))
    return subprocess.Popen([sys.executable, "-m", "archloop.lora", "--job", str(path)], env=ENV,
                            stdout=subprocess.PIPE, stderr=(tmp / "trainer.log").open("a"), text=True)


def run_job(tmp: Path, job: dict) -> tuple[int, list[dict]]:
    proc = start(tmp, job)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lora")
    pairs = write_pairs(tmp / "pairs.jsonl", 16)
    code, events = run_job(tmp, job_for(tmp, tiny_model, pairs, epochs=3, lr=0.05))
    assert code == 0, (tmp / "trainer.log").read_text()[-3000:]
    return tmp, events


def test_progress_then_done_and_loss_falls(trained):
    tmp, events = trained
    progress, done = events[:-1], events[-1]
    assert [e["event"] for e in progress] == ["progress"] * 12 and done["event"] == "done"
    assert [e["step"] for e in progress] == list(range(1, 13)) and progress[0]["totalSteps"] == 12
    assert progress[-1]["loss"] < progress[0]["loss"] - 0.5
    assert done["steps"] == 12 and done["finalLoss"] == progress[-1]["loss"]
    adapter = Path(done["adapterDir"])
    assert adapter == tmp / "out" / "adapter" and (adapter / "adapter_model.safetensors").is_file()
    manifest = json.loads((adapter / "manifest.json").read_text())
    assert manifest == done["manifest"]
    assert manifest["hyperparameters"]["targetModules"] == ["gate_proj", "q_proj", "v_proj"]  # c_attn skipped
    assert manifest["dataHash"].startswith("sha256:") and manifest["pairs"] == 16 and manifest["steps"] == 12
    assert {"torch", "transformers", "peft", "trl"} <= set(manifest["versions"])


def test_rerun_of_finished_job_reports_it_again(trained, tiny_model):
    tmp, events = trained
    code, again = run_job(tmp, job_for(tmp, tiny_model, tmp / "pairs.jsonl", epochs=3, lr=0.05))
    assert code == 0 and again == [events[-1]]


def test_continues_from_previous_adapter(trained, tiny_model, tmp_path):
    tmp, events = trained
    pairs = write_pairs(tmp_path / "pairs.jsonl", 4)
    code, more = run_job(tmp_path, job_for(tmp_path, tiny_model, pairs, previousAdapter=events[-1]["adapterDir"],
                                           maxSteps=1))
    assert code == 0 and more[-1]["manifest"]["previousAdapter"] == events[-1]["adapterDir"]
    # It starts where the previous cycle ended, far below a fresh adapter's first loss.
    assert more[0]["loss"] < events[0]["loss"] - 0.5


def test_sigkill_then_rerun_resumes_from_checkpoint(tiny_model, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 40)
    job = job_for(tmp_path, tiny_model, pairs, batchSize=1, maxSteps=30, checkpointEvery=3)
    proc = start(tmp_path, job)
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["step"] >= 5:  # checkpoint-3 is complete once step 4 has been logged
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    code, resumed = run_job(tmp_path, job)
    assert code == 0, (tmp_path / "trainer.log").read_text()[-3000:]
    first_step = resumed[0]["step"]
    assert 4 <= first_step <= seen[-1]["step"] + 1  # continued after a checkpoint, not from zero
    assert [e["step"] for e in resumed[:-1]] == list(range(first_step, 31))
    assert resumed[-1]["steps"] == 30


def single_error(code: int, events: list[dict]) -> dict:
    assert code == 2 and len(events) == 1 and events[0]["event"] == "error"
    return events[0]


def test_error_classes(tiny_model, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    pairs = write_pairs(tmp_path / "pairs.jsonl", 4)
    assert single_error(*run_job(tmp_path, job_for(tmp_path, tiny_model, empty)))["class"] == "empty-corpus"
    missing = single_error(*run_job(tmp_path, job_for(tmp_path, tmp_path / "no-model", pairs)))
    assert missing["class"] == "missing-base-model" and "no-model" in missing["message"]
    bad = single_error(*run_job(tmp_path, job_for(tmp_path, tiny_model, pairs, lr="fast")))
    assert bad["class"] == "bad-job" and bad["field"] == "lr"
    bad = single_error(*run_job(tmp_path, {k: v for k, v in job_for(tmp_path, tiny_model, pairs).items() if k != "r"}))
    assert bad["class"] == "bad-job" and bad["field"] == "r"
    bad = single_error(*run_job(tmp_path, job_for(tmp_path, tiny_model, pairs, targetModules=["nothing"])))
    assert bad["class"] == "bad-job" and bad["field"] == "targetModules"


def test_corrupt_checkpoint_is_reported(tiny_model, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 8)
    job = job_for(tmp_path, tiny_model, pairs, batchSize=2, checkpointEvery=2)
    assert run_job(tmp_path, job)[0] == 0
    out = tmp_path / "out"
    (out / "checkpoints" / "checkpoint-4" / "adapter_model.safetensors").write_bytes(b"\x00garbage")
    # Remove the finished adapter so the re-run must resume from the (damaged) newest checkpoint.
    for f in (out / "adapter").iterdir():
        f.unlink()
    (out / "adapter").rmdir()
    error = single_error(*run_job(tmp_path, job))
    assert error["class"] == "corrupt-checkpoint" and "checkpoint-4" in error["checkpoint"]


def gone(pid: int) -> bool:
    """Exited (a zombie counts: nothing runs any more)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.1)
    return False


def test_one_trainer_per_output_dir(tiny_model, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 40)
    job = job_for(tmp_path, tiny_model, pairs, batchSize=1, maxSteps=12, checkpointEvery=3)
    first = start(tmp_path, job)
    assert json.loads(first.stdout.readline())["event"] == "progress"  # it holds the dir now
    began = time.monotonic()
    error = single_error(*run_job(tmp_path, job))
    assert error["class"] == "output-dir-locked" and f"pid {first.pid}" in error["message"]
    assert time.monotonic() - began < 30  # fails before loading any model
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    code, events = run_job(tmp_path, job)  # the kernel dropped the dead trainer's lock
    assert code == 0 and events[-1]["steps"] == 12, (tmp_path / "trainer.log").read_text()[-3000:]


def test_trainer_dies_with_its_parent(tiny_model, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 40)
    job = tmp_path / "job.json"
    job.write_text(json.dumps(job_for(tmp_path, tiny_model, pairs, batchSize=1, maxSteps=500)))
    events = tmp_path / "events.jsonl"
    # A stand-in for the worker: starts the trainer the way src/llm/trainer.ts does, then is
    # SIGKILLed. The trainer writes to a file, so no broken pipe can end it: only its parent's death.
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import os, subprocess, sys\n"
         f"p = subprocess.Popen([sys.executable, '-m', 'archloop.lora', '--job', {str(job)!r}],"
         f" env=os.environ | {{'ARCHLOOP_PARENT_PID': str(os.getpid())}}, stdout=open({str(events)!r}, 'w'))\n"
         "print(p.pid, flush=True)\n"
         "p.wait()\n"],
        env=ENV, stdout=subprocess.PIPE, stderr=(tmp_path / "trainer.log").open("a"), text=True)
    trainer = int(parent.stdout.readline())
    deadline = time.monotonic() + 120
    while '"progress"' not in (events.read_text() if events.exists() else ""):  # training, not just starting
        assert time.monotonic() < deadline and not gone(trainer), (tmp_path / "trainer.log").read_text()[-3000:]
        time.sleep(0.2)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    try:
        assert wait_gone(trainer, 10), "the trainer outlived the process that started it"
    finally:
        if not gone(trainer):
            os.kill(trainer, signal.SIGKILL)


def test_trainer_whose_parent_is_already_gone_exits(tiny_model, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", 4)
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job_for(tmp_path, tiny_model, pairs)))
    proc = subprocess.run([sys.executable, "-m", "archloop.lora", "--job", str(path)],
                          env=ENV | {"ARCHLOOP_PARENT_PID": "1"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert not (tmp_path / "out").exists()
