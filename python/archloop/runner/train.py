"""train: one epoch through the model's own train_setup(prm) and learn(train_data),
then predictions on the test images (the trusted side scores them; the labels never
enter the sandbox).

One epoch means one epoch: everything the program runs (import, __init__, train_setup,
learn, evaluation) is on one clock that starts with the sandbox (`started`), checked
between stages and per batch; the training iterable yields its batches once. The test
images are not in the sandbox while the program trains: they are asked for after `learn`
returns (`test_images`, in a sandbox read from the trusted side through stdin). The
evaluation of the trained instance is measured (meter.py): over the parameter or FLOP
budget there is `too-large`, whatever validation found.
"""

import base64
import contextlib
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from archloop.runner.batches import TensorBatches
from archloop.runner.candidate import check_supported, import_candidate, instantiate, prm_of
from archloop.runner.contract import check_source
from archloop.runner.failures import CandidateFailure, FailureClass
from archloop.runner.loss_monitor import LossTracker, attach, parameters_finite, to_float
from archloop.runner.meter import Meter  # bound before any candidate code (meter.py)
from archloop.runner.protocol import (ContractSection, DatasetSpec, Failure, InnerRequest, InnerResult, LossStats,
                                      TrainingSection)
from archloop.runner.stages import stage

Emit = Callable[..., None]
TestImages = Callable[[], np.ndarray]  # (N, C, H, W) uint8, asked for once learn has returned
PROGRESS_EVERY_S = 1.0
EVAL_BATCH = 500
EVAL_PIXELS = EVAL_BATCH * 32 * 32  # an evaluation batch holds at most 500 CIFAR images' worth


def eval_batch_size(spec: DatasetSpec) -> int:
    """500 images at native size; fewer when resized (a 256×256 batch of 500 is 64× the memory)."""
    _, height, width = spec.input_shape
    return max(1, min(EVAL_BATCH, EVAL_PIXELS // (height * width)))


def pick_device(training: TrainingSection) -> torch.device:
    if training.device == "cuda" or (training.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_split(data_dir: str, name: str, device: torch.device, limit: int = 0) -> torch.Tensor:
    array = np.load(Path(data_dir) / f"{name}.npy", mmap_mode="r")
    if limit:
        array = array[:limit]
    return torch.from_numpy(np.array(array)).to(device)  # a private, writable copy


class Clock:
    """The job's time limit, counted from the sandbox's start (perf_counter seconds)."""

    def __init__(self, started: float, limit_s: float):
        self.started, self.limit_s = started, limit_s
        self.deadline = started + limit_s

    def check(self, stage_name: str, what: str) -> None:
        if time.perf_counter() > self.deadline:
            raise CandidateFailure(FailureClass.TIMEOUT, f"the job passed its time limit of {self.limit_s:g} s (counted "
                                   f"from the sandbox's start: import, __init__, train_setup, learn and evaluation) "
                                   f"{what}", stage_name)


class EpochGuard:
    """Called per batch by the iterable: progress, the time limit, NaN checks."""

    def __init__(self, emit: Emit, tracker: LossTracker, total: int, clock: Clock):
        self.emit, self.tracker, self.total, self.clock = emit, tracker, total, clock
        self.next_report = time.perf_counter() + PROGRESS_EVERY_S
        self.images = 0

    def __call__(self, seen: int) -> None:
        self.images = seen
        self.clock.check("learn", f"after {seen} training images")
        now = time.perf_counter()
        if now >= self.next_report:
            self.next_report = now + PROGRESS_EVERY_S
            self.check_loss()
            last = to_float(float(self.tracker.last)) if self.tracker.last is not None else None
            self.emit("learn", images=seen, total_images=self.total, loss=last)

    def check_loss(self) -> None:
        if self.tracker.bad_steps():
            raise CandidateFailure(FailureClass.NAN_LOSS, f"loss became NaN/inf by step {self.tracker.steps}", "learn")


def predict(model: torch.nn.Module, batches: TensorBatches, autocast, meter: Meter) -> bytes:
    """The predictions that are scored, each batch's forward measured."""
    predictions = []
    with torch.no_grad(), autocast():
        for x, _ in batches:
            predictions.append(meter.forward(model, x).float().argmax(dim=1).to(torch.uint8).cpu())
    return torch.cat(predictions).numpy().tobytes()


def check_budget(meter: Meter, model: torch.nn.Module, contract: ContractSection, result: InnerResult) -> None:
    """The budget of the instance that was trained, as its evaluation measured it."""
    result.params, result.flops = meter.params(model), meter.flops_per_image
    if result.params > contract.max_params:
        raise CandidateFailure(FailureClass.TOO_LARGE, f"{result.params} parameters > limit {contract.max_params} "
                               "(measured on the trained network)", "params")
    if result.flops > contract.max_flops:
        raise CandidateFailure(FailureClass.TOO_LARGE, f"{result.flops:.4g} FLOPs per image > limit "
                               f"{contract.max_flops:.4g} (measured on the trained network)", "flops")


def test_images_from(data_dir: str) -> TestImages:
    """In-process runs (tests): the cached test images, in their published order."""
    return lambda: np.load(Path(data_dir) / "test_x.npy")


def run(request: InnerRequest, emit: Emit, started: float | None = None, test_images: TestImages | None = None) -> InnerResult:
    """started: the sandbox's start (perf_counter), where the time limit counts from."""
    clock = Clock(time.perf_counter() if started is None else started, request.training.time_limit_s)
    test_images = test_images or test_images_from(request.data_dir)
    training = request.training
    timings: dict[str, float] = {}
    device = pick_device(training)
    use_bf16 = training.bf16 and device.type == "cuda"
    result = InnerResult(ok=False, timings=timings, torch_version=torch.__version__, device=device.type,
                         bf16=use_bf16, channels_last=training.channels_last, threads=torch.get_num_threads())
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext
    tracker = LossTracker()
    spec = request.spec
    try:
        with stage("contract", FailureClass.CONTRACT, timings):
            check_source(request.code)
        seed_everything(training.seed)
        with stage("data", FailureClass.CRASH, timings):
            train_x = load_split(request.data_dir, "train_x", device, training.max_train_images)
            train_y = load_split(request.data_dir, "train_y", device, training.max_train_images)
        emit("import")
        with stage("import", FailureClass.IMPORT, timings):
            module = import_candidate(request.code, request.job_dir)
        clock.check("import", "while importing the program")
        with stage("hyperparameters", FailureClass.CONTRACT, timings):
            check_supported(module)
        prm = prm_of(training)
        with stage("instantiate", FailureClass.INSTANTIATE, timings):
            model = instantiate(module, spec, training.batch_size, prm, device)
            if training.channels_last:
                model = model.to(memory_format=torch.channels_last)
        clock.check("instantiate", "in Net(...)")
        with stage("setup", FailureClass.TRAIN_ERROR, timings):
            model.train_setup(prm)
        clock.check("setup", "in train_setup")
        monitored = attach(model, tracker)
        if not monitored:
            result.warnings.append("no criterion attribute found; NaN detection relies on the final parameters")
        guard = EpochGuard(emit, tracker, len(train_x), clock)
        batches = TensorBatches(train_x, train_y, training.batch_size, spec.mean, spec.std, flip=spec.flip,
                                seed=training.seed, channels_last=training.channels_last, on_batch=guard,
                                resize=spec.resize, once=True)
        emit("learn", images=0, total_images=len(train_x))
        with stage("train", FailureClass.TRAIN_ERROR, timings):
            model.train()
            with autocast():
                model.learn(batches)
            if device.type == "cuda":
                torch.cuda.synchronize()
            guard.check_loss()
        clock.check("train", "in learn")
        if batches.extra_passes:
            result.warnings.append(f"learn iterated train_data {batches.passes} times: only the first pass yields "
                                   "batches (one epoch)")
        result.train_images = guard.images
        if result.train_images:
            timings["imagesPerS"] = round(result.train_images / max(timings["trainS"], 1e-9), 2)
        if not parameters_finite(model):
            raise CandidateFailure(FailureClass.NAN_LOSS, "parameters contain NaN/inf after training", "train")
        emit("eval")  # learn has returned: the trusted side hands the test images over now
        with stage("testData", FailureClass.CRASH, timings):
            test_x = torch.from_numpy(np.array(test_images())).to(device)
        test_batches = TensorBatches(test_x, torch.zeros(len(test_x), dtype=torch.int64, device=device), eval_batch_size(spec),
                                     spec.mean, spec.std, shuffle=False, flip=False, channels_last=training.channels_last,
                                     on_batch=lambda seen: clock.check("eval", f"after {seen} test images"),
                                     resize=spec.resize)
        measured = Meter()
        with stage("eval", FailureClass.EVAL_ERROR, timings):
            model.eval()
            predictions = predict(model, test_batches, autocast, measured)
        clock.check("eval", "in the evaluation")
        check_budget(measured, model, request.contract, result)
        result.predictions_b64 = base64.b64encode(predictions).decode()
        result.ok = True
    except CandidateFailure as failure:
        result.failure = Failure(failure_class=failure.failure_class.value, stage=failure.stage, message=failure.message)
    if tracker.steps:
        summary = tracker.summary()
        result.loss = LossStats(steps=summary["steps"], first=to_float(summary["first"]), last=to_float(summary["last"]),
                                mean=to_float(summary["mean"]), non_finite=summary["non_finite"])
    result.timings = timings
    return result
