"""CLI: `python -m archloop.runner validate|train|serve|dataset-spec`.

validate/train read a JobRequest as JSON (stdin, or --request FILE; or build one from
--code/--dataset) and write JSON lines on stdout: {"event":"progress",…}* then one
{"event":"result","result":…}. An infrastructure problem (no bwrap, dataset missing)
is {"event":"error","message":…} with exit code 3; a failing candidate is a result
with exit code 0. --unsafe-no-sandbox also needs ARCHLOOP_ALLOW_UNSAFE=1 in the environment.
`serve` runs many jobs through a pool of zygotes (serve.py).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pydantic import ValidationError

EXIT_INFRA = 3
EXIT_USAGE = 2


def _out(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(event: str, **fields) -> None:
    """Structured log line on stderr."""
    record = {"ts": round(time.time(), 3), "level": fields.pop("level", "info"), "event": event, **fields}
    sys.stderr.write(json.dumps(record, default=str) + "\n")


def _request(args, kind: str):
    from archloop.runner.protocol import DatasetSection, JobRequest

    if args.code:
        dataset = DatasetSection(name=args.dataset, path=args.dataset_path or "", download=not args.no_download)
        return JobRequest(kind=kind, code=Path(args.code).read_text(), dataset=dataset)
    raw = Path(args.request).read_text() if args.request and args.request != "-" else sys.stdin.read()
    payload = json.loads(raw)
    payload.setdefault("kind", kind)
    if payload["kind"] != kind:
        raise ValueError(f"request kind {payload['kind']!r} does not match command {kind!r}")
    return JobRequest.model_validate(payload)


def run_job(args, kind: str) -> int:
    from archloop.runner import lifeline
    from archloop.runner.job import InfrastructureError, Job

    # Die with the worker that started us (it spawns us in our own process group, so its
    # own death would not reach us otherwise); bwrap --die-with-parent does the rest.
    lifeline.die_with_parent(lifeline.parent_from_env(os.environ.get("ARCHLOOP_PARENT_PID")))
    try:
        request = _request(args, kind)
    except (ValueError, ValidationError, OSError) as error:
        _out({"event": "error", "message": f"bad request: {error}"})
        return EXIT_USAGE
    try:
        job = Job(request, unsafe_no_sandbox=args.unsafe_no_sandbox, emit=_out)
        if job.mode == "none":
            log("sandbox.disabled", level="error", message="UNSAFE: running untrusted code without bubblewrap (--unsafe-no-sandbox)")
        result = job.run()
    except InfrastructureError as error:
        log("job.infrastructure_error", level="error", message=str(error), retryable=error.retryable)
        _out({"event": "error", "message": str(error), "retryable": error.retryable})
        return EXIT_INFRA
    _out({"event": "result", "result": json.loads(result.to_json())})
    failure = result.failure
    log("job.done", kind=kind, ok=result.ok, failure=failure.failure_class if failure else None,
        total_s=result.timings.get("totalS"))
    return 0


def dataset_spec(args) -> int:
    from archloop.runner.datasets import registry
    from archloop.runner.protocol import DatasetSection

    section = DatasetSection(name=args.dataset, path=args.dataset_path or "", download=not args.no_download,
                             synthetic_train_size=args.synthetic_train_size, synthetic_test_size=args.synthetic_test_size,
                             resize=args.resize)
    try:
        spec = registry.spec_of(section)
    except Exception as error:  # missing files, failed download
        _out({"event": "error", "message": f"dataset {args.dataset}: {error}"})
        return EXIT_INFRA
    sys.stdout.write(spec.to_json() + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archloop.runner")
    commands = parser.add_subparsers(dest="command", required=True)
    for kind in ("validate", "train"):
        sub = commands.add_parser(kind, help=f"{kind} one candidate program")
        sub.add_argument("--request", help="JobRequest JSON file ('-' or omitted: stdin)")
        sub.add_argument("--code", help="candidate .py file (instead of a request)")
        sub.add_argument("--dataset", default="synthetic")
        sub.add_argument("--dataset-path")
        sub.add_argument("--no-download", action="store_true")
        sub.add_argument("--unsafe-no-sandbox", action="store_true",
                         help="run WITHOUT bubblewrap (rlimits and timeouts only; needs ARCHLOOP_ALLOW_UNSAFE=1): never on a shared machine")
    from archloop.runner.serve import add_arguments
    add_arguments(commands.add_parser("serve", help="run jobs from stdin through a pool of zygotes (workers, the CLI)"))
    spec = commands.add_parser("dataset-spec", help="print a dataset's spec (input shape, classes, mean/std)")
    spec.add_argument("--dataset", required=True, choices=["cifar10", "fashion-mnist", "synthetic"])
    spec.add_argument("--dataset-path")
    spec.add_argument("--no-download", action="store_true")
    spec.add_argument("--synthetic-train-size", type=int, default=2048)
    spec.add_argument("--synthetic-test-size", type=int, default=512)
    spec.add_argument("--resize", type=int, help="the spec as a run with dataset.resize sees it (C, N, N)")
    args = parser.parse_args(argv)
    if args.command == "dataset-spec":
        return dataset_spec(args)
    if args.command == "serve":
        from archloop.runner.serve import serve
        return serve(args)
    return run_job(args, args.command)


if __name__ == "__main__":
    sys.exit(main())
