"""LoRA fine-tuning of the base model on chat-format prompt/code pairs.

    python -m archloop.lora --job JOB.json

stdout carries JSON lines only: {"event":"progress",...} per step, then {"event":"done",...};
or one {"event":"error","class":...} line and exit code 2. Logs go to stderr. Re-running with
the same outputDir resumes from the last checkpoint; re-running a finished job reports it again.
One trainer per outputDir at a time (a second one fails with `output-dir-locked`), and the
trainer dies with the process that started it."""

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from archloop.llm.env import force_offline, share_cores_politely
from archloop.llm.jsonlog import log
from archloop.lora.events import claim_stdout, emit
from archloop.lora.guard import die_with_parent, lock_output_dir
from archloop.lora.job import JobError, LoraJob, fingerprint, read_job

logger = logging.getLogger("archloop.lora")


def write_json_atomic(path: Path, value: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def done_event(adapter: Path, manifest: dict) -> dict:
    return {"event": "done", "adapterDir": str(adapter), "steps": manifest["steps"],
            "finalLoss": manifest["finalLoss"], "manifest": manifest}


def finished_manifest(out: Path, job_fp: dict) -> dict | None:
    """The manifest of an adapter this very job already produced, if any."""
    try:
        same_job = json.loads((out / "job.json").read_text()) == job_fp
        return json.loads((out / "adapter" / "manifest.json").read_text()) if same_job else None
    except (OSError, json.JSONDecodeError):
        return None


def claim_output_dir(out: Path, job_fp: dict) -> None:
    """Record the job in `out`; a different job's checkpoints and adapter there are discarded
    (resuming them would train the wrong thing)."""
    out.mkdir(parents=True, exist_ok=True)
    recorded = out / "job.json"
    if recorded.exists() and json.loads(recorded.read_text()) != job_fp:
        log(logger, logging.WARNING, "outputDir held another job; starting afresh", outputDir=str(out))
        for stale in ("checkpoints", "adapter"):
            shutil.rmtree(out / stale, ignore_errors=True)
    write_json_atomic(recorded, job_fp)


def run(job: LoraJob) -> dict:
    from archloop.hashing import sha256_file
    from archloop.lora.checkpoints import resumable_checkpoint
    from archloop.lora.data import read_pairs, tokenize_pairs
    from archloop.lora.manifest import build_manifest

    if not Path(job.baseModel).is_dir():
        raise JobError("missing-base-model", f"base model directory {job.baseModel} does not exist",
                       baseModel=job.baseModel)
    pairs = read_pairs(Path(job.pairsFile))
    data_hash = sha256_file(Path(job.pairsFile))
    out = Path(job.outputDir)
    lock_output_dir(out)  # held until exit: nothing below races another trainer
    job_fp = fingerprint(job, data_hash)
    if (manifest := finished_manifest(out, job_fp)) is not None:
        return done_event(out / "adapter", manifest)
    claim_output_dir(out, job_fp)
    resume_from = resumable_checkpoint(out / "checkpoints")
    if resume_from:
        log(logger, logging.INFO, "resuming", checkpoint=str(resume_from))

    # Heavy imports only once the cheap checks have passed, so bad jobs fail within seconds.
    import transformers

    from archloop.lora.model import attach_lora, load_base, lora_settings
    from archloop.lora.train import final_loss, train

    transformers.set_seed(job.seed)
    model, tokenizer, quantized = load_base(job)
    rows, too_long = tokenize_pairs(tokenizer, pairs, job.maxSeqLen)
    if too_long:
        log(logger, logging.WARNING, "pairs longer than maxSeqLen left out", skipped=too_long, maxSeqLen=job.maxSeqLen)
    peft_model = attach_lora(model, job)
    trainer = train(peft_model, tokenizer, rows, job, out / "checkpoints", resume_from)

    steps, loss = trainer.state.global_step, final_loss(trainer.state.log_history)
    manifest = build_manifest(job, data_hash, len(rows), lora_settings(peft_model), quantized, steps, loss) | {
        "skippedTooLong": too_long}
    staging = out / "adapter.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    peft_model.save_pretrained(str(staging))
    write_json_atomic(staging / "manifest.json", manifest)
    shutil.rmtree(out / "adapter", ignore_errors=True)
    os.replace(staging, out / "adapter")  # the adapter appears whole or not at all
    return done_event(out / "adapter", manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archloop.lora", description="LoRA fine-tuning (archloop)")
    parser.add_argument("--job", type=Path, required=True, help="JOB.json")
    args = parser.parse_args(argv)
    die_with_parent()
    force_offline()
    share_cores_politely()
    claim_stdout()
    from archloop.llm import jsonlog

    jsonlog.setup()
    try:
        emit(run(read_job(args.job)))
        return 0
    except JobError as e:
        emit(e.event())
        return 2


if __name__ == "__main__":
    sys.exit(main())
