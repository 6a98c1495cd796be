"""The validate pipeline in-process (torch imported once): corpus and failure classes."""
import pytest

from .conftest import inner_request
from .corpus import CONTRACT_BAD_HYPER, FLAT, INVALID_VALIDATE, OOM, SIMPLE, SIMPLE_RENAMED, SIMPLE_WIDER, VALID


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_corpus(name, validate_inprocess):
    result = validate_inprocess(VALID[name])
    assert result.ok, result.failure
    assert result.output_shape == [2, 10]
    assert result.params > 0 and result.flops > 0
    assert result.graph is not None and len(result.graph.nodes) > 3
    expected_method = "jit" if name == "data_dependent_flow" else "fx"
    assert result.graph.method == expected_method, result.warnings


@pytest.mark.parametrize("failure_class", sorted(INVALID_VALIDATE))
def test_each_invalid_program_is_classified(failure_class, validate_inprocess):
    limits = {"contract": {"max_params": 1_000_000}} if failure_class == "too-large" else {}
    result = validate_inprocess(INVALID_VALIDATE[failure_class], **limits)
    assert not result.ok
    assert result.failure.failure_class == failure_class, result.failure


def test_messages_are_precise(validate_inprocess):
    assert "mat1 and mat2" in validate_inprocess(INVALID_VALIDATE["forward"]).failure.message
    assert "(2, 5), expected (2, 10)" in validate_inprocess(INVALID_VALIDATE["shape"]).failure.message
    assert "No module named" in validate_inprocess(INVALID_VALIDATE["import"]).failure.message
    bad = validate_inprocess(CONTRACT_BAD_HYPER).failure
    assert bad.failure_class == "contract" and "weight_decay" in bad.message


def test_flop_limit(validate_inprocess):
    result = validate_inprocess(SIMPLE, contract={"max_flops": 1000})
    assert result.failure.failure_class == "too-large" and "FLOPs" in result.failure.message


def test_a_resized_run_validates_at_its_shape(synthetic, tmp_path, torch_threads):
    """dataset.resize: Net gets in_shape (B, 3, 64, 64), the probe batch is 64×64, and the
    FLOPs limit applies at that size."""
    from archloop.runner import validate
    from archloop.runner.datasets import registry

    section, directory, spec = synthetic

    def run(resize, **overrides):
        request = inner_request("validate", FLAT, (section, directory, registry.as_seen(spec, resize)), tmp_path, **overrides)
        return validate.run(request, lambda *a, **k: None)

    native, resized = run(None), run(64)
    assert native.ok and resized.ok, (native.failure, resized.failure)
    assert native.params == 3 * 32 * 32 * 10 + 10 and resized.params == 3 * 64 * 64 * 10 + 10
    assert resized.output_shape == [2, 10] and abs(resized.flops / native.flops - 4) < 0.01
    limited = run(64, contract={"max_flops": 2 * native.flops})
    assert limited.failure.failure_class == "too-large"


def test_memory_bomb_in_init_is_oom(validate_inprocess):
    assert validate_inprocess(OOM).failure.failure_class == "oom"


def test_structural_hash_ignores_names_and_style(validate_inprocess):
    from archloop.runner.structural_hash import structural_hash

    a = structural_hash(validate_inprocess(SIMPLE).graph)
    b = structural_hash(validate_inprocess(SIMPLE_RENAMED).graph)
    c = structural_hash(validate_inprocess(SIMPLE_WIDER).graph)
    assert a == b
    assert a != c


def test_structural_hash_differs_across_the_corpus(validate_inprocess):
    from archloop.runner.structural_hash import structural_hash

    hashes = {structural_hash(validate_inprocess(code).graph) for code in VALID.values()}
    assert len(hashes) == len(VALID)


FAKE_MODULE = SIMPLE.replace("class Net(nn.Module):", (
    "class FakeMeta(type):\n"
    "    def mro(cls):\n"
    "        return [cls, nn.Module, object]\n\n"
    "class Net(metaclass=FakeMeta):\n"
    "    __setattr__ = object.__setattr__\n"
    "    __getattr__ = object.__getattribute__\n"), 1).replace("        super().__init__()\n", "", 1)
HIDDEN_PARAMS = SIMPLE.replace("    def forward(self, x):", "    def parameters(self, recurse=True):\n        return iter([])\n\n    def forward(self, x):", 1)


def test_a_net_that_only_pretends_to_be_a_module_is_a_contract_failure(validate_inprocess):
    result = validate_inprocess(FAKE_MODULE)
    assert not result.ok and result.failure.failure_class == "contract", result.failure
    assert "did not build a torch.nn.Module" in result.failure.message


def test_an_overridden_parameters_method_does_not_hide_parameters(validate_inprocess):
    honest, hiding = validate_inprocess(SIMPLE), validate_inprocess(HIDDEN_PARAMS)
    assert hiding.params == honest.params > 0
