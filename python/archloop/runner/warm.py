"""The warm path, trusted side: zygotes started ahead of need, and the pool that hands
them to jobs.

A zygote (zygote.py) is an interpreter in an outer bubblewrap sandbox that has imported
torch and forks one fresh nested sandbox per candidate (nest.py): ~0.1 s per candidate
instead of a new interpreter's 3–4 s of CPU for `import torch`. The outer sandbox is the
runner's usual one (minimal read-only root, no network, the job's data), except that the
zygote keeps the capabilities it needs to build nested sandboxes (CAP_SYS_ADMIN, and for
root workers CAP_SETUID/SETGID to put the candidate on the slot's uid; CAP_SETPCAP to
empty its bounding set) and runs under a filter that allows `mount` and unsharing
non-user namespaces. It runs one job at a time and holds its slot (uid) for its life.

The pool keeps zygotes per plan (what fixes the outer sandbox: kind, data files, GPUs,
extra binds) and sizes itself (Sizing): how many zygotes a plan may have (its concurrent
jobs), whether to keep them started while idle (a worker) or only boot on demand (the
CLI), and when a backlog is worth a further boot.
"""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .sandbox import layout as sandbox_layout
from .sandbox import seccomp, supervise
from .sandbox.identity import Identity, SandboxUnavailable, Slot, SlotsBusy, acquire_slot, identity_for

MAX_MESSAGE = 1 << 16
ZYGOTE_TMPFS_BYTES = 16 << 20  # the zygote's own /job, /tmp, /dev/shm (its candidates get fresh ones)
ROOT_CAPABILITIES = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
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
    """What fixes a zygote's sandbox: jobs with equal plans can share zygotes."""

    kind: str
    data_binds: tuple[tuple[str, str], ...]  # name inside /data -> host file
    gpu: Optional[sandbox_layout.GpuView]
    extra_ro_binds: tuple[str, ...]
    user: str
    slots: int
    slot_wait_s: float


@dataclass(frozen=True)
class JobSettings:
    """What the zygote applies to one candidate (the rest of the job is its request)."""

    limits: str  # inner.apply_limits format
    threads: int
    job_bytes: int
    tmp_bytes: int
    shm_bytes: int

    def message(self) -> bytes:
        return json.dumps({"limits": self.limits, "threads": self.threads, "jobBytes": self.job_bytes,
                           "tmpBytes": self.tmp_bytes, "shmBytes": self.shm_bytes}).encode()


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


class Zygote:
    """One zygote: its outer sandbox, control socket and slot. One job at a time."""

    def __init__(self, plan: Plan, package_dir: str, slot_wait_s: Optional[float] = None):
        self.plan = plan
        self.jobs = 0
        self.born = time.monotonic()
        self.startup_s: Optional[float] = None
        self.torch_version: Optional[str] = None
        self.threads: Optional[int] = None
        self.healthy = True
        self.clean = True
        self.log_warning: Optional[str] = None
        self._stderr = supervise.TailBuffer(8192)
        self.slot: Optional[Slot] = None
        try:
            self.slot = acquire_slot(plan.slots, plan.slot_wait_s if slot_wait_s is None else slot_wait_s) \
                if os.geteuid() == 0 else None
            self.identity: Identity = identity_for(plan.user, self.slot)
            outer = seccomp.for_machine(zygote=True)
            strict = seccomp.for_machine()
        except SlotsBusy as error:
            self._release_slot()
            raise ZygoteError(str(error), retryable=True) from error
        except (SandboxUnavailable, seccomp.UnsupportedArch, OSError) as error:
            self._release_slot()
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
            self._release_slot()
            raise ZygoteError(f"bwrap could not be started: {error}") from error
        finally:
            theirs.close()
            os.close(outer_fd)
            os.close(strict_fd)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _argv(self, package_dir: str, outer_fd: int, strict_fd: int, control_fd: int) -> list[str]:
        plan, ident = self.plan, self.identity
        view = sandbox_layout.Layout(
            interpreter=sandbox_layout.interpreter(), system_dirs=sandbox_layout.system_dirs(), package_dir=package_dir,
            data_binds=dict(plan.data_binds), data_fds={}, identity=ident, seccomp_fd=outer_fd,
            job_dir_bytes=ZYGOTE_TMPFS_BYTES, tmp_bytes=ZYGOTE_TMPFS_BYTES, shm_bytes=ZYGOTE_TMPFS_BYTES,
            env=zygote_env(), gpu=plan.gpu, extra_ro_binds=plan.extra_ro_binds,
            capabilities=ROOT_CAPABILITIES if ident.drop_privileges else USER_CAPABILITIES)
        command = [os.path.normpath(sys.executable), "-s", "-B", "-m", "archloop.runner.zygote", "--control-fd",
                   str(control_fd), "--seccomp-fd", str(strict_fd), "--events-fd", "3", "--kind", plan.kind]
        if ident.drop_privileges:
            command += ["--uid", str(ident.uid), "--gid", str(ident.gid)]
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

    def _release_slot(self) -> None:
        if self.slot is not None:
            self.slot.release()
            self.slot = None

    def stderr_tail(self) -> str:
        return self._stderr.text()[-2000:]

    def _receive(self, timeout_s: float) -> Optional[dict]:
        """One message from the zygote, or None when it has gone (EOF or the time passed)."""
        self.control.settimeout(timeout_s)
        try:
            message = self.control.recv(MAX_MESSAGE)
        except (socket.timeout, OSError):
            return None
        finally:
            self.control.settimeout(None)
        if not message:
            return None
        try:
            payload = json.loads(message)
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None

    def wait_ready(self, timeout_s: float) -> float:
        """Blocks until the zygote has imported torch; returns its start-up seconds."""
        ready = self._receive(timeout_s)
        if not ready or ready.get("event") != "ready":
            self.close()
            raise ZygoteError(f"the sandbox did not start (bwrap exit {self.proc.poll()}): {self.stderr_tail()}")
        self.startup_s = float(ready.get("startupS", 0.0))
        self.threads = int(ready.get("threads", 0))
        if self.threads != 1:
            self.log_warning = f"the zygote runs {self.threads} threads; a fork copies only one"
        self.torch_version = str(ready.get("torchVersion", ""))[:64] or None
        return self.startup_s

    # ---- one job (supervise.Watched) ---------------------------------------------------

    @property
    def end_fd(self) -> int:
        return self.control.fileno()

    def ended(self) -> Optional[int]:
        try:
            message = self.control.recv(MAX_MESSAGE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        except OSError:
            message = b""
        if not message:  # the zygote died: its whole sandbox went with it
            self.healthy = False
            return 128 + 9
        payload = json.loads(message)
        if payload.get("event") != "exited":
            return None
        self.clean = bool(payload.get("clean", False))
        code = payload.get("code")
        return int(code) if isinstance(code, int) else 128 + 9

    def kill(self) -> None:
        try:
            self.control.send(b'{"op":"kill"}')
        except OSError:
            self.healthy = False

    def run(self, settings: JobSettings, ours: supervise.Pipes, theirs: supervise.Pipes, extra: tuple[int, ...],
            request: bytes, wall_limit_s: float, tail_bytes: int, output_limit: int,
            on_line: Callable[[bytes], None]) -> supervise.Outcome:
        """Hands the job to the zygote and watches it. Closes `theirs` and `extra` (the
        zygote has its own copies) and, through supervise, `ours`."""
        try:
            socket.send_fds(self.control, [settings.message()],
                            [theirs.stdin, theirs.stdout, theirs.stderr, theirs.events, *extra])
        except OSError as error:
            self.healthy = False
            supervise.close(ours)
            raise ZygoteError(f"the zygote is gone: {error}; {self.stderr_tail()}", retryable=True) from error
        finally:
            supervise.close(theirs)
            for fd in extra:
                os.close(fd)
        started = self._receive(STARTED_TIMEOUT_S)
        if not started or started.get("event") != "started":
            self.healthy = False
            supervise.close(ours)
            raise ZygoteError(f"the zygote did not take the job: {self.stderr_tail()}", retryable=True)
        self.jobs += 1
        outcome = supervise.supervise(self, ours, request, wall_limit_s, tail_bytes, output_limit, on_line)
        if outcome.killed_unconfirmed or not self.clean:
            self.healthy = False
        return outcome

    def close(self) -> None:
        """Kills the zygote's sandbox (bwrap's own PID namespace takes everything in it)."""
        self.healthy = False
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.control.close()
        self._release_slot()


# ---- the pool --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizing:
    """zygotes: the most zygotes one plan may have per kind (its concurrent jobs); stock:
    keep that many started while idle (a worker), else boot only for waiting jobs (the CLI)."""

    zygotes: dict[str, int] = field(default_factory=lambda: {"validate": 1, "train": 1})
    stock: bool = False
    max_booting: int = 1  # zygotes importing torch at once
    idle_s: float = 900.0  # a plan unused this long gives its idle zygotes back
    max_jobs: int = 500  # a zygote is replaced after this many jobs…
    max_age_s: float = 3600.0  # …or this long
    ready_timeout_s: float = 300.0
    boot_estimate_s: float = 8.0  # until measured: what a boot costs,
    job_estimate_s: float = 0.5  # and a job


class _Waiter:
    def __init__(self) -> None:
        self.zygote: Optional[Zygote] = None
        self.error: Optional[ZygoteError] = None


@dataclass
class _PlanState:
    idle: list[Zygote] = field(default_factory=list)
    busy: int = 0
    booting: int = 0
    waiters: deque = field(default_factory=deque)
    last_used: float = field(default_factory=time.monotonic)
    boot_s: float = 0.0
    job_s: float = 0.0
    failed_at: float = -math.inf


def _ema(previous: float, value: float) -> float:
    return value if previous <= 0 else 0.7 * previous + 0.3 * value


class Pool:
    """Zygotes per plan, handed to one job at a time. Thread-safe."""

    def __init__(self, sizing: Sizing, package_dir: str, log: Log, factory: Optional[Callable[[Plan], Zygote]] = None):
        self.sizing = sizing
        self.package_dir = package_dir
        self.log = log
        self.factory = factory or (lambda plan: Zygote(plan, package_dir))
        self.cond = threading.Condition()
        self.plans: dict[Plan, _PlanState] = {}
        self.closed = False
        self._sweeper = threading.Thread(target=self._sweep, daemon=True)
        self._sweeper.start()

    # ---- jobs ----------------------------------------------------------------------------

    def acquire(self, plan: Plan, cancel: Optional[threading.Event] = None) -> Zygote:
        """A ready zygote for this plan, waiting (FIFO) for one when all are busy or booting."""
        with self.cond:
            state = self.plans.setdefault(plan, self._new_state())
            state.last_used = time.monotonic()
            if state.idle:
                state.busy += 1
                return state.idle.pop()
            waiter = _Waiter()
            state.waiters.append(waiter)
            self._schedule()
            while waiter.zygote is None and waiter.error is None:
                if (cancel is not None and cancel.is_set()) or self.closed:
                    state.waiters.remove(waiter)
                    raise Cancelled()
                self.cond.wait(0.25)
            if waiter.error is not None:
                raise waiter.error
            return waiter.zygote

    def release(self, zygote: Zygote, job_s: Optional[float] = None) -> None:
        """Back to the pool after a job (or retired: broken, old, or the pool closing)."""
        retire = (not zygote.healthy or zygote.jobs >= self.sizing.max_jobs
                  or time.monotonic() - zygote.born > self.sizing.max_age_s)
        with self.cond:
            state = self.plans.setdefault(zygote.plan, self._new_state())
            state.busy -= 1
            if job_s is not None:
                state.job_s = _ema(state.job_s, job_s)
            if not retire and not self.closed:
                if state.waiters:
                    state.busy += 1
                    state.waiters.popleft().zygote = zygote
                else:
                    state.idle.append(zygote)
            self._schedule()
            self.cond.notify_all()
        if retire or self.closed:
            self.log("pool.retire", jobs=zygote.jobs, healthy=zygote.healthy, kind=zygote.plan.kind)
            zygote.close()

    def prewarm(self, plan: Plan) -> None:
        """Marks a plan in use (a worker's stock then boots for it)."""
        with self.cond:
            self.plans.setdefault(plan, self._new_state()).last_used = time.monotonic()
            self._schedule()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            idle = [z for state in self.plans.values() for z in state.idle]
            for state in self.plans.values():
                state.idle.clear()
            self.cond.notify_all()
        for zygote in idle:
            zygote.close()

    def status(self) -> dict:
        with self.cond:
            return {plan.kind + ":" + str(i): {"idle": len(s.idle), "busy": s.busy, "booting": s.booting,
                                               "waiting": len(s.waiters)} for i, (plan, s) in enumerate(self.plans.items())}

    # ---- boots ---------------------------------------------------------------------------

    def _new_state(self) -> _PlanState:
        return _PlanState(boot_s=self.sizing.boot_estimate_s, job_s=self.sizing.job_estimate_s)

    def _wanted(self, plan: Plan, state: _PlanState, now: float) -> bool:
        """Whether this plan should boot one more zygote now (called under the lock)."""
        have = len(state.idle) + state.busy + state.booting
        if have >= self.sizing.zygotes.get(plan.kind, 1):
            return False
        if state.waiters:
            if have == 0:
                return True
            # one more is worth its boot when the queue would outlast it
            queued = len(state.waiters) - state.booting
            return queued > 0 and queued * state.job_s / max(have, 1) > state.boot_s
        recently_failed = now - state.failed_at < 60
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
        zygote: Optional[Zygote] = None
        error: Optional[ZygoteError] = None
        try:
            zygote = self.factory(plan)
            zygote.wait_ready(self.sizing.ready_timeout_s)
        except ZygoteError as failure:
            error = failure
        except Exception as failure:  # a bug must not leave waiters waiting
            error = ZygoteError(f"zygote boot failed: {type(failure).__name__}: {failure}")
        elapsed = time.monotonic() - started
        zygote_startup = zygote.startup_s if zygote else None
        zygote_threads = zygote.threads if zygote else None
        zygote_warning = zygote.log_warning if zygote else None
        with self.cond:
            state = self.plans.setdefault(plan, self._new_state())
            state.booting -= 1
            if error is not None:
                state.failed_at = time.monotonic()
                # a broken machine: every job waiting for this plan hears it, not only the first
                waiters = list(state.waiters) if not error.retryable else list(state.waiters)[:1]
                for waiter in waiters:
                    state.waiters.remove(waiter)
                    waiter.error = error
            elif self.closed:
                pass
            else:
                state.boot_s = _ema(state.boot_s, elapsed)
                if state.waiters:
                    state.busy += 1
                    state.waiters.popleft().zygote = zygote
                    zygote = None
                else:
                    state.idle.append(zygote)
                    zygote = None
            self._schedule()
            self.cond.notify_all()
        if error is not None:
            self.log("pool.boot_failed", level="error", kind=plan.kind, message=str(error)[:500], retryable=error.retryable)
        else:
            self.log("pool.booted", kind=plan.kind, boot_s=round(elapsed, 3), startup_s=zygote_startup,
                     threads=zygote_threads)
            if zygote_warning:
                self.log("pool.zygote_threads", level="warning", message=zygote_warning)
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
                    keep = [z for z in state.idle if not stale and now - z.born <= self.sizing.max_age_s]
                    retired += [z for z in state.idle if z not in keep]
                    state.idle = keep
                self._schedule()
            for zygote in retired:
                self.log("pool.idle_close", kind=zygote.plan.kind, jobs=zygote.jobs)
                zygote.close()


def package_dir() -> str:
    return str(Path(__file__).resolve().parent.parent)
