"""The runner's JSON boundary: requests in, progress and results out (pydantic).

Field names are camelCase on the wire (the TS side mirrors these models with zod in
src/core/sandbox.ts). Config sections accept unknown keys so a newer TS config does not
break an older runner.

Everything that comes out of the sandbox (InnerResult, ProgressEvent and what they hold) is
untrusted: the candidate runs in that interpreter and can write its own events. Those
models are strict (finite, bounded numbers; bounded strings and lists; known failure
classes) and every string is cleaned of NULs and lone surrogates, which Postgres and
UTF-8 encoders reject, so a forged event becomes a classified failure, never a crash.
"""

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from archloop.runner.failures import FailureClass

_UNSAFE_CHARS = re.compile("[\x00\ud800-\udfff]")
MAX_SAFE_INT = 2**53 - 1  # what a JavaScript number holds exactly


def clean_text(text: str) -> str:
    """NUL and lone surrogates (json.loads accepts "\\ud800") become U+FFFD."""
    return _UNSAFE_CHARS.sub("\ufffd", text)


Text = Annotated[str, AfterValidator(clean_text)]


def bounded_text(limit: int):
    return Annotated[str, StringConstraints(max_length=limit), AfterValidator(clean_text)]


Name = bounded_text(128)
Count = Annotated[int, Field(ge=0, le=MAX_SAFE_INT, strict=True)]  # strict: true is not 1
Seconds = Annotated[float, Field(ge=0, le=1e9)]


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", allow_inf_nan=False)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


# ---- request -------------------------------------------------------------------------

DatasetName = Literal["cifar10", "fashion-mnist", "synthetic"]
MAX_RESIZE = 1024  # a bound against typos, well above nn-gpt's 256


class DatasetSection(Wire):
    name: DatasetName
    path: str = ""
    download: bool = True
    synthetic_train_size: int = Field(2048, gt=0)
    synthetic_test_size: int = Field(512, gt=0)
    # nn-gpt's evaluation protocol: every batch the network sees is resized to resize×resize
    # (batches.resized). None: the dataset's own resolution, the fast default.
    resize: int | None = Field(None, gt=0, le=MAX_RESIZE)


class ContractSection(Wire):
    max_params: int = Field(50_000_000, gt=0)
    max_flops: float = Field(5e10, gt=0)
    validate_batch_size: int = Field(2, gt=0)
    validate_timeout_s: float = Field(60, gt=0)
    memory_limit_mb: int = Field(4096, gt=0)
    # A bound on what a program can carry (a table of public test images and their labels):
    # above any program the LLM writes in 2,048 tokens and 99.6 % of LEMUR's (docs/sandbox.md).
    max_code_bytes: int = Field(32_768, gt=0)


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
    # Test images, handed over after learn (handover.py): each pixel moved by up to this
    # many intensity levels per job, so none matches its public copy byte for byte.
    test_noise: int = Field(4, ge=0, le=32)
    # From the hand-over, the job has max(evalWindowMinS, evalWindowShare × its time before
    # asking) to send its predictions (a program that asks early has the images that long).
    eval_window_min_s: float = Field(30, gt=0)
    eval_window_share: float = Field(0.5, ge=0)


class SandboxSection(Wire):
    """How to confine the candidate. `mode: none` is only honoured with --unsafe-no-sandbox."""

    mode: Literal["bwrap", "none"] = "bwrap"
    # Root workers run each concurrent job as its own uid, <user>-0 … <user>-<slots-1>, so
    # RLIMIT_NPROC (counted per uid) is one job's budget, not one shared by all of them.
    user: str = Field("archloop-sbx", pattern=r"^[a-z_][a-z0-9_-]{0,20}$")
    slots: int = Field(32, gt=0, le=1000)
    slot_wait_s: float = Field(600, ge=0)
    audit_hook: bool = True
    nproc: int = Field(64, gt=0)
    nofile: int = Field(256, gt=0)
    fsize_mb: int = Field(64, gt=0)
    job_dir_mb: int = Field(256, gt=0)
    tmp_mb: int = Field(64, gt=0)
    shm_mb: int = Field(64, gt=0)
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
    # Set when batches are resized (registry.as_seen); input_shape is then (C, resize, resize).
    resize: int | None = None


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
    failure_class: FailureClass = Field(alias="class")
    stage: Name
    message: bounded_text(8192)

    model_config = ConfigDict(populate_by_name=True, extra="ignore", use_enum_values=True)


Scalar = bool | int | float | Name | None  # bool first: pydantic keeps True a bool
AttrValue = Scalar | Annotated[list[Scalar | Annotated[list[Scalar], Field(max_length=64)]], Field(max_length=64)]


class GraphNode(Wire):
    op: Name
    target: bounded_text(1024)
    attrs: Annotated[dict[Name, AttrValue], Field(max_length=64)] = Field(default_factory=dict)
    inputs: Annotated[list[Count], Field(max_length=4096)] = Field(default_factory=list)
    shape: Annotated[list[Annotated[int, Field(ge=-1, le=MAX_SAFE_INT)]], Field(max_length=16)] | None = None
    dtype: Name | None = None


class GraphIR(Wire):
    method: Literal["fx", "jit"]
    nodes: list[GraphNode]
    output: Annotated[list[Count], Field(max_length=4096)]


class LossStats(Wire):
    steps: Count
    first: float | None
    last: float | None
    mean: float | None
    non_finite: Count


Timings = Annotated[dict[Name, Annotated[float, Field(ge=0, le=1e12)]], Field(max_length=64)]


class InnerResult(Wire):
    """What the sandboxed process reports: every field is the candidate's claim, bounded."""

    ok: bool
    failure: Failure | None = None
    output_shape: Annotated[list[Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]], Field(max_length=8)] | None = None
    params: Count | None = None
    flops: Annotated[float, Field(ge=0, le=1e30)] | None = None
    graph: GraphIR | None = None
    warnings: Annotated[list[bounded_text(2048)], Field(max_length=64)] = Field(default_factory=list)
    timings: Timings = Field(default_factory=dict)
    # train
    predictions_b64: str | None = None  # decoded and checked on the trusted side
    train_images: Count | None = None
    device: Literal["cpu", "cuda"] | None = None
    bf16: bool | None = None
    channels_last: bool | None = None
    threads: Annotated[int, Field(ge=1, le=4096)] | None = None
    loss: LossStats | None = None
    torch_version: Name | None = None


STAGE_NAME = r"^[a-z][a-z0-9_-]{0,31}$"


class ProgressEvent(Wire):
    event: Literal["progress"] = "progress"
    stage: Annotated[str, StringConstraints(pattern=STAGE_NAME)]
    elapsed_s: Seconds
    images: Count | None = None
    total_images: Count | None = None
    loss: Annotated[float, Field(ge=-1e30, le=1e30)] | None = None


# ---- the result the TS side stores ---------------------------------------------------


class CgroupInfo(Wire):
    """The caps on the whole sandbox (sandbox/resources.py) and what it used of them."""

    version: Literal["v1", "v2"]
    memory_mb: int
    pids: int
    cpu_cores: float | None
    peak_mb: int | None = None
    oom_kills: int = 0
    pids_refused: int = 0


class SandboxInfo(Wire):
    mode: Literal["bwrap", "none"]
    uid: int | None
    slot: int | None = None  # which per-slot uid ran the job (root workers)
    seccomp: bool = False
    wall_limit_s: float
    address_space_mb: int | None
    cpu_s: int
    nproc: int
    nofile: int
    fsize_mb: int
    gpus: list[str] = Field(default_factory=list)  # device nodes bound into the sandbox
    exit_code: int | None
    signal: str | None
    # How many candidates the zygote that forked this one's sandbox had run before (0: a
    # zygote booted for it); None without a zygote (unsafe mode).
    zygote_jobs: int | None = None
    # The whole sandbox's caps (None: no usable cgroup, see cgroup_note; rlimits only).
    cgroup: CgroupInfo | None = None
    cgroup_note: str | None = None


class Logs(Wire):
    stdout: Text
    stderr: Text
    truncated_bytes: int


class DatasetInfo(Wire):
    name: str
    input_shape: list[int]
    classes: int


class ResultBase(Wire):
    ok: bool
    failure: Failure | None
    dataset: DatasetInfo | None
    warnings: list[Text]
    timings: dict[str, float]
    sandbox: SandboxInfo | None
    logs: Logs
    runner_version: str
    torch_version: Text | None


# Fields whose values come from inside the candidate's own process: nothing outside it can
# verify them, so they are stored as the candidate's claim. Accuracy is not among them: the
# trusted side scores the returned predictions against labels the sandbox never sees.
VALIDATE_CLAIMED = ["ok", "outputShape", "params", "flops", "graph", "structuralHash", "timings"]
TRAIN_CLAIMED = ["trainImages", "loss", "device", "bf16", "channelsLast", "threads", "params", "flops", "timings"]


class ValidateOutcome(ResultBase):
    kind: Literal["validate"] = "validate"
    output_shape: list[int] | None
    params: int | None
    flops: float | None
    graph: GraphIR | None
    structural_hash: str | None
    claimed: list[str] = Field(default_factory=lambda: list(VALIDATE_CLAIMED))


class TrainOutcome(ResultBase):
    kind: Literal["train"] = "train"
    accuracy: float | None
    correct: int | None
    test_size: int | None
    train_images: int | None
    epochs: int
    batch_size: int
    device: str | None
    bf16: bool | None
    channels_last: bool | None
    threads: int | None
    seed: int
    loss: LossStats | None
    params: int | None = None  # measured on the trained network's evaluation (meter.py)
    flops: float | None = None
    claimed: list[str] = Field(default_factory=lambda: list(TRAIN_CLAIMED))


class ResultEvent(Wire):
    event: Literal["result"] = "result"
    result: ValidateOutcome | TrainOutcome = Field(discriminator="kind")
