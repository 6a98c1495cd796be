"""validate: import -> hyperparameters -> instantiate -> forward (measured) -> params -> FLOPs -> graph IR.

Runs inside the sandbox (or in-process in tests). Syntax and the static contract are
checked earlier on the trusted side (contract.py); they are re-checked here so the
in-process path is complete on its own.
"""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from archloop.runner.batches import resized
from archloop.runner.candidate import check_supported, import_candidate, instantiate, prm_of
from archloop.runner.contract import check_source
# Bound when this module is imported (in the zygote, before any candidate), so a program that
# rebinds archloop.runner.graph_ir.build or archloop.runner.meter.Meter changes nothing here.
from archloop.runner.graph_ir import build as build_graph
from archloop.runner.meter import Meter
from archloop.runner.failures import CandidateFailure, FailureClass
from archloop.runner.protocol import Failure, InnerRequest, InnerResult
from archloop.runner.stages import stage

Emit = Callable[[str], None]


def sample_batch(data_dir: str, spec, batch: int) -> torch.Tensor:
    """The first `batch` training images, normalized and resized as in training."""
    images = np.load(Path(data_dir) / "train_x.npy", mmap_mode="r")[:batch]
    x = torch.from_numpy(np.array(images)).float() / 255.0
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return resized((x - mean) / std, spec.resize)


def check_output(output: object, batch: int, classes: int) -> list[int]:
    if not isinstance(output, torch.Tensor):
        raise CandidateFailure(FailureClass.SHAPE, f"forward returned {type(output).__name__}, expected a Tensor", "shape")
    shape = list(output.shape)
    if shape != [batch, classes]:
        raise CandidateFailure(FailureClass.SHAPE, f"forward returned shape {tuple(shape)}, expected ({batch}, {classes})", "shape")
    if not output.is_floating_point():
        raise CandidateFailure(FailureClass.SHAPE, f"forward returned dtype {output.dtype}, expected floating point", "shape")
    if not torch.isfinite(output).all():
        raise CandidateFailure(FailureClass.NON_FINITE, "forward output contains NaN or inf", "forward")
    return shape


def run(request: InnerRequest, emit: Emit) -> InnerResult:
    timings: dict[str, float] = {}
    result = InnerResult(ok=False, timings=timings, torch_version=torch.__version__)
    started = time.perf_counter()
    batch = request.contract.validate_batch_size
    device = torch.device("cpu")
    try:
        with stage("contract", FailureClass.CONTRACT, timings):
            check_source(request.code)
        emit("import")
        with stage("import", FailureClass.IMPORT, timings):
            module = import_candidate(request.code, request.job_dir)
        with stage("hyperparameters", FailureClass.CONTRACT, timings):
            check_supported(module)
        emit("instantiate")
        with stage("instantiate", FailureClass.INSTANTIATE, timings):
            model = instantiate(module, request.spec, batch, prm_of(request.training), device)
            model.eval()
        x = sample_batch(request.data_dir, request.spec, batch)
        emit("forward")
        measured = Meter()  # parameters and FLOPs counted on this very forward (meter.py)
        with stage("forward", FailureClass.FORWARD, timings):
            with torch.no_grad():
                output = measured.forward(model, x)
        result.output_shape = check_output(output, batch, request.spec.classes)
        result.params = measured.params(model)
        if result.params > request.contract.max_params:
            raise CandidateFailure(FailureClass.TOO_LARGE, f"{result.params} parameters > limit {request.contract.max_params}", "params")
        result.flops = measured.flops_per_image
        if result.flops > request.contract.max_flops:
            raise CandidateFailure(FailureClass.TOO_LARGE, f"{result.flops:.4g} FLOPs per image > limit {request.contract.max_flops:.4g}", "flops")
        emit("graph")
        graph_started = time.perf_counter()
        try:
            result.graph, warnings, _ = build_graph(model, x)
            result.warnings += warnings
        except Exception as error:  # neither tracer copes: the candidate stays valid, without an IR
            result.warnings.append(f"no graph IR: {type(error).__name__}: {str(error)[:300]}")
        timings["graphS"] = round(time.perf_counter() - graph_started, 4)
        result.ok = True
    except CandidateFailure as failure:
        result.failure = Failure(failure_class=failure.failure_class.value, stage=failure.stage, message=failure.message)
    timings["validateS"] = round(time.perf_counter() - started, 4)
    result.timings = timings
    return result
