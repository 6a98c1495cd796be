"""Issue 20 (items 4, 5): what the per-sandbox caps and the bounded event channel cost and
hold, measured through the warm path (a pool, a zygote, a Job per program; this process is
the trusted side, as `serve` is).

    PYTHONPATH=python .venv/bin/python bench/sandbox_caps.py            # all
    PYTHONPATH=<old checkout>/python .venv/bin/python bench/sandbox_caps.py flood   # the channel before

Prints one JSON object per measurement.
"""

import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
os.environ.setdefault("ARCHLOOP_DATASETS", tempfile.mkdtemp(prefix="archloop-bench-"))
os.chmod(os.environ["ARCHLOOP_DATASETS"], 0o755)

from tests.runner import test_resources as hostile  # noqa: E402
from tests.runner.corpus import SIMPLE  # noqa: E402
from tests.runner.test_sandbox import in_init  # noqa: E402

from archloop.runner import warm  # noqa: E402
from archloop.runner.job import Job  # noqa: E402
from archloop.runner.protocol import JobRequest  # noqa: E402

DATASET = {"name": "synthetic", "syntheticTrainSize": 2048, "syntheticTestSize": 512}


def job(pool, kind: str, code: str, **contract) -> tuple[dict, float, float]:
    request = JobRequest.model_validate({"kind": kind, "code": code, "dataset": DATASET,
                                         "contract": {"validateTimeoutS": 30, **contract},
                                         "training": {"threads": 1, "timeLimitS": 60, "batchSize": 16},
                                         "sandbox": {"auditHook": False}})
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    result = json.loads(Job(request, unsafe_no_sandbox=False, emit=lambda _: None).run(pool).to_json())
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return result, round(time.monotonic() - started, 2), round(cpu, 2)


def report(name: str, result: dict, wall: float, cpu: float) -> None:
    failure = result.get("failure") or {}
    print(json.dumps({"case": name, "class": failure.get("class"), "message": (failure.get("message") or "")[:160],
                      "cgroup": result["sandbox"].get("cgroup"), "wallS": wall, "trustedCpuS": cpu,
                      "accuracy": result.get("accuracy")}), flush=True)


def main(which: str) -> None:
    pool = warm.Pool(warm.Sizing(jobs={"validate": 1, "train": 1}), warm.package_dir(), lambda *a, **k: None)
    try:
        job(pool, "validate", SIMPLE)  # boots the zygote
        if which in ("all", "flood"):
            report("empty-line flood (16 MiB - 64 KiB)", *job(pool, "validate", in_init(hostile.LINE_FLOOD)))
        if which in ("all", "caps"):
            report("honest validate", *job(pool, "validate", SIMPLE))
            job(pool, "train", SIMPLE)  # boots the train zygote
            report("honest train", *job(pool, "train", SIMPLE))
            report("memory hog, 8 children x 256 MiB", *job(pool, "validate", in_init(hostile.MEMORY_HOG), memoryLimitMb=64))
            report("fork bomb", *job(pool, "validate", in_init(hostile.FORK_BOMB)))
            report("cpu hog, 4 processes", *job(pool, "validate", in_init(hostile.CPU_HOG)))
        if which in ("all", "overhead"):
            overhead(pool)
    finally:
        pool.close()


def overhead(pool, rounds: int = 10) -> None:
    """An honest validation's wall time with and without its cgroup, interleaved."""
    from archloop.runner.sandbox import resources

    hierarchy, _ = resources.hierarchy()
    times: dict[str, list[float]] = {"cgroup": [], "none": []}
    for _ in range(rounds):
        for variant in ("cgroup", "none"):
            resources._hierarchy, resources._reason = (hierarchy, None) if variant == "cgroup" else (None, "bench")
            result, wall, _ = job(pool, "validate", SIMPLE)
            assert result["ok"] and (result["sandbox"]["cgroup"] is not None) == (variant == "cgroup")
            times[variant].append(wall)
    resources._hierarchy, resources._reason = hierarchy, None
    median = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    print(json.dumps({"case": f"honest validate, median of {rounds}", "wallS": median}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "all")
