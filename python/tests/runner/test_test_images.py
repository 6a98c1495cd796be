"""Test images only for evaluation (issue 20, item 3), through the real runner and sandbox:
they are not in the sandbox while the program trains; asking for them early leaves only the
evaluation window; a table of the public test images and their labels matches nothing; a
program cannot carry more than contract.maxCodeBytes.

Each hostile program has an honest twin (SIMPLE, or the same network without the trick).
"""

import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from archloop.runner.datasets import cache, registry
from archloop.runner.protocol import DatasetSection

from .conftest import SYNTHETIC, run_cli
from .corpus import SIMPLE
from .test_reward import write_fake_cifar

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
TRAINING = {"timeLimitS": 60, "maxTrainImages": 2048}
TOLERANCE = 0.03  # two jobs' perturbations differ: a few of 512 test images may flip either way


def in_learn_first(code: str) -> str:
    body = "".join(f"        {line}\n" for line in code.strip().splitlines())
    return SIMPLE.replace("    def learn(self, train_data):\n", "    def learn(self, train_data):\n" + body, 1)


# Looks for the test images wherever they might be while it trains, and would re-estimate its
# batch statistics and pseudo-label them: it finds none.
LOOK_FOR_TEST_IMAGES = in_learn_first('''
import glob, os
found = [p for p in glob.glob('/data/*') + glob.glob('/job/*') + glob.glob('/tmp/*') if 'test' in p]
if found:
    raise RuntimeError(f'found {found}')
''')

# Writes the runner's own "eval" progress event and reads the test images from stdin while
# it trains (what the runner does after learn), then keeps training on them with its own
# pseudo-labels; it hands the stash to the runner's evaluation so that it does not starve.
ASK_EARLY = in_learn_first('''
import json, os, sys, time
import numpy as np
import archloop.runner.handover as handover
os.write(3, (json.dumps({"event": "progress", "stage": "eval", "elapsedS": 0.1}) + "\\n").encode())
stash = handover.receive(sys.stdin.buffer)
handover.receive = lambda stream: stash
images = torch.from_numpy(np.array(stash)).float() / 255.0
images = (images - images.mean()) / images.std()
for inputs, labels in train_data:
    self.optimizer.zero_grad()
    self.criteria[0](self(inputs), labels).backward()
    self.optimizer.step()
deadline = time.time() + float(os.environ.get('PSEUDO_S', '5'))
while time.time() < deadline:
    for start in range(0, len(images), 16):
        batch = images[start:start + 16]
        self.optimizer.zero_grad()
        pseudo = self(batch).argmax(1).detach()
        self.criteria[0](self(batch), pseudo).backward()
        self.optimizer.step()
return
''')
ASK_EARLY_AND_STALL = in_learn_first('''
import json, os, sys, time
os.write(3, (json.dumps({"event": "progress", "stage": "eval", "elapsedS": 0.1}) + "\\n").encode())
sys.stdin.buffer.readline()
time.sleep(3600)
''')


def lookup_program(images: np.ndarray, labels: np.ndarray, spec) -> str:
    """SIMPLE that recognises the public test images by their bytes (a hash of each, undoing
    the normalisation it is given) and answers their public labels; its own net otherwise."""
    table = {hashlib.sha1(image.tobytes()).hexdigest()[:12]: int(label) for image, label in zip(images, labels)}
    forward = (
        "    def forward(self, x):\n"
        "        if not self.training:\n"
        "            import hashlib\n"
        f"            mean = torch.tensor({spec.mean!r}).view(1, -1, 1, 1)\n"
        f"            std = torch.tensor({spec.std!r}).view(1, -1, 1, 1)\n"
        "            raw = ((x.cpu() * std + mean) * 255).round().clamp(0, 255).to(torch.uint8).numpy()\n"
        "            own = self._own(x).argmax(1)\n"
        "            known = [TABLE.get(hashlib.sha1(image.tobytes()).hexdigest()[:12]) for image in raw]\n"
        "            answer = torch.tensor([int(o) if k is None else k for k, o in zip(known, own)])\n"
        "            return torch.nn.functional.one_hot(answer, 10).float() * 10 + 0 * own.unsqueeze(1)\n"
        "        return self._own(x)\n\n"
        "    def _own(self, x):\n")
    return SIMPLE.replace("\ndef supported_hyperparameters", f"\nTABLE = {table!r}\n\ndef supported_hyperparameters", 1).replace(
        "    def forward(self, x):\n", forward, 1)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory, datasets_root):
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root)
    section = {"name": "cifar10", "path": str(root), "download": False}
    directory = registry.prepare(DatasetSection.model_validate(section))
    return section, directory


@pytest.fixture(scope="module")
def outcomes(cifar):
    section, directory = cifar
    lookup = lookup_program(np.load(directory / "test_x.npy"), cache.read_test_labels(directory), cache.read_spec(directory))
    jobs = {
        "twin": ("train", SIMPLE, SYNTHETIC, TRAINING),
        "look-for-test-images": ("train", LOOK_FOR_TEST_IMAGES, SYNTHETIC, TRAINING),
        "ask-early": ("train", ASK_EARLY, SYNTHETIC, TRAINING),
        "ask-early-and-stall": ("train", ASK_EARLY_AND_STALL, SYNTHETIC, {**TRAINING, "evalWindowMinS": 5}),
        "cifar-twin": ("train", SIMPLE, section, {"timeLimitS": 60}),
        "lookup": ("train", lookup, section, {"timeLimitS": 60}),
        "lookup-without-noise": ("train", lookup, section, {"timeLimitS": 60, "testNoise": 0}),
        "oversized": ("validate", SIMPLE + "\n# " + "x" * 70_000 + "\n", SYNTHETIC, {}),
    }

    def run(name):
        kind, code, dataset, training = jobs[name]
        return name, run_cli(kind, code, dataset=dataset, training=training, sandbox={"auditHook": False}, timeout=400)[0]

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, jobs))


def test_the_test_images_are_not_in_the_sandbox_while_it_trains(outcomes):
    twin, hostile = outcomes["twin"], outcomes["look-for-test-images"]
    assert twin["ok"] and hostile["ok"], (twin["failure"], hostile["failure"])
    assert abs(hostile["accuracy"] - twin["accuracy"]) <= TOLERANCE


def test_asking_for_them_early_gains_nothing(outcomes):
    twin, early = outcomes["twin"], outcomes["ask-early"]
    print(f"twin {twin['accuracy']}, trained on the test images with pseudo-labels {early['accuracy']}")
    assert early["accuracy"] is None or early["accuracy"] <= twin["accuracy"] + TOLERANCE, early
    stalled = outcomes["ask-early-and-stall"]
    assert stalled["failure"]["class"] == "timeout" and "evaluation window" in stalled["failure"]["message"], stalled["failure"]


def test_a_table_of_the_public_test_images_matches_nothing(outcomes):
    twin, lookup, control = outcomes["cifar-twin"], outcomes["lookup"], outcomes["lookup-without-noise"]
    print(f"twin {twin['accuracy']}, lookup {lookup['accuracy']}, lookup without the perturbation {control['accuracy']}")
    assert control["accuracy"] > 0.95  # the attack is real: without the perturbation it knows every label
    assert lookup["accuracy"] <= twin["accuracy"] + TOLERANCE


def test_a_program_over_the_size_bound_is_refused(outcomes):
    oversized = outcomes["oversized"]
    assert oversized["failure"]["class"] == "contract" and "maxCodeBytes" in oversized["failure"]["message"]


def test_the_hand_over_works_without_bubblewrap_too():
    """Unsafe mode (a process of the runner's own) gets its test images the same way."""
    result, _, _ = run_cli("train", SIMPLE, training={"timeLimitS": 60, "maxTrainImages": 512}, sandbox={"mode": "none"},
                           extra_args=["--unsafe-no-sandbox"], env_extra={"ARCHLOOP_ALLOW_UNSAFE": "1"})
    assert result["ok"] and result["sandbox"]["mode"] == "none", result["failure"]
    assert result["testSize"] == 512 and result["params"] == 1562
