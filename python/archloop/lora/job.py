"""The LoRA job file (JOB.json) and the classified errors the trainer reports."""

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class JobError(Exception):
    """A failure the caller can act on; reported as one {"event":"error"} line, exit code 2."""

    def __init__(self, error_class: str, message: str, **fields):
        super().__init__(message)
        self.error_class = error_class  # empty-corpus | corrupt-checkpoint | missing-base-model | bad-job | output-dir-locked
        self.fields = fields

    def event(self) -> dict:
        return {"event": "error", "class": self.error_class, **self.fields, "message": str(self)}


class LoraJob(BaseModel):
    # Unknown keys are refused: a misspelt optional field would otherwise be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)

    baseModel: str = Field(min_length=1)
    pairsFile: str = Field(min_length=1)
    outputDir: str = Field(min_length=1)
    previousAdapter: str | None
    r: int = Field(ge=1)
    alpha: float = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)
    targetModules: list[str] = Field(min_length=1)
    lr: float = Field(gt=0)
    epochs: float = Field(gt=0)
    batchSize: int = Field(ge=1)
    maxSeqLen: int = Field(ge=8)
    checkpointEvery: int = Field(ge=1)
    bf16: bool
    load4bit: bool
    seed: int
    maxSteps: int = Field(0, ge=0)  # 0 = no cap: train for `epochs`


def read_job(path: Path) -> LoraJob:
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise JobError("bad-job", f"cannot read job file {path}: {e}") from None
    try:
        return LoraJob.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "job"
        raise JobError("bad-job", f"{field}: {first['msg']}", field=field) from None


def fingerprint(job: LoraJob, data_hash: str) -> dict:
    """What decides the adapter: everything but where it is written and how often it is saved.
    Checkpoints made under another fingerprint are not resumed."""
    return job.model_dump(exclude={"outputDir", "checkpointEvery"}) | {"dataHash": data_hash}
