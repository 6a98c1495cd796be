"""The candidate's process: reads one InnerRequest on stdin, runs validate or train, and
writes JSON-line events to the events fd.

In a sandbox it is a child of the zygote (zygote.py), forked with torch already imported
and confined before it reads its request. Without bubblewrap (unsafe mode) it is started
on its own: `python -m archloop.runner.inner`, which limits itself, then imports torch.

Everything after the candidate is imported is untrusted: the launcher treats what comes
out of this process as data to validate, never as truth it cannot check.
"""

import argparse
import json
import os
import resource
import sys
import time
from typing import NoReturn

LIMITS = {"as": resource.RLIMIT_AS, "cpu": resource.RLIMIT_CPU, "nproc": resource.RLIMIT_NPROC,
          "fsize": resource.RLIMIT_FSIZE, "nofile": resource.RLIMIT_NOFILE, "core": resource.RLIMIT_CORE}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def apply_limits(spec: str) -> None:
    """`as=123,cpu=60,…`: soft = hard, so candidate code cannot raise them again."""
    for item in filter(None, spec.split(",")):
        name, value = item.split("=")
        limit = resource.RLIM_INFINITY if value == "inf" else int(value)
        resource.setrlimit(LIMITS[name], (limit, limit))


class Events:
    def __init__(self, fd: int):
        self.fd = fd
        self.started = time.perf_counter()

    def write(self, payload: dict) -> None:
        data = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def progress(self, stage: str, **fields) -> None:
        payload = {"event": "progress", "stage": stage, "elapsedS": round(time.perf_counter() - self.started, 3)}
        payload.update({_camel(k): v for k, v in fields.items() if v is not None})
        self.write(payload)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def use_threads(threads: int) -> None:
    import torch

    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    torch.set_num_threads(threads)


def cap_gpu_memory(limit_mb: int) -> None:
    """The contract's memory budget on the GPU too: torch's allocator refuses more (a clean
    `oom`). Set before the candidate is imported, but in its process, so a guard rail, not
    a wall: the walls are one train job per GPU and the job's cgroup for host memory."""
    import torch

    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, limit_mb * 2**20 / total))


def run_request(events: Events) -> NoReturn:
    """Reads the request (one line) and runs it: the candidate's code runs from here on. A
    train job reads its test images from stdin too, once learn has returned (handover.py)."""
    import torch

    from archloop.runner import audit, handover, train, validate
    from archloop.runner.protocol import InnerRequest

    request = InnerRequest.model_validate_json(sys.stdin.buffer.readline())
    if request.training.device != "cpu" and request.kind == "train" and torch.cuda.is_available():
        torch.zeros(1, device="cuda")  # initialise CUDA before the audit hook is armed
        cap_gpu_memory(request.contract.memory_limit_mb)
    if request.audit_hook:  # armed for good; the hand-over (reading stdin) and the result (writing
        # the events fd) only use descriptors already open, which it never refuses
        audit.install((request.job_dir, "/dev/null", "/dev/shm"))
    if request.kind == "validate":
        result = validate.run(request, events.progress)
    else:
        result = train.run(request, events.progress, events.started, lambda: handover.receive(sys.stdin.buffer))
    events.write({"event": "result", "result": json.loads(result.to_json())})
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: candidate objects may misbehave in __del__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archloop.runner.inner")
    parser.add_argument("--events-fd", type=int, required=True)
    parser.add_argument("--limits", default="")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    apply_limits(args.limits)
    from archloop.runner.lifeline import die_with_parent
    die_with_parent(None)  # without bwrap there is no PID namespace to take us down with the runner
    events = Events(args.events_fd)
    events.progress("start")

    import torch  # noqa: F401  (after the limits: the import itself runs confined)

    from archloop.runner import audit, train, validate  # noqa: F401

    use_threads(args.threads)
    events.progress("ready")
    run_request(events)


if __name__ == "__main__":
    sys.exit(main())
