"""One job on the trusted side: static checks, dataset, sandbox, and the final result.

Flow: syntax + contract (ast, no sandbox needed) -> dataset cache -> the job's data view
(train: test images in a secret order) -> a zygote for this job's plan (from the pool, or
booted for this job alone) -> the candidate in a fresh sandbox forked by it -> result
assembled here from untrusted events: limits re-checked, the structural hash computed from
the returned IR, and accuracy from the returned predictions against test labels that never
entered the sandbox. Whatever the candidate writes, the result is a valid outcome; only a
broken machine raises InfrastructureError.
"""

import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from archloop.runner import RUNNER_VERSION, contract, lifeline, untrusted, verify, warm
from archloop.runner.datasets import cache, registry
from archloop.runner.failures import CandidateFailure, FailureClass
from archloop.runner.protocol import (DatasetInfo, DatasetSpec, Failure, InnerRequest, InnerResult, JobRequest, Logs,
                                     SandboxInfo, SandboxSection, TrainOutcome, ValidateOutcome)
from archloop.runner.sandbox import gpu as gpus
from archloop.runner.sandbox import jobdata, supervise
from archloop.runner.sandbox import layout as sandbox_layout
from archloop.runner.sandbox.identity import Identity, SandboxUnavailable, Slot, SlotsBusy, acquire_slot, identity_for
from archloop.runner.structural_hash import structural_hash

MAX_GRAPH_NODES = 50_000
BOOT_TIMEOUT_S = 300.0  # a zygote's start (torch import) under heavy load
Emit = Callable[[dict], None]


class InfrastructureError(Exception):
    """Not the candidate's fault: the runner cannot do its job on this machine. retryable:
    it may pass on its own (every sandbox slot busy), unlike a missing tool or dataset."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


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


UNSAFE_WARNING = "UNSAFE: ran without a sandbox (ARCHLOOP_SANDBOX=none): neither containment nor the accuracy is guaranteed"
PROGRESS_INTERVAL_S = 0.25
PROGRESS_MAX_EVENTS = 10_000


def _python_env(threads: int, job_dir: str, pythonpath: str) -> dict[str, str]:
    """The complete environment of the sandboxed process: nothing of the worker's leaks in."""
    return {
        "PATH": "/usr/bin:/bin", "HOME": job_dir, "TMPDIR": job_dir, "LANG": "C.UTF-8",
        "PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "TORCHINDUCTOR_CACHE_DIR": f"{job_dir}/inductor",
    }


class ProgressThrottle:
    """Forwards a progress event when its stage changes, else at most every interval: the
    events are untrusted and become activity heartbeats."""

    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S, max_events: int = PROGRESS_MAX_EVENTS):
        self.interval_s, self.max_events = interval_s, max_events
        self.stage: str | None = None
        self.last = -math.inf
        self.sent = 0

    def allow(self, stage: str, now: float) -> bool:
        if self.sent >= self.max_events or (stage == self.stage and now - self.last < self.interval_s):
            return False
        self.stage, self.last = stage, now
        self.sent += 1
        return True


def gpu_view(kind: str, device: str, env: dict[str, str]) -> tuple[sandbox_layout.GpuView | None, list[str]]:
    """The allotted GPUs (CUDA_VISIBLE_DEVICES) for a train job that may use CUDA, and warnings."""
    if kind != "train" or device == "cpu":
        return None, []
    visible = env.get("CUDA_VISIBLE_DEVICES")
    allotment = gpus.allot(visible, gpus.installed())
    nodes = gpus.device_nodes(allotment)
    if not any(node[len("/dev/nvidia"):].isdigit() for node in nodes):
        return None, []
    binds, links = gpus.sys_paths(allotment)
    variables = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    if visible is not None:
        variables["CUDA_VISIBLE_DEVICES"] = visible
    view = sandbox_layout.GpuView(nodes=tuple(nodes), sys_binds=tuple(binds), sys_links=tuple(sorted(links.items())),
                                  env=tuple(sorted(variables.items())))
    return view, list(allotment.warnings)


def plan_for(kind: str, box: SandboxSection, gpu: sandbox_layout.GpuView | None) -> warm.Plan:
    """The zygote plan of a job (what fixes its zygote's sandbox; no dataset)."""
    return warm.Plan(kind=kind, gpu=gpu, extra_ro_binds=tuple(box.extra_ro_binds))


def job_identity(box: SandboxSection) -> tuple[Slot | None, Identity | None]:
    """Root workers: a slot of its own for this job (its uid), held until the job ends."""
    if os.geteuid() != 0:
        return None, None
    try:
        slot = acquire_slot(box.slots, box.slot_wait_s)
    except SlotsBusy as error:
        raise InfrastructureError(str(error), retryable=True) from error
    except OSError as error:
        raise InfrastructureError(str(error)) from error
    try:
        return slot, identity_for(box.user, slot)
    except SandboxUnavailable as error:
        slot.release()
        raise InfrastructureError(str(error)) from error


def _signal_name(returncode: int | None) -> str | None:
    """The signal behind an exit code of 128 + n (how bwrap and the zygote report a killed child)."""
    if returncode is None or returncode <= 128:
        return None
    try:
        return signal.Signals(returncode - 128).name
    except ValueError:
        return f"SIG{returncode - 128}"


def classify_exit(outcome: supervise.Outcome, sig: str | None, limit_s: float) -> Failure:
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
    if sig == "SIGSYS":
        return _failure(FailureClass.SANDBOX_VIOLATION, "killed by the seccomp filter (a forbidden system call ABI)", "sandbox")
    tail = outcome.stderr.text().strip().splitlines()[-1:] or [""]
    if sig:
        return _failure(FailureClass.CRASH, f"died of {sig}", "sandbox")
    return _failure(FailureClass.CRASH, f"exited with code {outcome.returncode} without a result {tail[0][:300]}".strip(), "sandbox")


def interpret(outcome: supervise.Outcome, sig: str | None, limit_s: float) -> tuple[InnerResult | None, Failure | None]:
    """The sandbox's report and the failure it amounts to. A genuine run writes exactly one
    result event; several mean the program wrote its own. Limits the supervisor saw broken
    (time, output, signals) win over whatever the process reported."""
    if outcome.timed_out or outcome.output_flood or outcome.events_flood or sig:
        return None, classify_exit(outcome, sig, limit_s)
    found = untrusted.results_of(outcome.lines)
    if found.count > 1:
        return None, _failure(FailureClass.SANDBOX_VIOLATION,
                              f"the event channel carried {found.count} result events (a program wrote its own)", "sandbox")
    if found.count == 1 and not found.valid:
        return None, _failure(FailureClass.CRASH, f"malformed result from the sandbox: {found.first_error}", "sandbox")
    if not found.valid and found.unreadable:
        return None, _failure(FailureClass.CRASH, f"malformed event lines ({found.unreadable} unreadable) and no result from the "
                              f"sandbox; exit code {outcome.returncode}", "sandbox")
    if not found.valid:
        return None, classify_exit(outcome, sig, limit_s)
    inner = found.valid[0]
    if inner.failure is not None:
        return inner, inner.failure
    if not inner.ok:
        return inner, _failure(FailureClass.CRASH, "the sandbox reported a failure without saying which", "sandbox")
    return inner, None


class Job:
    def __init__(self, request: JobRequest, unsafe_no_sandbox: bool, emit: Emit, env: dict[str, str] | None = None):
        env = dict(os.environ) if env is None else env
        self.request = request
        self.emit = emit
        self.env = env
        self.mode = "none" if (request.sandbox.mode == "none" or unsafe_no_sandbox) else "bwrap"
        if self.mode == "none" and not unsafe_no_sandbox:
            raise InfrastructureError("sandbox.mode 'none' requires --unsafe-no-sandbox")
        if self.mode == "none" and env.get("ARCHLOOP_ALLOW_UNSAFE") != "1":
            raise InfrastructureError("running without a sandbox needs ARCHLOOP_ALLOW_UNSAFE=1 as well (never on a shared machine)")
        if self.mode == "bwrap" and shutil.which("bwrap", path=env.get("PATH")) is None:
            raise InfrastructureError(
                "bubblewrap (bwrap) is not installed: refusing to run untrusted code "
                "(install the bubblewrap package, or pass --unsafe-no-sandbox on a throwaway machine)"
            )
        self.started = time.perf_counter()
        self.active = None  # the running job's channel to its zygote (kill() stops it)
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = [UNSAFE_WARNING] if self.mode == "none" else []

    # ---- result assembly ------------------------------------------------------------

    def _base(self, spec: DatasetSpec | None, failure: Failure | None, inner: InnerResult | None,
              sandbox: SandboxInfo | None, logs: Logs) -> dict:
        timings = dict(inner.timings) if inner else {}
        timings.update(self.timings)
        timings["totalS"] = round(time.perf_counter() - self.started, 4)
        return dict(
            ok=failure is None, failure=failure,
            dataset=DatasetInfo(name=spec.name, input_shape=spec.input_shape, classes=spec.classes) if spec else None,
            warnings=self.warnings + (inner.warnings if inner else []), timings=timings, sandbox=sandbox, logs=logs,
            runner_version=RUNNER_VERSION, torch_version=inner.torch_version if inner else None,
        )

    def finish(self, spec, failure, inner, sandbox, logs, labels: Callable[[], np.ndarray] | None):
        """labels: the test labels in the order this job's sandbox saw the images (train)."""
        if self.request.kind == "validate":
            return self._finish_validate(spec, failure, inner, sandbox, logs)
        training = self.request.training
        score = verify.Score(None)
        if failure is None and inner is not None and labels is not None:
            score = verify.score(inner.predictions_b64, labels(), training.fail_below_accuracy)
            failure = score.failure
        base = self._base(spec, failure, inner, sandbox, logs)
        return TrainOutcome(**base, accuracy=score.accuracy, correct=score.correct, test_size=score.test_size,
                            train_images=inner.train_images if inner else None, epochs=training.epochs,
                            batch_size=training.batch_size, device=inner.device if inner else None,
                            bf16=inner.bf16 if inner else None, channels_last=inner.channels_last if inner else None,
                            threads=inner.threads if inner else None, seed=training.seed,
                            loss=inner.loss if inner else None)

    def _finish_validate(self, spec, failure, inner, sandbox, logs):
        if failure is None and inner is not None and spec is not None:
            failure = verify.check_validation(inner, self.request.contract, spec.classes)
        base = self._base(spec, failure, inner, sandbox, logs)
        graph = inner.graph if inner and failure is None else None
        if graph is not None and len(graph.nodes) > MAX_GRAPH_NODES:
            base["warnings"].append(f"graph IR dropped: {len(graph.nodes)} nodes > {MAX_GRAPH_NODES}")
            graph = None
        digest = None
        if graph is not None:
            try:
                digest = structural_hash(graph)
            except Exception as error:  # a claimed graph may be any shape: no hash, not a crash
                base["warnings"].append(f"graph IR malformed ({type(error).__name__}); no structural hash")
                graph = None
        return ValidateOutcome(**base, output_shape=inner.output_shape if inner else None,
                               params=inner.params if inner else None, flops=inner.flops if inner else None,
                               graph=graph, structural_hash=digest)

    # ---- running --------------------------------------------------------------------

    def run(self, pool: warm.Pool | None = None, cancel: threading.Event | None = None):
        """pool: zygotes started ahead (the server); without one, a zygote is booted for this job."""
        empty_logs = Logs(stdout="", stderr="", truncated_bytes=0)
        try:
            contract.check_source(self.request.code)
        except CandidateFailure as failure:
            return self.finish(None, _failure(failure.failure_class, failure.message, failure.stage), None, None, empty_logs, None)
        self.timings["staticS"] = round(time.perf_counter() - self.started, 4)
        prepared = time.perf_counter()
        try:
            data_dir = registry.prepare(self.request.dataset)
            spec = cache.read_spec(data_dir)
            data = jobdata.prepare(self.request.kind, data_dir, self.request.contract.validate_batch_size)
        except Exception as error:
            raise InfrastructureError(f"dataset {self.request.dataset.name}: {error}") from error
        self.timings["datasetS"] = round(time.perf_counter() - prepared, 4)
        try:
            if self.mode == "none":
                return self._unsafe(spec, data_dir, data)
            return self._sandboxed(spec, data_dir, data, pool, cancel)
        finally:
            data.close()

    def kill(self) -> None:
        """Stops the candidate now (its job then ends as killed); a no-op before it started."""
        active = self.active
        if active is not None:
            active.kill()

    def _settings(self, limits: dict) -> warm.JobSettings:
        box = self.request.sandbox
        return warm.JobSettings(limits=",".join(f"{k}={v}" for k, v in limits.items()), threads=self.request.training.threads,
                                job_bytes=box.job_dir_mb * 2**20, tmp_bytes=box.tmp_mb * 2**20, shm_bytes=box.shm_mb * 2**20)

    def _sandboxed(self, spec: DatasetSpec, data_dir: Path, data: jobdata.JobData, pool: warm.Pool | None,
                   cancel: threading.Event | None):
        request = self.request
        gpu, warnings = gpu_view(request.kind, request.training.device, self.env)
        self.warnings += warnings
        limits = limits_for(request, gpu is not None)
        wall = wall_limit(request)
        plan = plan_for(request.kind, request.sandbox, gpu)
        waiting = time.perf_counter()
        try:
            zygote = pool.acquire(plan, cancel) if pool is not None else _booted(plan)
        except warm.ZygoteError as error:
            raise InfrastructureError(str(error), retryable=error.retryable) from error
        try:
            slot, identity = job_identity(request.sandbox)
        except InfrastructureError:
            pool.release(zygote) if pool is not None else zygote.close()
            raise
        self.timings["sandboxWaitS"] = round(time.perf_counter() - waiting, 4)
        if zygote.startup_s is not None:
            self.timings["zygoteStartupS"] = round(zygote.startup_s, 4)
        ours, theirs = supervise.pipes()
        inner_request = InnerRequest(kind=request.kind, code=request.code, spec=spec, data_dir=sandbox_layout.DATA_DIR,
                                     contract=request.contract, training=request.training, audit_hook=request.sandbox.audit_hook,
                                     job_dir=sandbox_layout.JOB_DIR)
        handed = time.perf_counter()

        handed_to = {}

        def started(channel) -> None:
            self.active = handed_to["channel"] = channel

        try:
            outcome, seen_start = self._supervise(lambda on_line: zygote.run(
                self._settings(limits), identity, ours, theirs, data.descriptors(), inner_request.to_json().encode(), wall,
                request.sandbox.log_tail_bytes, request.sandbox.output_limit_bytes, on_line, started), handed)
        except warm.ZygoteError as error:
            raise InfrastructureError(str(error), retryable=error.retryable) from error
        finally:
            self.active = None
            if slot is not None:
                slot.release()
            if pool is not None:
                pool.release(zygote, time.perf_counter() - handed)
            else:
                zygote.close()
        if not seen_start and not outcome.timed_out:
            if not zygote.healthy and outcome.returncode == 128 + signal.SIGKILL:
                raise InfrastructureError(f"the zygote died during the job: {zygote.stderr_tail()}", retryable=True)
            raise InfrastructureError(f"the sandbox did not start (exit {outcome.returncode}): "
                                      f"{outcome.stderr.text()[-2000:]} {zygote.stderr_tail()}")
        uid = identity.uid if identity else os.getuid()
        info = self._info(limits, wall, outcome, uid, identity.slot if identity else None, gpu, seccomp_on=True)
        info.zygote_jobs = handed_to["channel"].number - 1 if "channel" in handed_to else None
        return self._result(spec, data_dir, data, outcome, info, wall)

    def _unsafe(self, spec: DatasetSpec, data_dir: Path, data: jobdata.JobData):
        """No bubblewrap (ARCHLOOP_SANDBOX=none + ARCHLOOP_ALLOW_UNSAFE=1): a process of our
        own with rlimits and the wall clock; every descendant is swept when it ends."""
        request = self.request
        gpu, warnings = gpu_view(request.kind, request.training.device, self.env)
        self.warnings += warnings
        limits = limits_for(request, gpu is not None)
        wall = wall_limit(request)
        host_job = tempfile.mkdtemp(prefix="archloop-job-")
        try:
            os.chmod(host_job, 0o700)
            inner_data_dir = str(jobdata.materialize(data, Path(host_job) / "data"))
            ours, theirs = supervise.pipes()
            inner_cmd = [os.path.normpath(sys.executable), "-s", "-B", "-m", "archloop.runner.inner", "--events-fd",
                         str(theirs.events), "--limits", ",".join(f"{k}={v}" for k, v in limits.items()),
                         "--threads", str(request.training.threads)]
            env = _python_env(request.training.threads, host_job, str(Path(__file__).resolve().parent.parent.parent))
            env.update(dict(gpu.env) if gpu else {})
            lifeline.become_subreaper()
            inner_request = InnerRequest(kind=request.kind, code=request.code, spec=spec, data_dir=inner_data_dir,
                                         contract=request.contract, training=request.training,
                                         audit_hook=request.sandbox.audit_hook, job_dir=host_job)
            spawned = supervise.Spawned(inner_cmd, env, theirs, theirs.events)
            supervise.close(theirs)
            try:
                outcome, _ = self._supervise(lambda on_line: supervise.supervise(
                    spawned, ours, inner_request.to_json().encode(), wall, request.sandbox.log_tail_bytes,
                    request.sandbox.output_limit_bytes, on_line), time.perf_counter())
            finally:
                spawned.close()
        finally:
            shutil.rmtree(host_job, ignore_errors=True)
        info = self._info(limits, wall, outcome, os.getuid(), None, gpu, seccomp_on=False)
        return self._result(spec, data_dir, data, outcome, info, wall)

    def _info(self, limits: dict, wall: float, outcome: supervise.Outcome, uid: int, slot: int | None,
              gpu_view: sandbox_layout.GpuView | None, seccomp_on: bool) -> SandboxInfo:
        box = self.request.sandbox
        return SandboxInfo(mode=self.mode, uid=uid, slot=slot, seccomp=seccomp_on, wall_limit_s=wall,
                           address_space_mb=None if limits["as"] == "inf" else int(limits["as"]) // (1024 * 1024),
                           cpu_s=int(limits["cpu"]), nproc=int(limits["nproc"]), nofile=int(limits["nofile"]),
                           fsize_mb=box.fsize_mb, gpus=list(gpu_view.nodes) if gpu_view else [],
                           exit_code=outcome.returncode, signal=_signal_name(outcome.returncode))

    def _result(self, spec: DatasetSpec, data_dir: Path, data: jobdata.JobData, outcome: supervise.Outcome,
                info: SandboxInfo, wall: float):
        self.timings["sandboxS"] = outcome.wall_s
        inner, failure = interpret(outcome, info.signal, wall)
        logs = Logs(stdout=outcome.stdout.text(), stderr=outcome.stderr.text(),
                    truncated_bytes=outcome.stdout.dropped + outcome.stderr.dropped)
        labels = (lambda: jobdata.labels_in_job_order(data_dir, data.order)) if data.order is not None else None
        return self.finish(spec, failure, inner, info, logs, labels)

    def _supervise(self, run: Callable[[Callable[[bytes], None]], supervise.Outcome], handed: float):
        """Runs `run(on_line)`, forwarding the job's valid progress events (throttled) and
        timing its start-up (handed over to `ready`)."""
        throttle = ProgressThrottle()
        seen = {"start": False}

        def on_line(line: bytes) -> None:  # untrusted: must never raise
            payload = untrusted.parse_line(line)
            event = untrusted.progress_of(payload) if payload is not None else None
            if event is None:
                return
            seen["start"] = True
            if event.stage == "ready" and "startupS" not in self.timings:
                self.timings["startupS"] = round(time.perf_counter() - handed, 4)
            if throttle.allow(event.stage, time.monotonic()):
                self.emit(event.model_dump(by_alias=True, exclude_none=True))

        outcome = run(on_line)
        return outcome, seen["start"]


def _booted(plan: warm.Plan) -> warm.Zygote:
    """A zygote of its own for a job run without a pool (the one-shot CLI)."""
    zygote = warm.Zygote(plan, warm.package_dir())
    zygote.wait_ready(BOOT_TIMEOUT_S)
    zygote.active = 1
    return zygote
