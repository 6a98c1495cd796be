import pytest

from archloop.runner.contract import check_hyperparameters, check_source
from archloop.runner.failures import CandidateFailure, FailureClass, classify_exception

from .corpus import INVALID_VALIDATE, SIMPLE, SIMPLE_RENAMED, VALID


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_programs_pass_the_static_contract(name):
    check_source(VALID[name])


def test_inherited_methods_count():
    code = SIMPLE.replace("class Net(nn.Module):", "class Base(nn.Module):\n    def learn(self, d):\n        pass\n\nclass Net(Base):")
    code = code.replace("    def learn(self, train_data):", "    def learn_old(self, train_data):")
    check_source(code)
    check_source(SIMPLE_RENAMED)


def test_syntax_error_names_the_line():
    with pytest.raises(CandidateFailure) as caught:
        check_source(INVALID_VALIDATE["syntax"])
    assert caught.value.failure_class is FailureClass.SYNTAX
    assert caught.value.message.startswith("line 2")


@pytest.mark.parametrize(
    "mutation, message",
    [
        (("    def learn(self, train_data):", "    def learn_it(self, train_data):"), "lacks method(s): learn"),
        (("class Net(nn.Module):", "class Model(nn.Module):"), "no class Net"),
        (("def supported_hyperparameters():", "def hyperparameters():"), "supported_hyperparameters"),
        (("def __init__(self, in_shape, out_shape, prm, device):", "def __init__(self, in_shape):"), "must accept"),
    ],
)
def test_contract_violations_are_precise(mutation, message):
    with pytest.raises(CandidateFailure) as caught:
        check_source(SIMPLE.replace(*mutation))
    assert caught.value.failure_class is FailureClass.CONTRACT
    assert message in caught.value.message


def test_hyperparameter_keys_must_be_known():
    assert check_hyperparameters({"lr", "momentum"}, {"lr", "momentum", "dropout"}) == {"lr", "momentum"}
    with pytest.raises(CandidateFailure, match="weight_decay"):
        check_hyperparameters({"lr", "weight_decay"}, {"lr", "momentum"})
    with pytest.raises(CandidateFailure, match="expected a set"):
        check_hyperparameters("lr", {"lr"})


def test_exception_classification():
    import errno
    import socket

    assert classify_exception(MemoryError(), FailureClass.FORWARD) is FailureClass.OOM
    assert classify_exception(RuntimeError("DefaultCPUAllocator: can't allocate memory"), FailureClass.FORWARD) is FailureClass.OOM
    assert classify_exception(PermissionError(errno.EACCES, "no"), FailureClass.IMPORT) is FailureClass.SANDBOX_VIOLATION
    assert classify_exception(socket.gaierror(-3, "dns"), FailureClass.IMPORT) is FailureClass.SANDBOX_VIOLATION
    assert classify_exception(ValueError("bug"), FailureClass.FORWARD) is FailureClass.FORWARD
    try:
        try:
            raise MemoryError()
        except MemoryError as inner:
            raise ValueError("wrapped") from inner
    except ValueError as outer:
        assert classify_exception(outer, FailureClass.FORWARD) is FailureClass.OOM


def test_module_level_example_code_is_a_contract_failure_naming_the_line():
    guarded = SIMPLE + "\nif __name__ == '__main__':\n    net = Net((1, 3, 32, 32), (10,), {}, 'cpu')\n"
    check_source(guarded)  # never runs: the candidate is imported, not executed as a script
    with pytest.raises(CandidateFailure) as caught:
        check_source(guarded + "model = Net((1, 3, 32, 32), (10,), {}, 'cpu')\nprint(model)\n")
    assert caught.value.failure_class is FailureClass.CONTRACT
    lineno = len(guarded.splitlines()) + 1
    assert f"module-level example code runs at import: delete it (line {lineno}: model = Net(" in caught.value.message


def test_runtime_errors_name_the_candidate_line():
    from archloop.runner.failures import describe_exception

    code = "def build():\n    return [1, 2][5]\n"
    namespace: dict = {}
    exec(compile(code, "/job/candidate.py", "exec"), namespace)
    try:
        namespace["build"]()
    except IndexError as error:
        message = describe_exception(error)
    assert message.startswith("IndexError: list index out of range")
    assert message.endswith("(line 2: )") or message.endswith("(line 2: return [1, 2][5])")
    long = describe_exception(ValueError("x" * 5000), limit=100)
    assert len(long) <= 100
