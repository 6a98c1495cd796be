"""`python -m archloop.runner serve`: one long-lived runner for a worker or a CLI call,
running many jobs at once through a pool of zygotes (warm.py).

Commands arrive as JSON lines on stdin, each answered by JSON lines on stdout tagged with
the job's id (the events of `python -m archloop.runner validate|train`, one result or one
error per job):

    {"op":"run","id":"7","request":{JobRequest}}   -> {"id":"7","event":"progress",…}* {"id":"7","event":"result",…}
    {"op":"prewarm","kind":"validate","sandbox":{…}} -> (boots a zygote for such jobs, if none is there)
    {"op":"cancel","id":"7"}                       -> {"id":"7","event":"error","message":"cancelled","retryable":true}

The first line out is {"event":"hello",…} with the pool's sizing. End of stdin closes the
pool and ends the process; it also dies with the process that started it
(ARCHLOOP_PARENT_PID). Jobs without bubblewrap (unsafe mode) run as one-shot runner
processes: their clean-up sweeps every descendant of the process that runs them.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from archloop.runner import lifeline, warm
from archloop.runner.job import InfrastructureError, Job, gpu_view, plan_for
from archloop.runner.protocol import JobRequest, SandboxSection
from archloop.runner.sandbox import resources


class Command(BaseModel):
    op: Literal["run", "prewarm", "cancel"]
    id: str | None = Field(default=None, min_length=1, max_length=64)  # run, cancel
    request: dict | None = None  # run
    kind: Literal["validate", "train"] | None = None  # prewarm: what the zygote will run,
    sandbox: dict | None = None  # with which sandbox settings,
    device: Literal["auto", "cpu", "cuda"] = "auto"  # and (train) which device


class Output:
    """Whole lines, one writer at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, payload: dict) -> None:
        line = json.dumps(payload, separators=(",", ":")) + "\n"
        with self.lock:
            sys.stdout.write(line)
            sys.stdout.flush()


def log(event: str, **fields) -> None:
    record = {"ts": round(time.time(), 3), "level": fields.pop("level", "info"), "event": event, **fields}
    sys.stderr.write(json.dumps(record, default=str) + "\n")
    sys.stderr.flush()


class Running:
    """One job in flight, and how to stop it."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.process: subprocess.Popen | None = None
        self.job: Job | None = None


class Server:
    def __init__(self, sizing: warm.Sizing, out: Output):
        self.pool = warm.Pool(sizing, warm.package_dir(), log)
        self.out = out
        self.running: dict[str, Running] = {}
        self.lock = threading.Lock()

    def handle(self, line: str) -> None:
        try:
            command = Command.model_validate_json(line)
            request = JobRequest.model_validate(command.request) if command.request is not None else None
        except (ValidationError, ValueError) as error:
            log("serve.bad_command", level="error", message=str(error)[:500])
            return
        if command.op == "cancel" and command.id:
            self._cancel(command.id)
        elif command.op == "prewarm" and command.kind is not None:
            self._prewarm(command)
        elif command.op == "run" and command.id and request is not None:
            running = Running()
            with self.lock:
                self.running[command.id] = running
            threading.Thread(target=self._run, args=(command.id, request, running), daemon=True).start()

    def _prewarm(self, command: Command) -> None:
        try:
            box = SandboxSection.model_validate(command.sandbox or {})
            if box.mode != "bwrap":
                return
            gpu, _ = gpu_view(command.kind, command.device, dict(os.environ))
            self.pool.prewarm(plan_for(command.kind, box, gpu))
        except Exception as error:  # a hint only: the jobs report what is wrong
            log("serve.prewarm_failed", level="warning", message=str(error)[:300])

    def _cancel(self, job_id: str) -> None:
        with self.lock:
            running = self.running.get(job_id)
        if running is None:
            return
        running.cancel.set()
        if running.job is not None:
            running.job.kill()
        if running.process is not None:
            try:
                os.killpg(running.process.pid, 9)
            except ProcessLookupError:
                pass

    def _run(self, job_id: str, request: JobRequest, running: Running) -> None:
        emit = lambda payload: self.out({"id": job_id, **payload})  # noqa: E731
        try:
            if request.sandbox.mode == "none":
                self._run_unsafe(request, running, emit)
                return
            job = Job(request, unsafe_no_sandbox=False, emit=emit)
            running.job = job
            result = job.run(self.pool, running.cancel)
            if running.cancel.is_set():
                emit({"event": "error", "message": "cancelled", "retryable": True})
            else:
                emit({"event": "result", "result": json.loads(result.to_json())})
                failure = result.failure
                log("job.done", id=job_id, kind=request.kind, ok=result.ok,
                    failure=failure.failure_class if failure else None, total_s=result.timings.get("totalS"))
        except warm.Cancelled:
            emit({"event": "error", "message": "cancelled", "retryable": True})
        except InfrastructureError as error:
            log("job.infrastructure_error", level="error", id=job_id, message=str(error)[:1000], retryable=error.retryable)
            emit({"event": "error", "message": str(error), "retryable": error.retryable})
        except Exception as error:  # a bug in the runner: the job must still get an answer
            log("job.crashed", level="error", id=job_id, message=f"{type(error).__name__}: {error}"[:1000])
            emit({"event": "error", "message": f"runner error: {type(error).__name__}: {error}"[:2000], "retryable": True})
        finally:
            with self.lock:
                self.running.pop(job_id, None)

    def _run_unsafe(self, request: JobRequest, running: Running, emit) -> None:
        """A one-shot runner process (`--unsafe-no-sandbox`): its clean-up kills every
        descendant of the process that runs the job, which must not be this one."""
        process = subprocess.Popen([sys.executable, "-m", "archloop.runner", request.kind, "--unsafe-no-sandbox"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ,
                                   "ARCHLOOP_PARENT_PID": str(os.getpid())}, start_new_session=True)
        running.process = process
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(request.model_dump_json(by_alias=True).encode())
        process.stdin.close()
        answered = False
        for raw in process.stdout:
            try:
                payload = json.loads(raw)
            except ValueError:
                continue
            if isinstance(payload, dict) and payload.get("event") in ("progress", "result", "error"):
                answered = answered or payload["event"] != "progress"
                emit(payload)
        code = process.wait()
        if not answered:
            emit({"event": "error", "message": f"the unsafe runner exited ({code}) without a result", "retryable": True})

    def close(self) -> None:
        with self.lock:
            jobs = list(self.running)
        for job_id in jobs:
            self._cancel(job_id)
        self.pool.close()
        resources.close()


def sizing_from(args: argparse.Namespace) -> warm.Sizing:
    return warm.Sizing(jobs={"validate": args.validate_jobs, "train": args.train_jobs}, stock=args.stock,
                       max_booting=args.max_booting, idle_s=args.idle_s)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--validate-jobs", type=int, default=1, help="validate jobs at once (per plan)")
    parser.add_argument("--train-jobs", type=int, default=1, help="train jobs at once (per plan)")
    parser.add_argument("--stock", action="store_true", help="keep the zygotes started while idle (a worker)")
    parser.add_argument("--max-booting", type=int, default=1, help="zygotes importing torch at once")
    parser.add_argument("--idle-s", type=float, default=900.0, help="an unused plan's zygotes are given back after this")


def serve(args: argparse.Namespace) -> int:
    lifeline.die_with_parent(lifeline.parent_from_env(os.environ.get("ARCHLOOP_PARENT_PID")))
    out = Output()
    sizing = sizing_from(args)
    server = Server(sizing, out)
    out({"event": "hello", "pid": os.getpid(), "sizing": {"jobs": sizing.jobs, "stock": sizing.stock,
                                                          "maxBooting": sizing.max_booting, "idleS": sizing.idle_s}})
    log("serve.ready", jobs=sizing.jobs, stock=sizing.stock, max_booting=sizing.max_booting)
    hierarchy, reason = resources.hierarchy()  # which caps hold each sandbox as a whole, said once
    if hierarchy is not None:
        log("serve.cgroup", cgroup=hierarchy.version, where=hierarchy.describe())
    else:
        log("serve.cgroup", level="warning", cgroup=None, message=f"no cgroup ({reason}): memory and processes "
            "capped per process only (RLIMIT_AS, RLIMIT_NPROC per slot uid); GPU jobs have no host-memory cap")
    try:
        for line in sys.stdin:
            if line.strip():
                server.handle(line)
    finally:
        server.close()
    return 0
