"""What a job's sandbox may use as a whole (sandbox/cgroup.py enforces it), what it used,
and the failure that amounts to.

- Memory: `contract.memoryLimitMb` for the program, plus what the sandbox itself holds in
  memory that is charged to it (the job's data: its /data copy, which holds only the
  training images the run gives, and the test images handed over on stdin after `learn`;
  its tmpfs mounts, at their caps) and the interpreter pages a forked candidate dirties
  (RESIDENT_RESERVE). One cap for CPU
  and GPU jobs alike: GPU jobs have no RLIMIT_AS, so this is their only host-memory cap.
- Processes: `sandbox.nproc` (RLIMIT_NPROC's number) for the whole tree, its init and
  every thread included, so the cap, not the per-uid rlimit, is what a fork bomb meets.
- CPU: each job gets an equal share (the default weight) against every other job, and a
  quota of `training.threads` cores, so one candidate cannot take the cores a neighbour's
  training counts on, however many threads it starts.
"""

import atexit
import threading

from archloop.runner import verify
from archloop.runner.failures import FailureClass
from archloop.runner.protocol import CgroupInfo, Failure, JobRequest
from archloop.runner.sandbox import cgroup

# Headroom over the program's budget for what the runtime dirties after the fork (the
# zygote's pages stay charged to the zygote): a small net's jobs peaked at 17 MiB
# (validate) and 69 MiB (train, 2k images), bench/RESULTS.md "Caps per sandbox".
RESIDENT_RESERVE_MB = 512
OOM_WATCH_S = 0.5
KEEP_CLASSES = {"timeout", "sandbox-violation"}  # what the supervisor saw first stays the verdict

_lock = threading.Lock()
_hierarchy: cgroup.Hierarchy | None = None
_reason: str | None = None


def hierarchy() -> tuple[cgroup.Hierarchy | None, str | None]:
    """This process's hierarchy, detected once: (hierarchy, None) or (None, why not)."""
    global _hierarchy, _reason
    with _lock:
        if _hierarchy is None and _reason is None:
            try:
                _hierarchy = cgroup.detect()
                atexit.register(close)  # a process killed instead leaves them to the next one's sweep
            except cgroup.Unavailable as reason:
                _reason = str(reason)
        return _hierarchy, _reason


def close() -> None:
    with _lock:
        if _hierarchy is not None:
            _hierarchy.close()


def caps_for(request: JobRequest, data_bytes: int) -> cgroup.Caps:
    box = request.sandbox
    tmpfs_mb = box.job_dir_mb + box.tmp_mb + box.shm_mb
    memory_mb = request.contract.memory_limit_mb + tmpfs_mb + RESIDENT_RESERVE_MB
    return cgroup.Caps(memory_bytes=memory_mb * 2**20 + data_bytes, pids=box.nproc,
                       cpu_cores=float(max(1, request.training.threads)))


def info(version: str, caps: cgroup.Caps, usage: cgroup.Usage) -> CgroupInfo:
    return CgroupInfo(version=version, memory_mb=caps.memory_bytes // 2**20, pids=caps.pids, cpu_cores=caps.cpu_cores,
                      peak_mb=usage.peak_bytes // 2**20 if usage.peak_bytes is not None else None,
                      oom_kills=usage.oom_kills, pids_refused=usage.pids_refused)


class OomWatch:
    """While a job runs, every OOM_WATCH_S: any process of it found below oom_score_adj 1000
    is put back, and the job fails as `sandbox-violation` (failure_for)."""

    def __init__(self, group: cgroup.Group, interval_s: float = OOM_WATCH_S):
        self.group, self.interval_s, self.lowered = group, interval_s, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="archloop-oom-watch")
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(self.interval_s):
            self.lowered += self.group.restore_oom_first()

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.lowered


class JobCaps:
    """One job's cgroup over its life: made before the hand-over (`fds` travel with the job),
    watched from its start, read and removed at its end; then its verdict and its record.
    Without a usable hierarchy it holds only the reason (`note`), and changes nothing."""

    def __init__(self, request: JobRequest, data_bytes: int):
        found, reason = hierarchy()
        self.version = found.version if found else None
        self.note = None if found else f"no cgroup: {reason}; memory and processes capped per process (rlimits)"
        self.group = found.create(caps_for(request, data_bytes)) if found else None  # OSError: the caller's to report
        self.usage: cgroup.Usage | None = None
        self._watch: OomWatch | None = None

    def fds(self) -> tuple[int, ...]:
        return self.group.procs_fds() if self.group else ()

    def started(self) -> None:
        if self.group is not None:
            self._watch = OomWatch(self.group)

    def finish(self) -> None:
        if self.group is None or self.usage is not None:
            return
        self.usage = self.group.usage()
        self.usage.oom_lowered = self._watch.stop() if self._watch else 0
        self.group.remove()

    def failure(self, current: Failure | None) -> Failure | None:
        return failure_for(current, self.usage, self.group.caps) if self.group and self.usage else current

    def info(self) -> CgroupInfo | None:
        return info(self.version, self.group.caps, self.usage) if self.group and self.usage else None


def failure_for(current: Failure | None, usage: cgroup.Usage, caps: cgroup.Caps) -> Failure | None:
    """The job's failure once the sandbox's caps were hit: `oom` when the kernel killed a
    process of it at the memory cap, `sandbox-violation` when a fork was refused at the
    process cap, whatever the program reported (a genuine one hits neither); a timeout or
    a flood the supervisor saw stays the verdict."""
    if current is not None and current.failure_class in KEEP_CLASSES:
        return current
    if usage.oom_kills:
        return verify.failure(FailureClass.OOM, f"the sandbox reached its memory cap of {caps.memory_bytes >> 20} MiB "
                              f"(all its processes together) and the kernel killed {usage.oom_kills} of them; use "
                              "less memory (smaller layers or activations), and do not fork", "sandbox")
    if usage.oom_lowered:
        return verify.failure(FailureClass.SANDBOX_VIOLATION, "a process of the sandbox lowered its oom_score_adj "
                              "(the kernel's order for killing under memory pressure); candidates must not", "sandbox")
    if usage.pids_refused:
        return verify.failure(FailureClass.SANDBOX_VIOLATION, f"the sandbox's process cap ({caps.pids}, threads "
                              f"included) refused {usage.pids_refused} forks; candidates must not start processes",
                              "sandbox")
    return current
