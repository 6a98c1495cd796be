"""Budgets measured, not claimed (issue 20, item 1): hostile programs that try to look smaller
than they are, each against the contract's limits, and their honest twins.

Every hostile net below carries a 4000×400 weight (1.6 M parameters) over a budget of
100,000, hidden a different way. Its honest twin is SIMPLE (about 1,600 parameters), which
passes the same budget, and BIG, the same network with nothing hidden, which does not.
"""

import pytest

from .conftest import run_cli
from .corpus import SIMPLE

BUDGET = {"contract": {"max_params": 100_000}}
BIG_INIT = "self.big = nn.Linear(4000, 400)\n"
USE_BIG = "        x = x + 0 * self.big(torch.zeros(1, 4000, device=x.device)).sum()\n"


def with_init(program: str, init: str) -> str:
    body = "".join(f"        {line}\n" for line in init.strip().splitlines())
    return program.replace("        self.device = device\n", "        self.device = device\n" + body, 1)


def with_forward(program: str, code: str) -> str:
    return program.replace("        return self.head(x)\n", code + "        return self.head(x)\n", 1)


BIG = with_forward(with_init(SIMPLE, BIG_INIT), USE_BIG)

# Rebinds every counter it can name before its Net is built: torch's, the runner's and the
# builtins they could use (run in a sandbox only: in-process it would rebind them for the
# test session too).
REBIND_COUNTERS = '''import torch
import torch.utils.flop_counter as flop_counter
import archloop.runner.candidate as candidate
import archloop.runner.graph_ir as graph_ir
import archloop.runner.meter as meter_module
torch.nn.Module.parameters = lambda self, recurse=True: iter(())
torch.nn.Module.buffers = lambda self, recurse=True: iter(())
torch.nn.Module.named_parameters = lambda self, *a, **k: iter(())
torch.Tensor.numel = lambda self: 0
torch.Tensor.nelement = lambda self: 0
flop_counter.conv_flop_count = lambda *a, **k: 0
flop_counter.flop_registry.clear()
candidate.count_params = lambda model: 1
graph_ir.build = lambda model, x: (None, [], 1)
meter_module.stored = lambda model, into=None: {} if into is None else into
try:
    meter_module.FORMULAS.clear()
except AttributeError:
    pass
import builtins
import torch.utils._python_dispatch as python_dispatch
python_dispatch.TorchDispatchMode.__enter__ = lambda self: self
python_dispatch.TorchDispatchMode.__exit__ = lambda self, *exc: None
builtins.sum = lambda values, start=0: 0
builtins.max = lambda *values, **k: 0
''' + BIG

# Keeps its big weight as a buffer (trained by its own optimizer), which parameters() skips.
WEIGHTS_AS_BUFFER = with_forward(with_init(SIMPLE, "self.register_buffer('big', torch.randn(400, 4000))"),
                                 "        x = x + 0 * (self.big @ torch.zeros(4000, device=x.device)).sum()\n").replace(
    "torch.optim.SGD(self.parameters(),", "torch.optim.SGD(list(self.parameters()) + [self.big.requires_grad_()],")

# Keeps it outside the module tree altogether: a module-level global its forward reads.
WEIGHTS_IN_A_GLOBAL = with_forward(SIMPLE.replace("\ndef supported_hyperparameters", "\nBIG = torch.randn(400, 4000)\n\n"
                                                  "def supported_hyperparameters", 1),
                                   "        x = x + 0 * (BIG.to(x.device) @ torch.zeros(4000, device=x.device)).sum()\n")

# Small where validation looks (a batch of 2), big in the train job (the training batch).
SMALL_WHEN_VALIDATED = with_forward(with_init(SIMPLE, "self.big = nn.Linear(4000, 400) if in_shape[0] > 2 else None"),
                                    "        if self.big is not None:\n    " + USE_BIG)

# Small at validation, grows in train_setup (and trains what it grew).
GROWS_IN_SETUP = with_forward(SIMPLE, "        if hasattr(self, 'big'):\n    " + USE_BIG).replace(
    "    def train_setup(self, prm):\n", "    def train_setup(self, prm):\n        self.big = nn.Linear(4000, 400)\n", 1)

# Trains a second network kept outside its module tree, and answers with it only when no
# dispatch mode is watching: the passes that are measured are the passes that are scored.
SWITCH_WHEN_MEASURED = SIMPLE.replace("\ndef supported_hyperparameters", """
HIDDEN = nn.Sequential(nn.Flatten(), nn.LazyLinear(10))

def supported_hyperparameters""", 1).replace("    def forward(self, x):\n", """    def forward(self, x):
        if torch._C._len_torch_dispatch_stack() == 0:
            return HIDDEN(x)
""", 1).replace("    def learn(self, train_data):\n", """    def learn(self, train_data):
        HIDDEN(next(iter([torch.zeros(1, *self.shape)])))
        self.optimizer = torch.optim.SGD(list(self.parameters()) + list(HIDDEN.parameters()), lr=0.01, momentum=0.9)
""", 1).replace("        self.device = device\n", "        self.device = device\n        self.shape = in_shape[1:]\n", 1)


@pytest.mark.parametrize("program", [SIMPLE, BIG, WEIGHTS_AS_BUFFER, WEIGHTS_IN_A_GLOBAL],
                         ids=["twin", "big", "weights-as-buffer", "weights-in-a-global"])
def test_validation_counts_what_a_program_hides(program, validate_inprocess):
    result = validate_inprocess(program, **BUDGET)
    if program is SIMPLE:
        assert result.ok and result.params < 2_000, result.failure
        return
    assert result.failure.failure_class == "too-large", result.failure
    assert result.params >= 1_600_000, result.params


def test_rebinding_the_counters_hides_nothing(validate_inprocess):
    rebound, _, _ = run_cli("validate", REBIND_COUNTERS, contract={"maxParams": 100_000})
    assert rebound["failure"]["class"] == "too-large", rebound["failure"]
    assert rebound["params"] >= 1_600_000
    flops, _, _ = run_cli("validate", REBIND_COUNTERS, contract={"maxFlops": 1000})
    assert flops["failure"]["class"] == "too-large" and "FLOPs" in flops["failure"]["message"], flops["failure"]
    assert flops["flops"] >= validate_inprocess(SIMPLE).flops > 1000


@pytest.mark.parametrize("program", [SMALL_WHEN_VALIDATED, GROWS_IN_SETUP], ids=["small-when-validated", "grows-in-setup"])
def test_the_train_job_measures_the_network_it_trained(program, validate_inprocess, train_inprocess):
    assert validate_inprocess(program, **BUDGET).ok  # what validation saw was within budget
    trained, _ = train_inprocess(program, **BUDGET)
    assert trained.failure.failure_class == "too-large", trained.failure
    assert "measured on the trained network" in trained.failure.message and trained.params >= 1_600_000
    twin, _ = train_inprocess(SIMPLE, **BUDGET)
    assert twin.ok and twin.params == validate_inprocess(SIMPLE).params


def test_a_sandboxed_train_job_reports_too_large_for_what_it_trained():
    """Through the real runner: the trusted side re-checks the measured count it receives."""
    result, _, _ = run_cli("train", SMALL_WHEN_VALIDATED, contract={"maxParams": 100_000},
                           training={"maxTrainImages": 256})
    assert result["failure"]["class"] == "too-large" and result["accuracy"] is None, result["failure"]
    assert result["params"] >= 1_600_000 and "params" in result["claimed"]


def test_switching_networks_while_measured_gains_nothing(train_inprocess, synthetic):
    from .test_train import accuracy

    twin, _ = train_inprocess(SIMPLE)
    switched, _ = train_inprocess(SWITCH_WHEN_MEASURED)
    assert switched.params == twin.params  # what it answered with is what was counted...
    assert accuracy(switched, synthetic) <= accuracy(twin, synthetic)  # ...and what was scored
