"""One job on the trusted side: static checks, dataset, sandbox, and the final result.

Flow: syntax + contract (ast, no sandbox needed) -> dataset cache -> the job's data view
(train: test images in a secret order) -> a zygote for this job's plan (from the pool, or
booted for this job alone) -> the candidate in a fresh sandbox forked by it -> the result,
assembled here from untrusted events (result.py). Whatever the candidate writes, the result
is a valid outcome; only a broken machine raises InfrastructureError.
"""

import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path

from archloop.runner import contract, unsafe, verify, warm
from archloop.runner.handover import Handover
from archloop.runner.datasets import cache, registry
from archloop.runner.failures import CandidateFailure, FailureClass
from archloop.runner.progress import Emit, Progress, QueueBeat
from archloop.runner.protocol import DatasetSpec, InnerRequest, JobRequest, Logs, SandboxInfo, SandboxSection
from archloop.runner.result import Labels, assemble, interpret, signal_name
from archloop.runner.sandbox import gpu as gpus
from archloop.runner.sandbox import jobdata, resources, supervise
from archloop.runner.sandbox import layout as sandbox_layout
from archloop.runner.sandbox.identity import Identity, SandboxUnavailable, Slot, SlotsBusy, acquire_slot, identity_for

BOOT_TIMEOUT_S = 300.0  # a zygote's start (torch import) under heavy load


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


CPU_SLACK_S = 10  # the runner's own start (data copy, reading the request) and the interpreter's helpers


def limits_for(request: JobRequest, gpu: bool) -> dict[str, int | str]:
    wall = wall_limit(request)
    threads = request.training.threads
    address_space = None if gpu else (request.contract.memory_limit_mb + request.sandbox.runtime_reserve_mb) * 1024 * 1024
    return {
        "as": address_space if address_space is not None else "inf",
        # The thread cap that holds: `threads` threads busy for the whole wall time, no more
        # (a hard limit; a program that raises torch's thread count only burns it sooner)
        "cpu": int(math.ceil(wall * threads)) + CPU_SLACK_S,
        "nproc": request.sandbox.nproc,
        "fsize": request.sandbox.fsize_mb * 1024 * 1024,
        "nofile": request.sandbox.nofile,
        "core": 0,
    }


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


class Job:
    """One request, run once: run() returns its result; kill() stops it from another thread."""

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
        self.warnings: list[str] = [unsafe.WARNING] if self.mode == "none" else []
        self.caps: resources.JobCaps | None = None  # the sandbox's cgroup: caps it hit decide its failure

    def run(self, pool: warm.Pool | None = None, cancel: threading.Event | None = None):
        """pool: zygotes started ahead (the server); without one, a zygote is booted for this job."""
        request = self.request
        try:
            contract.check_size(request.code, request.contract.max_code_bytes)
            contract.check_source(request.code)
        except CandidateFailure as error:
            static = verify.failure(error.failure_class, error.message, error.stage)
            return self.finish(None, static, None, None, Logs(stdout="", stderr="", truncated_bytes=0), None)
        self.timings["staticS"] = round(time.perf_counter() - self.started, 4)
        self.queued = QueueBeat(self.emit)
        try:
            return self._run(pool, cancel)
        finally:
            self.queued.stop()

    def _run(self, pool: warm.Pool | None, cancel: threading.Event | None):
        request = self.request
        data_dir, spec, data = self._prepare_data()
        training = request.training
        handover = (Handover(data.test_images, training.eval_window_min_s, training.eval_window_share)
                    if data.test_images is not None else None)
        try:
            gpu, warnings = gpu_view(request.kind, request.training.device, self.env)
            self.warnings += warnings
            limits, wall = limits_for(request, gpu is not None), wall_limit(request)
            if self.mode == "none":
                self.queued.stop()
                outcome = unsafe.run(request, spec, data, gpu, limits, wall, Progress(self.emit, self.timings, handover))
                info = self._info(limits, wall, outcome, os.getuid(), None, gpu, seccomp_on=False)
            else:
                outcome, info = self._sandboxed(spec, data, gpu, limits, wall, pool, cancel, handover)
            self.timings["sandboxS"] = outcome.wall_s
            inner, failed = interpret(outcome, info.signal, wall)
            if failed is not None and outcome.timed_out and handover is not None and handover.sent:
                failed = verify.failure(FailureClass.TIMEOUT, "no predictions within the evaluation window after the "
                                        "test images were handed over (evalWindowMinS, evalWindowShare)", "eval")
            if self.caps is not None:
                failed = self.caps.failure(failed)
            logs = Logs(stdout=outcome.stdout.text(), stderr=outcome.stderr.text(),
                        truncated_bytes=outcome.stdout.dropped + outcome.stderr.dropped)
            labels = (lambda: jobdata.labels_in_job_order(data_dir, data.order)) if data.order is not None else None
            return self.finish(spec, failed, inner, info, logs, labels)
        finally:
            data.close()

    def kill(self) -> None:
        """Stops the candidate now (its job then ends as killed); a no-op before it started."""
        active = self.active
        if active is not None:
            active.kill()

    def finish(self, spec, failure, inner, sandbox, logs, labels: Labels | None):
        """labels: the test labels in the order this job's sandbox saw the images (train)."""
        return assemble(self.request, spec, failure, inner, sandbox, logs, labels,
                        started=self.started, timings=self.timings, warnings=self.warnings)

    def _prepare_data(self) -> tuple[Path, DatasetSpec, jobdata.JobData]:
        """The dataset cached, and this job's view of it (train: the test images in a secret order)."""
        prepared = time.perf_counter()
        try:
            data_dir = registry.prepare(self.request.dataset)
            spec = registry.as_seen(cache.read_spec(data_dir), self.request.dataset.resize)
            training = self.request.training
            data = jobdata.prepare(self.request.kind, data_dir, self.request.contract.validate_batch_size,
                                   training.max_train_images, training.test_noise)
        except Exception as error:
            raise InfrastructureError(f"dataset {self.request.dataset.name}: {error}") from error
        self.timings["datasetS"] = round(time.perf_counter() - prepared, 4)
        return data_dir, spec, data

    def _sandboxed(self, spec: DatasetSpec, data: jobdata.JobData, gpu: sandbox_layout.GpuView | None, limits: dict,
                   wall: float, pool: warm.Pool | None, cancel: threading.Event | None,
                   handover: Handover | None) -> tuple[supervise.Outcome, SandboxInfo]:
        """The candidate in a fresh sandbox forked by a zygote for this job's plan."""
        request = self.request
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
        try:
            self.caps = caps = resources.JobCaps(request, _data_bytes(data))
        except OSError as error:
            if slot is not None:
                slot.release()
            pool.release(zygote) if pool is not None else zygote.close()
            raise InfrastructureError(f"could not make the job's cgroup: {error}", retryable=True) from error
        self.timings["sandboxWaitS"] = round(time.perf_counter() - waiting, 4)
        if zygote.startup_s is not None:
            self.timings["zygoteStartupS"] = round(zygote.startup_s, 4)
        ours, theirs = supervise.pipes()
        inner_request = InnerRequest(kind=request.kind, code=request.code, spec=spec, data_dir=sandbox_layout.DATA_DIR,
                                     contract=request.contract, training=request.training, audit_hook=request.sandbox.audit_hook,
                                     job_dir=sandbox_layout.JOB_DIR)
        self.queued.stop()
        progress = Progress(self.emit, self.timings, handover)
        handed = progress.hand_over()
        channel = None
        files = data.descriptors()

        def on_start(started) -> None:
            nonlocal channel
            self.active = channel = started
            caps.started()

        try:
            outcome = zygote.run(_settings(request, limits), identity, ours, theirs, files,
                                 inner_request.to_json().encode() + b"\n", wall, request.sandbox.log_tail_bytes,
                                 request.sandbox.output_limit_bytes, progress.on_line, on_start,
                                 caps.fds())
        except warm.ZygoteError as error:
            raise InfrastructureError(str(error), retryable=error.retryable) from error
        finally:
            self.active = None
            caps.finish()
            if slot is not None:
                slot.release()
            if pool is not None:
                pool.release(zygote, time.perf_counter() - handed)
            else:
                zygote.close()
        if not progress.started and not outcome.timed_out:
            if not zygote.healthy and outcome.returncode == 128 + signal.SIGKILL:
                raise InfrastructureError(f"the zygote died during the job: {zygote.stderr_tail()}", retryable=True)
            raise InfrastructureError(f"the sandbox did not start (exit {outcome.returncode}): "
                                      f"{outcome.stderr.text()[-2000:]} {zygote.stderr_tail()}")
        uid = identity.uid if identity else os.getuid()
        info = self._info(limits, wall, outcome, uid, identity.slot if identity else None, gpu, seccomp_on=True)
        info.zygote_jobs = channel.number - 1 if channel is not None else None
        info.cgroup, info.cgroup_note = caps.info(), caps.note
        return outcome, info

    def _info(self, limits: dict, wall: float, outcome: supervise.Outcome, uid: int, slot: int | None,
              gpu: sandbox_layout.GpuView | None, seccomp_on: bool) -> SandboxInfo:
        box = self.request.sandbox
        return SandboxInfo(mode=self.mode, uid=uid, slot=slot, seccomp=seccomp_on, wall_limit_s=wall,
                           address_space_mb=None if limits["as"] == "inf" else int(limits["as"]) // (1024 * 1024),
                           cpu_s=int(limits["cpu"]), nproc=int(limits["nproc"]), nofile=int(limits["nofile"]),
                           fsize_mb=box.fsize_mb, gpus=list(gpu.nodes) if gpu else [],
                           exit_code=outcome.returncode, signal=signal_name(outcome.returncode))


def _settings(request: JobRequest, limits: dict) -> warm.JobSettings:
    box = request.sandbox
    return warm.JobSettings(limits=",".join(f"{k}={v}" for k, v in limits.items()), threads=request.training.threads,
                            job_bytes=box.job_dir_mb * 2**20, tmp_bytes=box.tmp_mb * 2**20, shm_bytes=box.shm_mb * 2**20)


def _data_bytes(data: jobdata.JobData) -> int:
    """The job's data as charged to its cgroup: its /data copy (only the training images the
    run gives) and, for a train job, the test images handed over on stdin after `learn`
    (handover.py), which the runner inside then holds in memory."""
    files = sum(os.path.getsize(path) for path in data.files.values())
    handed = data.test_images.nbytes if data.test_images is not None else 0
    return files + sum(os.fstat(fd).st_size for fd in data.memfds.values()) + handed


def _booted(plan: warm.Plan) -> warm.Zygote:
    """A zygote of its own for a job run without a pool (the one-shot CLI)."""
    zygote = warm.Zygote(plan, warm.package_dir())
    zygote.wait_ready(BOOT_TIMEOUT_S)
    zygote.active = 1
    return zygote
