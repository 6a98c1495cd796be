"""The warm path, trusted side: zygotes started ahead of need, and the pool that hands
them to jobs.

A zygote (zygote.py) is an interpreter in an outer bubblewrap sandbox that has imported
torch and forks one fresh nested sandbox per candidate (nest.py): ~0.2 s per candidate
instead of a new interpreter's 3–5 s of CPU for `import torch`. The outer sandbox is the
runner's usual one (minimal read-only root, no network) without any dataset (each job
brings its files), except that the zygote keeps the capabilities it needs to build nested
sandboxes (CAP_SYS_ADMIN; for root workers CAP_SETUID/SETGID to put each candidate on its
job's slot uid; CAP_SETPCAP to empty its bounding set) and runs under a filter that allows
`mount` and unsharing non-user namespaces.

The pool keeps zygotes per plan (kind, GPUs, extra binds) and sizes itself (Sizing): how
many jobs of a plan run at once (root workers: all in one zygote, each on its own slot
uid; otherwise one zygote per job), whether to keep zygotes booted while idle (a worker)
or only for jobs (the CLI), and when a backlog is worth a further boot.
"""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from archloop.runner.sandbox import layout as sandbox_layout
from archloop.runner.sandbox import seccomp, supervise
from archloop.runner.sandbox.identity import Identity

MAX_MESSAGE = 1 << 16
ZYGOTE_TMPFS_BYTES = 16 << 20  # the zygote's own /job, /tmp, /dev/shm (its candidates get fresh ones)
# CAP_SYS_RESOURCE: a sandbox's init sets oom_score_adj 1000 with it, which also makes 1000
# the floor its candidate (without the capability) cannot go below.
ROOT_CAPABILITIES = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_SYS_RESOURCE")
USER_CAPABILITIES = ("CAP_SYS_ADMIN", "CAP_SETPCAP")
STARTED_TIMEOUT_S = 30.0
Log = Callable[..., None]


class ZygoteError(Exception):
    """A zygote could not be started or broke down: an infrastructure problem."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class Cancelled(Exception):
    """The job was cancelled while it waited for a zygote."""


@dataclass(frozen=True)
class Plan:
    """What fixes a zygote's sandbox: jobs with equal plans can share zygotes. No dataset:
    each job's files come with the job."""

    kind: str
    gpu: sandbox_layout.GpuView | None
    extra_ro_binds: tuple[str, ...]


@dataclass(frozen=True)
class JobSettings:
    """What the zygote applies to one candidate (the rest of the job is its request)."""

    limits: str  # inner.apply_limits format
    threads: int
    job_bytes: int
    tmp_bytes: int
    shm_bytes: int

    def payload(self, data: list[tuple[str, int]], cgroups: int = 0) -> dict:
        """data: (name, size) of the files whose descriptors follow the job's four streams
        and its `cgroups` cgroup.procs descriptors (sandbox/cgroup.py)."""
        return {"limits": self.limits, "threads": self.threads, "jobBytes": self.job_bytes, "tmpBytes": self.tmp_bytes,
                "shmBytes": self.shm_bytes, "data": data, "cgroups": cgroups}


def zygote_env() -> dict[str, str]:
    """The zygote's whole environment (bwrap --clearenv): one thread while it may fork."""
    job = sandbox_layout.JOB_DIR
    return {
        "PATH": "/usr/bin:/bin", "HOME": job, "TMPDIR": job, "LANG": "C.UTF-8", "PYTHONPATH": sandbox_layout.PACKAGE_ROOT,
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "TORCHINDUCTOR_CACHE_DIR": f"{job}/inductor",
    }


# bwrap --die-with-parent ties the sandbox to the *thread* that started it (PR_SET_PDEATHSIG
# follows the parent thread): every zygote is spawned from this one thread, which lives as
# long as the process.
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archloop-spawner")


def _spawn(*args, **kwargs) -> subprocess.Popen:
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(*args, **kwargs)
    return _spawner.submit(subprocess.Popen, *args, **kwargs).result()


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)  # inherited by bwrap (pass_fds)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class _Channel:
    """One job's line to the zygote (a supervise.Watched): a pipe the reader thread marks
    when the zygote reports the job's end."""

    def __init__(self, zygote: "Zygote", number: int):
        self.zygote, self.number, self.id = zygote, number, str(number)  # its zygote's n-th job
        self.started = threading.Event()
        self.code: int | None = None
        self._read, self._write = os.pipe()

    @property
    def end_fd(self) -> int:
        return self._read

    def ended(self) -> int | None:
        try:
            os.read(self._read, 1)
        except BlockingIOError:
            pass
        return self.code

    def finish(self, code: int) -> None:
        self.code = code
        self.started.set()
        try:
            os.write(self._write, b"x")
        except OSError:
            pass

    def kill(self) -> None:
        self.zygote.send({"op": "kill", "id": self.id})

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class Zygote:
    """One zygote: its outer sandbox and control socket. Runs up to `capacity` jobs at once
    (root workers: each on its own slot uid, which the job brings; otherwise one)."""

    def __init__(self, plan: Plan, package_dir: str, capacity: int = 1):
        self.plan = plan
        self.capacity = capacity if os.geteuid() == 0 else 1
        self.active = 0  # jobs handed to it (the pool counts)
        self.jobs = 0  # jobs it has started
        self.born = time.monotonic()
        self.startup_s: float | None = None
        self.torch_version: str | None = None
        self.threads: int | None = None
        self.healthy = True
        self.log_warning: str | None = None
        self._stderr = supervise.TailBuffer(8192)
        self._channels: dict[str, _Channel] = {}
        self._lock = threading.Lock()
        self._next = 0
        self.root = os.geteuid() == 0
        try:
            outer = seccomp.for_machine(zygote=True)
            strict = seccomp.for_machine()
        except seccomp.UnsupportedArch as error:
            raise ZygoteError(str(error)) from error
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        outer_fd, strict_fd = _memfd("archloop-seccomp-zygote", outer), _memfd("archloop-seccomp", strict)
        try:
            argv = self._argv(package_dir, outer_fd, strict_fd, theirs.fileno())
            self.proc = _spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               pass_fds=(outer_fd, strict_fd, theirs.fileno()), env={}, start_new_session=True,
                               close_fds=True)
        except OSError as error:
            self.control.close()
            raise ZygoteError(f"bwrap could not be started: {error}") from error
        finally:
            theirs.close()
            os.close(outer_fd)
            os.close(strict_fd)
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _argv(self, package_dir: str, outer_fd: int, strict_fd: int, control_fd: int) -> list[str]:
        plan = self.plan
        ident = Identity(os.getuid(), os.getgid(), drop_privileges=self.root)
        view = sandbox_layout.Layout(
            interpreter=sandbox_layout.interpreter(), system_dirs=sandbox_layout.system_dirs(), package_dir=package_dir,
            data_binds={}, data_fds={}, empty_dirs=(sandbox_layout.DATA_DIR,), identity=ident, seccomp_fd=outer_fd,
            job_dir_bytes=ZYGOTE_TMPFS_BYTES, tmp_bytes=ZYGOTE_TMPFS_BYTES, shm_bytes=ZYGOTE_TMPFS_BYTES,
            env=zygote_env(), gpu=plan.gpu, extra_ro_binds=plan.extra_ro_binds,
            capabilities=ROOT_CAPABILITIES if self.root else USER_CAPABILITIES)
        command = [os.path.normpath(sys.executable), "-s", "-B", "-m", "archloop.runner.zygote", "--control-fd",
                   str(control_fd), "--seccomp-fd", str(strict_fd), "--events-fd", "3", "--kind", plan.kind]
        for path in sandbox_layout.kept_under_tmp(sandbox_layout.bwrap_args(view, [])):
            command += ["--keep", path]
        return sandbox_layout.bwrap_args(view, command)

    def _read_stderr(self) -> None:
        stream = self.proc.stderr
        while stream is not None:
            chunk = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
            if not chunk:
                return
            self._stderr.add(chunk)

    def stderr_tail(self) -> str:
        return self._stderr.text()[-2000:]

    def wait_ready(self, timeout_s: float) -> float:
        """Blocks until the zygote has imported torch; returns its start-up seconds. Then a
        reader thread routes the zygote's reports to the jobs."""
        self.control.settimeout(timeout_s)
        try:
            ready = _decode(self.control.recv(MAX_MESSAGE))
        except OSError:
            ready = None
        finally:
            self.control.settimeout(None)
        if not ready or ready.get("event") != "ready":
            self.close()
            raise ZygoteError(f"the sandbox did not start (bwrap exit {self.proc.poll()}): {self.stderr_tail()}")
        self.startup_s = float(ready.get("startupS", 0.0))
        self.threads = int(ready.get("threads", 0))
        self.torch_version = str(ready.get("torchVersion", ""))[:64] or None
        if self.threads != 1:
            self.log_warning = f"the zygote runs {self.threads} threads; a fork copies only one"
        threading.Thread(target=self._read_reports, daemon=True).start()
        return self.startup_s

    def _read_reports(self) -> None:
        while True:
            try:
                report = _decode(self.control.recv(MAX_MESSAGE))
            except OSError:
                report = None
            if report is None:  # the zygote is gone, and its whole sandbox with it
                self.healthy = False
                with self._lock:
                    channels = list(self._channels.values())
                for channel in channels:
                    channel.finish(128 + signal.SIGKILL)
                return
            with self._lock:
                channel = self._channels.get(str(report.get("id")))
            if channel is None:
                continue
            if report.get("event") == "started":
                channel.started.set()
            elif report.get("event") == "exited":
                code = report.get("code")
                channel.finish(int(code) if isinstance(code, int) else 128 + signal.SIGKILL)

    def send(self, payload: dict, fds: tuple[int, ...] = ()) -> None:
        with self._lock:
            try:
                socket.send_fds(self.control, [json.dumps(payload).encode()], list(fds))
            except OSError as error:
                self.healthy = False
                raise ZygoteError(f"the zygote is gone: {error}; {self.stderr_tail()}", retryable=True) from error

    def run(self, settings: JobSettings, slot: Identity | None, ours: supervise.Pipes, theirs: supervise.Pipes,
            data: list[tuple[str, int, int]], request: bytes, wall_limit_s: float, tail_bytes: int, output_limit: int,
            on_line: Callable[[bytes], supervise.Reply | bool], on_start: Callable[[_Channel], None] = lambda _: None,
            cgroup_fds: tuple[int, ...] = ()) -> supervise.Outcome:
        """Hands the job to the zygote and watches it. slot: the uid it runs as (root
        workers). data: (name, read-only fd, size) of its /data files. cgroup_fds: its
        groups' cgroup.procs, which its init joins. Closes `theirs` and the data descriptors
        (the zygote has its own copies) and, through supervise, `ours`."""
        with self._lock:
            self._next += 1
            channel = _Channel(self, self._next)
            self._channels[channel.id] = channel
        message = settings.payload([(name, size) for name, _, size in data], len(cgroup_fds))
        message.update(id=channel.id, uid=slot.uid if slot else None, gid=slot.gid if slot else None)
        try:
            try:
                self.send(message, (theirs.stdin, theirs.stdout, theirs.stderr, theirs.events, *cgroup_fds,
                                    *(fd for _, fd, _ in data)))
            finally:
                supervise.close(theirs)
                for _, fd, _ in data:
                    os.close(fd)
            if not channel.started.wait(STARTED_TIMEOUT_S) or channel.code is not None and not self.healthy:
                self.healthy = False
                supervise.close(ours)
                raise ZygoteError(f"the zygote did not take the job: {self.stderr_tail()}", retryable=True)
            self.jobs += 1
            on_start(channel)
            outcome = supervise.supervise(channel, ours, request, wall_limit_s, tail_bytes, output_limit, on_line)
            if outcome.killed_unconfirmed:
                self.healthy = False
            return outcome
        finally:
            with self._lock:
                self._channels.pop(channel.id, None)
            channel.close()

    def close(self) -> None:
        """Kills the zygote's sandbox (bwrap's own PID namespace takes everything in it)."""
        self.healthy = False
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.control.close()


def _decode(message: bytes) -> dict | None:
    if not message:
        return None
    try:
        payload = json.loads(message)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


# ---- the pool --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizing:
    """jobs: the most jobs of one plan at once, per kind (root workers run them all in one
    zygote, each on its own slot uid; otherwise one zygote per job). stock: keep the zygotes
    booted while idle (a worker), else boot only for jobs (the CLI)."""

    jobs: dict[str, int] = field(default_factory=lambda: {"validate": 1, "train": 1})
    stock: bool = False
    max_booting: int = 1  # zygotes importing torch at once
    idle_s: float = 900.0  # a plan unused this long gives its idle zygotes back
    max_jobs: int = 1000  # a zygote is replaced after this many jobs…
    max_age_s: float = 3600.0  # …or this long
    ready_timeout_s: float = 300.0
    boot_estimate_s: float = 8.0  # until measured: what a boot costs,
    job_estimate_s: float = 0.5  # and a job
    root: bool = field(default_factory=lambda: os.geteuid() == 0)  # slot uids keep jobs of one zygote apart

    def capacity(self, kind: str) -> int:
        """Jobs one zygote runs at once."""
        return self.jobs.get(kind, 1) if self.root else 1

    def zygotes(self, kind: str) -> int:
        return math.ceil(self.jobs.get(kind, 1) / self.capacity(kind))


class _Waiter:
    def __init__(self) -> None:
        self.zygote: Zygote | None = None
        self.error: ZygoteError | None = None


@dataclass
class _PlanState:
    zygotes: list[Zygote] = field(default_factory=list)  # ready ones
    booting: int = 0
    waiters: deque = field(default_factory=deque)
    last_used: float = field(default_factory=time.monotonic)
    boot_s: float = 0.0
    job_s: float = 0.0
    failed_at: float = -math.inf
    expected: bool = False  # prewarmed: jobs are on their way

    def free(self) -> Zygote | None:
        """The least busy zygote with room for one more job."""
        open_ = [z for z in self.zygotes if z.active < z.capacity and z.healthy]
        return min(open_, key=lambda z: z.active) if open_ else None


def _ema(previous: float, value: float) -> float:
    return value if previous <= 0 else 0.7 * previous + 0.3 * value


class Pool:
    """Zygotes per plan, each running up to its capacity of jobs. Thread-safe."""

    def __init__(self, sizing: Sizing, package_dir: str, log: Log,
                 factory: Callable[[Plan, int], Zygote] | None = None):
        self.sizing = sizing
        self.package_dir = package_dir
        self.log = log
        self.factory = factory or (lambda plan, capacity: Zygote(plan, package_dir, capacity))
        self.cond = threading.Condition()
        self.plans: dict[Plan, _PlanState] = {}
        self.closed = False
        threading.Thread(target=self._sweep, daemon=True).start()

    # ---- jobs ----------------------------------------------------------------------------

    def acquire(self, plan: Plan, cancel: threading.Event | None = None) -> Zygote:
        """A zygote with room for this job, waiting (FIFO) while all are full or booting."""
        with self.cond:
            state = self.plans.setdefault(plan, self._new_state())
            state.last_used = time.monotonic()
            zygote = state.free() if not state.waiters else None
            if zygote is not None:
                zygote.active += 1
                return zygote
            waiter = _Waiter()
            state.waiters.append(waiter)
            self._schedule()
            while waiter.zygote is None and waiter.error is None:
                if (cancel is not None and cancel.is_set()) or self.closed:
                    if waiter in state.waiters:
                        state.waiters.remove(waiter)
                    if waiter.zygote is not None:  # handed over at the last moment
                        break
                    raise Cancelled()
                self.cond.wait(0.25)
            if waiter.error is not None:
                raise waiter.error
            return waiter.zygote

    def release(self, zygote: Zygote, job_s: float | None = None) -> None:
        """After a job: the zygote takes the next waiting one, or is retired once idle (broken,
        worn out, old, or the pool closing)."""
        retire: Zygote | None = None
        with self.cond:
            state = self.plans.setdefault(zygote.plan, self._new_state())
            zygote.active -= 1
            if job_s is not None:
                state.job_s = _ema(state.job_s, job_s)
            worn = (not zygote.healthy or zygote.jobs >= self.sizing.max_jobs
                    or time.monotonic() - zygote.born > self.sizing.max_age_s or self.closed)
            if worn and zygote in state.zygotes:
                state.zygotes.remove(zygote)  # no new jobs
            if worn and zygote.active == 0:
                retire = zygote
            self._hand_over(state)
            self._schedule()
            self.cond.notify_all()
        if retire is not None:
            self.log("pool.retire", jobs=retire.jobs, healthy=retire.healthy, kind=retire.plan.kind)
            retire.close()

    def prewarm(self, plan: Plan) -> None:
        """Jobs of this plan are coming: boots its first zygote now (and a worker's stock)."""
        with self.cond:
            state = self.plans.setdefault(plan, self._new_state())
            state.last_used = time.monotonic()
            state.expected = True
            self._schedule()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            idle = [z for state in self.plans.values() for z in state.zygotes if z.active == 0]
            for state in self.plans.values():
                state.zygotes = [z for z in state.zygotes if z.active > 0]
            self.cond.notify_all()
        for zygote in idle:
            zygote.close()

    def status(self) -> dict:
        with self.cond:
            return {f"{plan.kind}:{i}": {"zygotes": len(s.zygotes), "active": sum(z.active for z in s.zygotes),
                                         "booting": s.booting, "waiting": len(s.waiters)}
                    for i, (plan, s) in enumerate(self.plans.items())}

    # ---- boots ---------------------------------------------------------------------------

    def _new_state(self) -> _PlanState:
        return _PlanState(boot_s=self.sizing.boot_estimate_s, job_s=self.sizing.job_estimate_s)

    def _hand_over(self, state: _PlanState) -> None:
        """Gives waiting jobs the room there is (called under the lock)."""
        while state.waiters:
            zygote = state.free()
            if zygote is None:
                return
            zygote.active += 1
            state.waiters.popleft().zygote = zygote

    def _wanted(self, plan: Plan, state: _PlanState, now: float) -> bool:
        """Whether this plan should boot one more zygote now (called under the lock)."""
        have = len(state.zygotes) + state.booting
        if have >= self.sizing.zygotes(plan.kind):
            return False
        recently_failed = now - state.failed_at < 60
        if have == 0 and (state.waiters or (state.expected and not recently_failed)):
            return True
        if state.waiters:
            # one more is worth its boot when the queue would outlast it
            capacity = self.sizing.capacity(plan.kind)
            queued = len(state.waiters) - state.booting * capacity
            return queued > 0 and queued * state.job_s / max(have * capacity, 1) > state.boot_s
        return self.sizing.stock and not recently_failed and now - state.last_used < self.sizing.idle_s

    def _schedule(self) -> None:
        """Starts the boots that are due (called under the lock)."""
        if self.closed:
            return
        now = time.monotonic()
        booting = sum(state.booting for state in self.plans.values())
        # plans with waiting jobs first, then stock
        for plan, state in sorted(self.plans.items(), key=lambda item: not item[1].waiters):
            while booting < self.sizing.max_booting and self._wanted(plan, state, now):
                state.booting += 1
                booting += 1
                threading.Thread(target=self._boot, args=(plan,), daemon=True).start()

    def _boot(self, plan: Plan) -> None:
        started = time.monotonic()
        zygote: Zygote | None = None
        error: ZygoteError | None = None
        try:
            zygote = self.factory(plan, self.sizing.capacity(plan.kind))
            zygote.wait_ready(self.sizing.ready_timeout_s)
        except ZygoteError as failure:
            error = failure
        except Exception as failure:  # a bug must not leave waiters waiting
            error = ZygoteError(f"zygote boot failed: {type(failure).__name__}: {failure}")
        elapsed = time.monotonic() - started
        details = (zygote.startup_s, zygote.threads, zygote.log_warning) if zygote and not error else (None, None, None)
        with self.cond:
            state = self.plans.setdefault(plan, self._new_state())
            state.booting -= 1
            if error is not None:
                state.failed_at = time.monotonic()
                # a broken machine: every job waiting for this plan hears it
                for waiter in list(state.waiters):
                    waiter.error = error
                state.waiters.clear()
            elif not self.closed:
                state.boot_s = _ema(state.boot_s, elapsed)
                state.expected = False
                state.zygotes.append(zygote)
                self._hand_over(state)
                zygote = None
            self._schedule()
            self.cond.notify_all()
        if error is not None:
            self.log("pool.boot_failed", level="error", kind=plan.kind, message=str(error)[:500], retryable=error.retryable)
        else:
            self.log("pool.booted", kind=plan.kind, boot_s=round(elapsed, 3), startup_s=details[0], threads=details[1])
            if details[2]:
                self.log("pool.zygote_threads", level="warning", message=details[2])
        if zygote is not None:  # the pool closed while it booted
            zygote.close()

    def _sweep(self) -> None:
        """Gives back idle zygotes of plans unused for idle_s, and retires old ones."""
        while True:
            time.sleep(5.0)
            retired: list[Zygote] = []
            with self.cond:
                if self.closed:
                    return
                now = time.monotonic()
                for state in self.plans.values():
                    stale = now - state.last_used > self.sizing.idle_s
                    keep = [z for z in state.zygotes
                            if z.active > 0 or (not stale and now - z.born <= self.sizing.max_age_s)]
                    retired += [z for z in state.zygotes if z not in keep]
                    state.zygotes = keep
                self._schedule()
            for zygote in retired:
                self.log("pool.idle_close", kind=zygote.plan.kind, jobs=zygote.jobs)
                zygote.close()


def package_dir() -> str:
    return str(Path(__file__).resolve().parent.parent)
