"""The runner's JSON boundary: requests in, progress and results out (pydantic).

Field names are camelCase on the wire (the TS side mirrors these models with zod in
src/core/sandbox.ts). Config sections accept unknown keys so a newer TS config does not
break an older runner.
"""
from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


# ---- request -------------------------------------------------------------------------

DatasetName = Literal["cifar10", "fashion-mnist", "synthetic"]


class DatasetSection(Wire):
    name: DatasetName
    path: str = ""
    download: bool = True
    synthetic_train_size: int = Field(2048, gt=0)
    synthetic_test_size: int = Field(512, gt=0)


class ContractSection(Wire):
    max_params: int = Field(50_000_000, gt=0)
    max_flops: float = Field(5e10, gt=0)
    validate_batch_size: int = Field(2, gt=0)
    validate_timeout_s: float = Field(60, gt=0)
    memory_limit_mb: int = Field(4096, gt=0)


class TrainingSection(Wire):
    lr: float = 0.01
    momentum: float = 0.9
    dropout: float = 0.2
    batch_size: int = Field(16, gt=0)
    epochs: Literal[1] = 1
    time_limit_s: float = Field(900, gt=0)
    fail_below_accuracy: float = 0.12
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = False
    channels_last: bool = False
    threads: int = Field(2, gt=0)
    seed: int = Field(42, ge=0)
    max_train_images: int = Field(0, ge=0)


class SandboxSection(Wire):
    """How to confine the candidate. `mode: none` is only honoured with --unsafe-no-sandbox."""

    mode: Literal["bwrap", "none"] = "bwrap"
    user: str = "archloop-sbx"
    audit_hook: bool = True
    nproc: int = Field(64, gt=0)
    nofile: int = Field(256, gt=0)
    fsize_mb: int = Field(64, gt=0)
    job_dir_mb: int = Field(256, gt=0)
    # torch maps ~3.3 GB of address space at import (shared libraries, mostly not resident),
    # so RLIMIT_AS = memoryLimitMb + this reserve. Without CUDA only; CUDA needs unlimited AS.
    runtime_reserve_mb: int = Field(4096, ge=0)
    log_tail_bytes: int = Field(16_384, gt=0)
    # train: wall limit = training.timeLimitS (the epoch, checked per batch inside) + this
    # allowance for interpreter start, data loading and evaluation.
    grace_s: float = Field(60, ge=0)
    output_limit_bytes: int = Field(8 * 1024 * 1024, gt=0)
    extra_ro_binds: list[str] = Field(default_factory=list)


class JobRequest(Wire):
    kind: Literal["validate", "train"]
    code: str
    dataset: DatasetSection
    contract: ContractSection = Field(default_factory=ContractSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    sandbox: SandboxSection = Field(default_factory=SandboxSection)


# ---- dataset spec --------------------------------------------------------------------


class DatasetSpec(Wire):
    name: str
    input_shape: list[int]  # (C, H, W)
    classes: int
    class_names: list[str]
    mean: list[float]
    std: list[float]
    train_size: int
    test_size: int
    flip: bool  # random horizontal flips are label-preserving for this data
    source: str


# ---- inside the sandbox --------------------------------------------------------------


class InnerRequest(Wire):
    """What the trusted launcher hands to the sandboxed process (never the test labels)."""

    kind: Literal["validate", "train"]
    code: str
    spec: DatasetSpec
    data_dir: str
    contract: ContractSection
    training: TrainingSection
    audit_hook: bool
    job_dir: str


class Failure(Wire):
    failure_class: str = Field(alias="class")
    stage: str
    message: str

    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class GraphNode(Wire):
    op: str
    target: str
    attrs: dict[str, Union[str, int, float, bool, None, list]] = Field(default_factory=dict)
    inputs: list[int] = Field(default_factory=list)
    shape: Optional[list[int]] = None
    dtype: Optional[str] = None


class GraphIR(Wire):
    method: Literal["fx", "jit"]
    nodes: list[GraphNode]
    output: list[int]


class LossStats(Wire):
    steps: int
    first: Optional[float]
    last: Optional[float]
    mean: Optional[float]
    non_finite: int


class InnerResult(Wire):
    ok: bool
    failure: Optional[Failure] = None
    output_shape: Optional[list[int]] = None
    params: Optional[int] = None
    flops: Optional[float] = None
    graph: Optional[GraphIR] = None
    warnings: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    # train
    predictions_b64: Optional[str] = None
    train_images: Optional[int] = None
    device: Optional[str] = None
    bf16: Optional[bool] = None
    channels_last: Optional[bool] = None
    threads: Optional[int] = None
    loss: Optional[LossStats] = None
    torch_version: Optional[str] = None


class ProgressEvent(Wire):
    event: Literal["progress"] = "progress"
    stage: str
    elapsed_s: float
    images: Optional[int] = None
    total_images: Optional[int] = None
    loss: Optional[float] = None


# ---- the result the TS side stores ---------------------------------------------------


class SandboxInfo(Wire):
    mode: Literal["bwrap", "none"]
    uid: Optional[int]
    wall_limit_s: float
    address_space_mb: Optional[int]
    cpu_s: int
    nproc: int
    nofile: int
    fsize_mb: int
    exit_code: Optional[int]
    signal: Optional[str]


class Logs(Wire):
    stdout: str
    stderr: str
    truncated_bytes: int


class DatasetInfo(Wire):
    name: str
    input_shape: list[int]
    classes: int


class ResultBase(Wire):
    ok: bool
    failure: Optional[Failure]
    dataset: Optional[DatasetInfo]
    warnings: list[str]
    timings: dict[str, float]
    sandbox: Optional[SandboxInfo]
    logs: Logs
    runner_version: str
    torch_version: Optional[str]


class ValidateOutcome(ResultBase):
    kind: Literal["validate"] = "validate"
    output_shape: Optional[list[int]]
    params: Optional[int]
    flops: Optional[float]
    graph: Optional[GraphIR]
    structural_hash: Optional[str]


class TrainOutcome(ResultBase):
    kind: Literal["train"] = "train"
    accuracy: Optional[float]
    correct: Optional[int]
    test_size: Optional[int]
    train_images: Optional[int]
    epochs: int
    batch_size: int
    device: Optional[str]
    bf16: Optional[bool]
    channels_last: Optional[bool]
    threads: Optional[int]
    seed: int
    loss: Optional[LossStats]


class ResultEvent(Wire):
    event: Literal["result"] = "result"
    result: Union[ValidateOutcome, TrainOutcome] = Field(discriminator="kind")
