"""One epoch means one epoch (issue 20, item 2): hostile programs that train more than one
pass, or spend the time limit outside learn, against their honest twin (SIMPLE).

The training images in the sandbox are only those the run gives (maxTrainImages):
test_sandbox.py::test_data_dir_holds_only_what_the_job_needs.
"""

import math

from archloop.runner.job import CPU_SLACK_S, limits_for
from archloop.runner.protocol import JobRequest

from .corpus import SIMPLE

LIMIT_S = 6.0  # the twin needs about a second for all of it


def slow(where: str, seconds: float) -> str:
    """SIMPLE that sleeps `seconds` in `where` (__init__, train_setup, or its eval-mode forward)."""
    pause = f"import time\ntime.sleep({seconds})\n"
    if where == "__init__":
        return SIMPLE.replace("        self.device = device\n", "        self.device = device\n" + _indent(pause), 1)
    if where == "train_setup":
        return SIMPLE.replace("    def train_setup(self, prm):\n", "    def train_setup(self, prm):\n" + _indent(pause), 1)
    return SIMPLE.replace("    def forward(self, x):\n", "    def forward(self, x):\n        if not self.training:\n"
                          + _indent(pause, 12), 1)


def _indent(code: str, spaces: int = 8) -> str:
    return "".join(" " * spaces + line + "\n" for line in code.strip().splitlines())


# Loops over its training data three times, as if that gave it three epochs.
THREE_PASSES = SIMPLE.replace("        for inputs, labels in train_data:\n",
                              "        for epoch in range(3):\n          for inputs, labels in train_data:\n", 1)


def test_a_second_pass_over_the_batches_gets_nothing(train_inprocess):
    twin, _ = train_inprocess(SIMPLE)
    hostile, _ = train_inprocess(THREE_PASSES)
    assert twin.ok and hostile.ok, (twin.failure, hostile.failure)
    assert hostile.predictions_b64 == twin.predictions_b64  # the same training: one epoch, seeded
    assert hostile.loss.steps == twin.loss.steps and hostile.train_images == twin.train_images
    assert any("iterated train_data 3 times" in warning for warning in hostile.warnings), hostile.warnings


def test_time_spent_outside_learn_is_on_the_clock(train_inprocess):
    twin, _ = train_inprocess(SIMPLE, training={"time_limit_s": LIMIT_S})
    assert twin.ok, twin.failure
    for where, stage in (("__init__", "instantiate"), ("train_setup", "setup"), ("forward", "eval")):
        result, _ = train_inprocess(slow(where, LIMIT_S / 2 if where == "forward" else LIMIT_S + 0.5),
                                    training={"time_limit_s": LIMIT_S})
        assert result.failure is not None and result.failure.failure_class == "timeout", (where, result.failure)
        assert result.failure.stage == stage and "from the sandbox's start" in result.failure.message, result.failure


def test_the_cpu_limit_caps_threads():
    """RLIMIT_CPU (hard, so the program cannot raise it) allows `threads` busy threads for the
    wall limit: a program that raises torch's thread count only reaches it sooner."""
    for threads in (1, 2, 4):
        request = JobRequest.model_validate({"kind": "train", "code": "", "dataset": {"name": "synthetic"},
                                             "training": {"threads": threads, "timeLimitS": 100}, "sandbox": {"graceS": 20}})
        assert limits_for(request, gpu=False)["cpu"] == math.ceil(120 * threads) + CPU_SLACK_S
