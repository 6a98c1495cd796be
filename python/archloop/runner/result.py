"""A job's result, made on the trusted side from what its sandbox left behind.

The exit is classified first: limits the supervisor saw broken win over anything reported.
Then the one result event is read, every field of it the candidate's claim: the limits are
checked again, the accuracy is scored against test labels that never entered the sandbox,
and the structural hash is computed here from the returned IR. Whatever the candidate
wrote, the result is a valid outcome.
"""

import signal
import time
from collections.abc import Callable

import numpy as np

from archloop.runner import RUNNER_VERSION, untrusted, verify
from archloop.runner.failures import FailureClass
from archloop.runner.protocol import (DatasetInfo, DatasetSpec, Failure, InnerResult, JobRequest, Logs, SandboxInfo,
                                      TrainOutcome, ValidateOutcome)
from archloop.runner.sandbox import supervise
from archloop.runner.structural_hash import structural_hash
from archloop.runner.verify import failure as _failure

MAX_GRAPH_NODES = 50_000
Labels = Callable[[], np.ndarray]  # the test labels in the order this job's sandbox saw the images


def signal_name(returncode: int | None) -> str | None:
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
        cap = outcome.events_detail or "over its cap"
        return _failure(FailureClass.SANDBOX_VIOLATION, f"the event channel was flooded ({cap}); process tree killed. "
                        "Only the runner writes there: print() for your own output", "sandbox")
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


def assemble(request: JobRequest, spec: DatasetSpec | None, failure: Failure | None, inner: InnerResult | None,
             sandbox: SandboxInfo | None, logs: Logs, labels: Labels | None, *, started: float,
             timings: dict[str, float], warnings: list[str]) -> ValidateOutcome | TrainOutcome:
    """The job's result. started, timings, warnings: what the trusted side measured itself;
    the sandbox's own timings and warnings are merged in."""
    score = verify.Score(None)
    if request.kind == "validate" and failure is None and inner is not None and spec is not None:
        failure = verify.check_validation(inner, request.contract, spec.classes)
    if request.kind == "train" and failure is None and inner is not None and labels is not None:
        failure = verify.check_budget(inner, request.contract)
    if request.kind == "train" and failure is None and inner is not None and labels is not None:
        score = verify.score(inner.predictions_b64, labels(), request.training.fail_below_accuracy)
        failure = score.failure
    common = dict(
        ok=failure is None, failure=failure,
        dataset=DatasetInfo(name=spec.name, input_shape=spec.input_shape, classes=spec.classes) if spec else None,
        warnings=warnings + (inner.warnings if inner else []),
        timings={**(inner.timings if inner else {}), **timings, "totalS": round(time.perf_counter() - started, 4)},
        sandbox=sandbox, logs=logs, runner_version=RUNNER_VERSION, torch_version=inner.torch_version if inner else None,
    )
    if request.kind == "validate":
        return _validate_outcome(common, failure, inner)
    training = request.training
    return TrainOutcome(**common, accuracy=score.accuracy, correct=score.correct, test_size=score.test_size,
                        train_images=inner.train_images if inner else None, epochs=training.epochs,
                        batch_size=training.batch_size, device=inner.device if inner else None,
                        bf16=inner.bf16 if inner else None, channels_last=inner.channels_last if inner else None,
                        threads=inner.threads if inner else None, seed=training.seed,
                        loss=inner.loss if inner else None, params=inner.params if inner else None,
                        flops=inner.flops if inner else None)


def _validate_outcome(common: dict, failure: Failure | None, inner: InnerResult | None) -> ValidateOutcome:
    """The graph IR only of a valid candidate, within bounds, and its structural hash."""
    graph = inner.graph if inner and failure is None else None
    if graph is not None and len(graph.nodes) > MAX_GRAPH_NODES:
        common["warnings"].append(f"graph IR dropped: {len(graph.nodes)} nodes > {MAX_GRAPH_NODES}")
        graph = None
    digest = None
    if graph is not None:
        try:
            digest = structural_hash(graph)
        except Exception as error:  # a claimed graph may be any shape: no hash, not a crash
            common["warnings"].append(f"graph IR malformed ({type(error).__name__}); no structural hash")
            graph = None
    return ValidateOutcome(**common, output_shape=inner.output_shape if inner else None,
                           params=inner.params if inner else None, flops=inner.flops if inner else None,
                           graph=graph, structural_hash=digest)
