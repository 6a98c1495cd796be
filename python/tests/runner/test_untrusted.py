"""The trusted side's reading of sandbox output, and its own checks (no sandbox needed).

Hypothesis feeds arbitrary bytes and arbitrary JSON into the parser and the result
assembly: whatever a candidate writes to the event channel, the runner produces a valid,
JSON-serialisable outcome (a classified failure), never an exception.
"""

import base64
import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from archloop.runner import untrusted, verify
from archloop.runner.job import Job
from archloop.runner.progress import ProgressThrottle
from archloop.runner.protocol import ContractSection, DatasetSpec, InnerResult, JobRequest, Logs, SandboxInfo
from archloop.runner.result import interpret
from archloop.runner.sandbox import jobdata
from archloop.runner.sandbox.supervise import Outcome, TailBuffer

SPEC = DatasetSpec(name="synthetic", input_shape=[3, 32, 32], classes=10, class_names=[str(i) for i in range(10)],
                   mean=[0.5] * 3, std=[0.25] * 3, train_size=64, test_size=8, flip=True, source="test")
LABELS = np.array([0, 1, 2, 3, 4, 5, 6, 7])
VALID = {"ok": True, "outputShape": [2, 10], "params": 100, "flops": 1000.0, "graph": None, "warnings": [], "timings": {"a": 1.0}}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(alphabet=st.characters(codec=None)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
forged = st.fixed_dictionaries({"key": st.sampled_from(sorted(VALID) + ["failure", "predictionsB64", "loss", "device"]),
                                "value": json_values})


def outcome_of(lines: list[bytes], returncode: int = 0) -> Outcome:
    return Outcome(returncode=returncode, timed_out=False, output_flood=False, events_flood=False, wall_s=1.0,
                   stdout=TailBuffer(100), stderr=TailBuffer(100), lines=lines)


def assemble(kind: str, lines: list[bytes]):
    """What the runner would return for these event lines (validate, or train against LABELS)."""
    request = JobRequest(kind=kind, code="", dataset={"name": "synthetic"}, contract=ContractSection(max_params=1000))
    job = Job(request, unsafe_no_sandbox=False, emit=lambda _: None, env={"PATH": "/usr/bin:/bin"})
    inner, failure = interpret(outcome_of(lines), None, 60)
    info = SandboxInfo(mode="bwrap", uid=1, wall_limit_s=60, address_space_mb=1, cpu_s=1, nproc=1, nofile=1, fsize_mb=1,
                       exit_code=0, signal=None)
    result = job.finish(SPEC, failure, inner, info, Logs(stdout="", stderr="", truncated_bytes=0), lambda: LABELS)
    return json.loads(result.to_json())


def line(payload) -> bytes:
    return json.dumps(payload).encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()) | forged.map(
    lambda f: line({"event": "result", "result": {**VALID, f["key"]: f["value"]}})), max_size=4),
    st.sampled_from(["validate", "train"]))
def test_any_event_lines_give_a_valid_serialisable_outcome(lines, kind):
    result = assemble(kind, lines)
    assert result["kind"] == kind
    text = json.dumps(result, allow_nan=False, ensure_ascii=False)  # no NaN/inf: the TS side must parse it
    text.encode("utf-8")  # raises on a lone surrogate, which Postgres would reject
    assert "\x00" not in text
    if not result["ok"]:
        assert result["failure"]["class"]
    if kind == "validate" and result["ok"]:
        assert result["params"] <= 1000


def test_forged_numbers_and_strings_are_classified():
    cases = {
        "negative params": {**VALID, "params": -5},
        "params beyond a JS number": {**VALID, "params": 2**60},
        "bool as params": {**VALID, "params": True},
        "unknown failure class": {"ok": False, "failure": {"class": "pwned", "stage": "x", "message": "m"}},
    }
    for name, forged_result in cases.items():
        result = assemble("validate", [line({"event": "result", "result": forged_result})])
        assert result["failure"]["class"] == "crash" and "malformed" in result["failure"]["message"], name
    over = assemble("validate", [line({"event": "result", "result": {**VALID, "params": 10**12}})])
    assert over["failure"]["class"] == "too-large" and over["params"] == 10**12
    shape = assemble("validate", [line({"event": "result", "result": {**VALID, "outputShape": [2, 3]}})])
    assert shape["failure"]["class"] == "shape"
    nan = assemble("validate", [b'{"event":"result","result":{"ok":true,"outputShape":[2,10],"params":1,"flops":NaN}}'])
    assert nan["failure"]["class"] == "crash"
    surrogate = assemble("validate", [b'{"event":"result","result":{"ok":false,"failure":'
                                      b'{"class":"forward","stage":"f","message":"\\ud800 \\u0000 x"}}}'])
    assert surrogate["failure"] == {"class": "forward", "stage": "f", "message": "\ufffd \ufffd x"}
    deep = assemble("validate", [b"[" * 100_000])
    assert deep["failure"]["class"] == "crash"  # no result at all: the exit is classified
    twice = assemble("validate", [line({"event": "result", "result": VALID})] * 2)
    assert twice["failure"]["class"] == "sandbox-violation"


def test_a_train_result_over_budget_or_without_a_budget_is_not_scored():
    zeros = base64.b64encode(bytes(8)).decode()
    over = assemble("train", [line({"event": "result", "result": {"ok": True, "params": 10**12, "flops": 1,
                                                                     "predictionsB64": zeros}})])
    assert over["failure"]["class"] == "too-large" and over["accuracy"] is None
    silent = assemble("train", [line({"event": "result", "result": {"ok": True, "predictionsB64": zeros}})])
    assert silent["failure"]["class"] == "crash" and silent["accuracy"] is None


def test_forged_predictions_are_scored_not_trusted():
    zeros = base64.b64encode(bytes(8)).decode()
    result = assemble("train", [line({"event": "result", "result": {"ok": True, "params": 1, "flops": 1, "predictionsB64": zeros, "accuracy": 1.0}})])
    assert result["accuracy"] == 1 / 8 and result["correct"] == 1
    bad = assemble("train", [line({"event": "result", "result": {"ok": True, "params": 1, "flops": 1, "predictionsB64": "!!!"}})])
    assert bad["failure"]["class"] == "eval-error" and bad["accuracy"] is None
    short = assemble("train", [line({"event": "result", "result": {"ok": True, "params": 1, "flops": 1, "predictionsB64": zeros[:4]}})])
    assert short["failure"]["class"] == "eval-error"
    perfect = base64.b64encode(bytes(LABELS.tolist())).decode()
    assert assemble("train", [line({"event": "result", "result": {"ok": True, "params": 1, "flops": 1, "predictionsB64": perfect}})])["accuracy"] == 1.0


def test_progress_events_are_bounded_and_validated():
    assert untrusted.progress_of({"event": "progress", "stage": "learn", "elapsedS": 1.5, "images": 3}) is not None
    for bad in ({"event": "progress", "stage": "x" * 100, "elapsedS": 1}, {"event": "progress", "stage": "Learn!", "elapsedS": 1},
                {"event": "progress", "stage": "learn", "elapsedS": float("nan")}, {"event": "progress", "stage": "learn"},
                {"event": "progress", "stage": "learn", "elapsedS": 1, "images": True}):
        assert untrusted.progress_of(bad) is None, bad
    throttle = ProgressThrottle(interval_s=1.0, max_events=3)
    assert [throttle.allow(s, t) for s, t in [("a", 0), ("a", 0.5), ("b", 0.6), ("b", 1.7), ("c", 2)]] == [True, False, True, True, False]


@given(st.integers(min_value=1, max_value=300))
def test_the_secret_order_is_undone_when_scoring(count):
    labels = np.random.default_rng(count).integers(0, 10, count)
    order = jobdata.secret_order(count)
    seen_in_sandbox = labels[order]  # a perfect model answers in the order it is shown the images
    perfect = base64.b64encode(seen_in_sandbox.astype(np.uint8).tobytes()).decode()
    assert verify.score(perfect, labels[order], 0.1).accuracy == 1.0
    in_published_order = base64.b64encode(labels.astype(np.uint8).tobytes()).decode()
    assert verify.score(in_published_order, labels[order], 0.0).correct == int((labels == labels[order]).sum())


def test_inner_result_model_rejects_what_json_allows():
    for payload in ({"ok": True, "flops": float("inf")}, {"ok": True, "timings": {"x": -1.0}},
                    {"ok": True, "graph": {"method": "fx", "nodes": [], "output": [-1]}}):
        try:
            InnerResult.model_validate(payload)
        except Exception:
            continue
        raise AssertionError(f"accepted {payload}")
