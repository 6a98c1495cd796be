"""A candidate run without bubblewrap (ARCHLOOP_SANDBOX=none + ARCHLOOP_ALLOW_UNSAFE=1): a
process of our own with rlimits and the wall clock, every descendant swept when it ends.
Nothing contains it and its accuracy cannot be trusted: for a throwaway machine only."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from archloop.runner import lifeline
from archloop.runner.progress import Progress
from archloop.runner.protocol import DatasetSpec, InnerRequest, JobRequest
from archloop.runner.sandbox import jobdata, supervise
from archloop.runner.sandbox.layout import GpuView

WARNING = "UNSAFE: ran without a sandbox (ARCHLOOP_SANDBOX=none): neither containment nor the accuracy is guaranteed"
PYTHON_DIR = str(Path(__file__).resolve().parent.parent.parent)  # what holds the archloop package


def python_env(threads: int, job_dir: str, pythonpath: str) -> dict[str, str]:
    """The complete environment of the candidate's process: nothing of the worker's leaks in."""
    return {
        "PATH": "/usr/bin:/bin", "HOME": job_dir, "TMPDIR": job_dir, "LANG": "C.UTF-8",
        "PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "TORCHINDUCTOR_CACHE_DIR": f"{job_dir}/inductor",
    }


def run(request: JobRequest, spec: DatasetSpec, data: jobdata.JobData, gpu: GpuView | None, limits: dict,
        wall: float, progress: Progress) -> supervise.Outcome:
    """`python -m archloop.runner.inner` in a private temporary directory, supervised."""
    host_job = tempfile.mkdtemp(prefix="archloop-job-")
    try:
        os.chmod(host_job, 0o700)
        inner_data_dir = str(jobdata.materialize(data, Path(host_job) / "data"))
        ours, theirs = supervise.pipes()
        inner_cmd = [os.path.normpath(sys.executable), "-s", "-B", "-m", "archloop.runner.inner", "--events-fd",
                     str(theirs.events), "--limits", ",".join(f"{k}={v}" for k, v in limits.items()),
                     "--threads", str(request.training.threads)]
        env = python_env(request.training.threads, host_job, PYTHON_DIR)
        env.update(dict(gpu.env) if gpu else {})
        lifeline.become_subreaper()
        inner_request = InnerRequest(kind=request.kind, code=request.code, spec=spec, data_dir=inner_data_dir,
                                     contract=request.contract, training=request.training,
                                     audit_hook=request.sandbox.audit_hook, job_dir=host_job)
        spawned = supervise.Spawned(inner_cmd, env, theirs, theirs.events)
        supervise.close(theirs)
        try:
            progress.hand_over()
            return supervise.supervise(spawned, ours, inner_request.to_json().encode() + b"\n", wall,
                                       request.sandbox.log_tail_bytes, request.sandbox.output_limit_bytes,
                                       progress.on_line)
        finally:
            spawned.close()
    finally:
        shutil.rmtree(host_job, ignore_errors=True)
