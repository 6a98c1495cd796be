"""One job on the trusted side: static checks, dataset, sandbox, and the final result.

Flow: syntax + contract (ast, no sandbox needed) -> dataset cache -> sandboxed inner
process -> result assembled here: the structural hash is computed from the returned
IR, and accuracy from the returned predictions against test labels that never entered
the sandbox.
"""
from __future__ import annotations

import base64
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from pydantic import ValidationError

from . import RUNNER_VERSION, contract
from .datasets import cache, registry
from .failures import CandidateFailure, FailureClass
from .protocol import (DatasetInfo, DatasetSpec, Failure, InnerRequest, InnerResult, JobRequest, Logs, ProgressEvent,
                       SandboxInfo, TrainOutcome, ValidateOutcome)
from .sandbox import layout as sandbox_layout
from .sandbox import supervise
from .sandbox.identity import SandboxUnavailable, ensure_user
from .structural_hash import structural_hash

MAX_GRAPH_NODES = 50_000
Emit = Callable[[dict], None]


class InfrastructureError(Exception):
    """Not the candidate's fault: the runner cannot do its job on this machine."""


def wall_limit(request: JobRequest) -> float:
    if request.kind == "validate":
        return request.contract.validate_timeout_s
    return request.training.time_limit_s + request.sandbox.grace_s


def limits_for(request: JobRequest, gpu: bool) -> dict[str, int | str]:
    wall = wall_limit(request)
    threads = request.training.threads
    address_space = None if gpu else (request.contract.memory_limit_mb + request.sandbox.runtime_reserve_mb) * 1024 * 1024
    return {
        "as": address_space if address_space is not None else "inf",
        # CPU time may use every thread for the whole wall time, plus import slack
        "cpu": int(math.ceil(wall * (threads + 1))) + 10,
        "nproc": request.sandbox.nproc,
        "fsize": request.sandbox.fsize_mb * 1024 * 1024,
        "nofile": request.sandbox.nofile,
        "core": 0,
    }


def _failure(cls: FailureClass, message: str, stage: str) -> Failure:
    return Failure(failure_class=cls.value, stage=stage, message=message)


def _python_env(threads: int, job_dir: str, pythonpath: str) -> dict[str, str]:
    """The complete environment of the sandboxed process: nothing of the worker's leaks in."""
    return {
        "PATH": "/usr/bin:/bin", "HOME": job_dir, "TMPDIR": job_dir, "LANG": "C.UTF-8",
        "PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "TORCHINDUCTOR_CACHE_DIR": f"{job_dir}/inductor",
    }


def _signal_name(returncode: Optional[int], bwrap: bool) -> Optional[str]:
    if returncode is None:
        return None
    number = -returncode if returncode < 0 else (returncode - 128 if bwrap and returncode > 128 else None)
    if not number:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def classify_exit(outcome: supervise.Outcome, sig: Optional[str], limit_s: float) -> Failure:
    """Why the sandboxed process ended without a result."""
    if outcome.timed_out:
        return _failure(FailureClass.TIMEOUT, f"exceeded the wall-clock limit of {limit_s:g} s; process tree killed", "sandbox")
    if outcome.output_flood:
        return _failure(FailureClass.SANDBOX_VIOLATION, "stdout/stderr exceeded the output limit; process tree killed", "sandbox")
    if outcome.events_flood:
        return _failure(FailureClass.SANDBOX_VIOLATION, "the event channel was flooded; process tree killed", "sandbox")
    if sig == "SIGXCPU":
        return _failure(FailureClass.TIMEOUT, "exceeded the CPU-time limit (SIGXCPU)", "sandbox")
    if sig == "SIGXFSZ":
        return _failure(FailureClass.SANDBOX_VIOLATION, "exceeded the file-size limit (SIGXFSZ)", "sandbox")
    if sig == "SIGKILL":
        return _failure(FailureClass.OOM, "killed by SIGKILL (out of memory)", "sandbox")
    tail = outcome.stderr.text().strip().splitlines()[-1:] or [""]
    if sig:
        return _failure(FailureClass.CRASH, f"died of {sig}", "sandbox")
    return _failure(FailureClass.CRASH, f"exited with code {outcome.returncode} without a result {tail[0][:300]}".strip(), "sandbox")


class Job:
    def __init__(self, request: JobRequest, unsafe_no_sandbox: bool, emit: Emit):
        self.request = request
        self.emit = emit
        self.mode = "none" if (request.sandbox.mode == "none" or unsafe_no_sandbox) else "bwrap"
        if self.mode == "none" and not unsafe_no_sandbox:
            raise InfrastructureError("sandbox.mode 'none' requires --unsafe-no-sandbox")
        if self.mode == "bwrap" and shutil.which("bwrap") is None:
            raise InfrastructureError(
                "bubblewrap (bwrap) is not installed: refusing to run untrusted code "
                "(install the bubblewrap package, or pass --unsafe-no-sandbox on a throwaway machine)"
            )
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []

    # ---- result assembly ------------------------------------------------------------

    def _base(self, spec: Optional[DatasetSpec], failure: Optional[Failure], inner: Optional[InnerResult],
              sandbox: Optional[SandboxInfo], logs: Logs) -> dict:
        timings = dict(inner.timings) if inner else {}
        timings.update(self.timings)
        timings["totalS"] = round(time.perf_counter() - self.started, 4)
        return dict(
            ok=failure is None, failure=failure,
            dataset=DatasetInfo(name=spec.name, input_shape=spec.input_shape, classes=spec.classes) if spec else None,
            warnings=self.warnings + (inner.warnings if inner else []), timings=timings, sandbox=sandbox, logs=logs,
            runner_version=RUNNER_VERSION, torch_version=inner.torch_version if inner else None,
        )

    def finish(self, spec, failure, inner, sandbox, logs, labels_dir: Optional[Path]):
        base = self._base(spec, failure, inner, sandbox, logs)
        if self.request.kind == "validate":
            graph = inner.graph if inner else None
            if graph is not None and len(graph.nodes) > MAX_GRAPH_NODES:
                base["warnings"].append(f"graph IR dropped: {len(graph.nodes)} nodes > {MAX_GRAPH_NODES}")
                graph = None
            digest = None
            if graph is not None and failure is None:
                try:
                    digest = structural_hash(graph)
                except (IndexError, ValueError) as error:
                    base["warnings"].append(f"graph IR malformed ({error}); no structural hash")
                    graph = None
            return ValidateOutcome(**base, output_shape=inner.output_shape if inner else None,
                                   params=inner.params if inner else None, flops=inner.flops if inner else None,
                                   graph=graph if failure is None else None, structural_hash=digest)
        training = self.request.training
        accuracy = correct = test_size = None
        if failure is None and inner is not None and labels_dir is not None:
            labels = cache.read_test_labels(labels_dir)
            test_size = int(len(labels))
            predictions = np.frombuffer(base64.b64decode(inner.predictions_b64 or ""), dtype=np.uint8)
            if len(predictions) != test_size:
                failure = _failure(FailureClass.EVAL_ERROR, f"{len(predictions)} predictions for {test_size} test images", "eval")
            else:
                correct = int((predictions.astype(np.int64) == labels).sum())
                accuracy = correct / test_size
                if accuracy < training.fail_below_accuracy:
                    failure = _failure(FailureClass.LOW_ACCURACY,
                                       f"accuracy {accuracy:.4f} < {training.fail_below_accuracy}", "eval")
            base["ok"] = failure is None
            base["failure"] = failure
        return TrainOutcome(**base, accuracy=accuracy, correct=correct, test_size=test_size,
                            train_images=inner.train_images if inner else None, epochs=training.epochs,
                            batch_size=training.batch_size, device=inner.device if inner else None,
                            bf16=inner.bf16 if inner else None, channels_last=inner.channels_last if inner else None,
                            threads=inner.threads if inner else None, seed=training.seed,
                            loss=inner.loss if inner else None)

    # ---- running --------------------------------------------------------------------

    def run(self):
        empty_logs = Logs(stdout="", stderr="", truncated_bytes=0)
        try:
            contract.check_source(self.request.code)
        except CandidateFailure as failure:
            return self.finish(None, _failure(failure.failure_class, failure.message, failure.stage), None, None, empty_logs, None)
        self.timings["staticS"] = round(time.perf_counter() - self.started, 4)
        prepared = time.perf_counter()
        try:
            data_dir = registry.prepare(self.request.dataset)
        except Exception as error:
            raise InfrastructureError(f"dataset {self.request.dataset.name}: {error}") from error
        spec = cache.read_spec(data_dir)
        self.timings["datasetS"] = round(time.perf_counter() - prepared, 4)
        return self._sandboxed(spec, data_dir)

    def _gpu(self) -> bool:
        t = self.request.training
        return self.request.kind == "train" and t.device != "cpu" and bool(sandbox_layout.gpu_device_nodes())

    def _sandboxed(self, spec: DatasetSpec, data_dir: Path):
        request, box = self.request, self.request.sandbox
        gpu = self._gpu()
        limits = limits_for(request, gpu)
        threads = request.training.threads
        package_dir = Path(__file__).resolve().parent.parent
        host_job = None
        if self.mode == "bwrap":
            try:
                identity = ensure_user(box.user)
            except (SandboxUnavailable, OSError) as error:
                raise InfrastructureError(str(error)) from error
            job_dir, inner_data_dir = sandbox_layout.JOB_DIR, sandbox_layout.DATA_DIR
            pythonpath = sandbox_layout.PACKAGE_ROOT
        else:
            identity = None
            host_job = tempfile.mkdtemp(prefix="archloop-job-")
            job_dir, inner_data_dir, pythonpath = host_job, str(data_dir), str(package_dir.parent)
        inner_request = InnerRequest(kind=request.kind, code=request.code, spec=spec, data_dir=inner_data_dir,
                                     contract=request.contract, training=request.training,
                                     audit_hook=box.audit_hook, job_dir=job_dir)
        read_fd, write_fd = os.pipe()
        limit_arg = ",".join(f"{k}={v}" for k, v in limits.items())
        inner_cmd = [os.path.normpath(sys.executable), "-s", "-B", "-m", "archloop.runner.inner", "--events-fd", str(write_fd),
                     "--limits", limit_arg, "--threads", str(threads)]
        env = _python_env(threads, job_dir, pythonpath)
        if self.mode == "bwrap":
            layout = sandbox_layout.Layout(
                python=os.path.normpath(sys.executable), venv=sys.prefix, base_python=sys.base_prefix, package_dir=str(package_dir),
                data_files={name: str(data_dir / name) for name in cache.SANDBOX_FILES}, identity=identity,
                job_dir_bytes=box.job_dir_mb * 1024 * 1024, env=env, gpu=gpu, extra_ro_binds=tuple(box.extra_ro_binds))
            argv, spawn_env = sandbox_layout.bwrap_args(layout, inner_cmd), {}
        else:
            argv, spawn_env = inner_cmd, env
        wall = wall_limit(request)
        seen_start = {"start": None}

        def on_line(line: bytes) -> None:
            try:
                payload = json.loads(line)
            except ValueError:
                return
            if isinstance(payload, dict) and payload.get("event") == "progress":
                try:
                    event = ProgressEvent.model_validate(payload)
                except ValidationError:
                    return
                if seen_start["start"] is None:
                    seen_start["start"] = time.perf_counter()
                if event.stage == "ready":
                    self.timings["startupS"] = round(time.perf_counter() - spawned, 4)
                self.emit(event.model_dump(by_alias=True, exclude_none=True))

        spawned = time.perf_counter()
        try:
            outcome = supervise.run(argv, inner_request.to_json().encode(), write_fd, read_fd, wall, box.log_tail_bytes,
                                    box.output_limit_bytes, on_line, env=spawn_env)
        finally:
            if host_job:
                shutil.rmtree(host_job, ignore_errors=True)
        self.timings["sandboxS"] = outcome.wall_s
        sig = _signal_name(outcome.returncode, self.mode == "bwrap")
        if self.mode == "bwrap" and seen_start["start"] is None and not outcome.timed_out:
            raise InfrastructureError(f"the sandbox did not start (bwrap exit {outcome.returncode}): {outcome.stderr.text()[-2000:]}")
        inner, failure = self._inner_result(outcome)
        if inner is None and failure is None:
            failure = classify_exit(outcome, sig, wall)
        elif failure is None and inner.failure is not None:
            failure = inner.failure
        info = SandboxInfo(mode=self.mode, uid=identity.uid if identity else os.getuid(), wall_limit_s=wall,
                           address_space_mb=None if limits["as"] == "inf" else int(limits["as"]) // (1024 * 1024),
                           cpu_s=int(limits["cpu"]), nproc=int(limits["nproc"]), nofile=int(limits["nofile"]),
                           fsize_mb=box.fsize_mb, exit_code=outcome.returncode, signal=sig)
        logs = Logs(stdout=outcome.stdout.text(), stderr=outcome.stderr.text(),
                    truncated_bytes=outcome.stdout.dropped + outcome.stderr.dropped)
        return self.finish(spec, failure, inner, info, logs, data_dir)

    @staticmethod
    def _inner_result(outcome: supervise.Outcome) -> tuple[Optional[InnerResult], Optional[Failure]]:
        """The last well-formed result event, if any (its content is untrusted data)."""
        for line in reversed(outcome.lines):
            try:
                payload = json.loads(line)
            except ValueError:
                continue
            if isinstance(payload, dict) and payload.get("event") == "result":
                try:
                    return InnerResult.model_validate(payload.get("result")), None
                except ValidationError as error:
                    return None, _failure(FailureClass.CRASH, f"malformed result from the sandbox: {str(error)[:300]}", "sandbox")
        return None, None
