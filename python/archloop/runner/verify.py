"""What the trusted side checks itself, whatever the sandbox claimed (pure functions).

The sandboxed interpreter ran the candidate, so its report is the candidate's word: a
program can overwrite the runner's functions, write its own result event and exit. Here
the limits are checked again against the claimed numbers, the claimed output shape against
the contract, and the accuracy is computed from the returned predictions against labels
the sandbox never saw, in the secret order this job used.
"""

import base64
import binascii
from dataclasses import dataclass

import numpy as np

from archloop.runner.failures import FailureClass
from archloop.runner.protocol import ContractSection, Failure, InnerResult


def failure(cls: FailureClass, message: str, stage: str) -> Failure:
    return Failure(failure_class=cls.value, stage=stage, message=message)


def check_validation(inner: InnerResult, contract: ContractSection, classes: int) -> Failure | None:
    """A claimed-valid result that breaks the contract's limits or shape is not valid."""
    expected = [contract.validate_batch_size, classes]
    if inner.output_shape != expected:
        return failure(FailureClass.SHAPE, f"claimed output shape {inner.output_shape}, expected {expected}", "shape")
    return check_budget(inner, contract)


def check_budget(inner: InnerResult, contract: ContractSection) -> Failure | None:
    """The measured parameters and FLOPs of a result that claims success (validate, or the
    trained network of a train job), against the contract."""
    if inner.params is None or inner.flops is None:
        return failure(FailureClass.CRASH, "the sandbox reported success without params and FLOPs", "sandbox")
    if inner.params > contract.max_params:
        return failure(FailureClass.TOO_LARGE, f"{inner.params} parameters > limit {contract.max_params}", "params")
    if inner.flops > contract.max_flops:
        return failure(FailureClass.TOO_LARGE, f"{inner.flops:.4g} FLOPs per image > limit {contract.max_flops:.4g}", "flops")
    return None


@dataclass(frozen=True)
class Score:
    failure: Failure | None
    accuracy: float | None = None
    correct: int | None = None
    test_size: int | None = None


def decode_predictions(text: str | None) -> np.ndarray | None:
    try:
        return np.frombuffer(base64.b64decode(text or "", validate=True), dtype=np.uint8)
    except (binascii.Error, ValueError):
        return None


def score(predictions_b64: str | None, labels: np.ndarray, fail_below: float) -> Score:
    """labels: the test labels in the order the sandbox saw the images. A class index the
    dataset does not have is simply wrong."""
    test_size = int(len(labels))
    predictions = decode_predictions(predictions_b64)
    if predictions is None:
        return Score(failure(FailureClass.EVAL_ERROR, "the predictions are not valid base64", "eval"), test_size=test_size)
    if len(predictions) != test_size:
        return Score(failure(FailureClass.EVAL_ERROR, f"{len(predictions)} predictions for {test_size} test images", "eval"),
                     test_size=test_size)
    correct = int((predictions.astype(np.int64) == labels).sum())
    accuracy = correct / test_size if test_size else 0.0
    low = None
    if accuracy < fail_below:
        low = failure(FailureClass.LOW_ACCURACY, f"accuracy {accuracy:.4f} < {fail_below}", "eval")
    return Score(low, accuracy, correct, test_size)
