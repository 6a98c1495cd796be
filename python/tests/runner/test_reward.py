"""The reward cannot be forged: no label, label file, generator or secret is reachable in
the sandbox, and programs that try every shortcut score at chance or below.

Runs through the real CLI and bubblewrap on each dataset: the synthetic set, a small fake
CIFAR-10 in the standard python layout, and Debian's Fashion-MNIST (when installed: its
test labels sit in /usr/share/datasets on this very machine).
"""

import math
import pickle
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from archloop.runner.datasets import cache, fashion_mnist, registry
from archloop.runner.protocol import DatasetSection

from .conftest import SYNTHETIC, run_cli
from .corpus import SIMPLE
from .walker import report_of, walker_program

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

FASHION = fashion_mnist.DEFAULT_DIR / "t10k-labels-idx1-ubyte.gz"
CIFAR_PER_BATCH, CIFAR_TEST = 100, 1000
WALK = {"training": {"timeLimitS": 30, "maxTrainImages": 256}, "sandbox": {"graceS": 600}, "timeout": 900}
ADVERSARY = {"training": {"timeLimitS": 60, "maxTrainImages": 256}, "sandbox": {"graceS": 120}, "timeout": 400}


def write_fake_cifar(root: Path) -> None:
    rng = np.random.default_rng(7)
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True)
    for name, count in [*((f"data_batch_{i}", CIFAR_PER_BATCH) for i in range(1, 6)), ("test_batch", CIFAR_TEST)]:
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, count).tolist(),
                 b"data": rng.integers(0, 256, (count, 3 * 32 * 32), dtype=np.uint8), b"filenames": [b"x.png"] * count}
        (directory / name).write_bytes(pickle.dumps(batch, protocol=2))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, datasets_root):
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root)
    found = {"synthetic": SYNTHETIC, "cifar10": {"name": "cifar10", "path": str(root), "download": False}}
    if FASHION.exists():
        found["fashion-mnist"] = {"name": "fashion-mnist"}
    out = {}
    for name, section in found.items():
        directory = registry.prepare(DatasetSection.model_validate(section))
        out[name] = {"section": section, "test": cache.read_test_labels(directory),
                     "train": np.load(directory / "train_y.npy")}
    return out


def chance_bound(labels: np.ndarray) -> float:
    """The best a program without the labels can expect (always naming the commonest
    class), plus five standard deviations of a random guess over this many images."""
    commonest = np.bincount(labels, minlength=10).max() / len(labels)
    return commonest + 5 * math.sqrt(0.09 / len(labels))


def answers_program(source: str) -> str:
    """SIMPLE whose eval-mode forward answers from self.answers (a label list built in __init__
    by `source`), in the order the test images arrive; no training at all."""
    init = "".join(f"        {line}\n" for line in source.strip().splitlines())
    program = SIMPLE.replace("        self.device = device\n", "        self.device = device\n        self.pos = 0\n" + init, 1)
    program = program.replace("    def forward(self, x):\n", (
        "    def forward(self, x):\n"
        "        if not self.training and self.answers is not None:\n"
        "            n = x.shape[0]\n"
        "            part = torch.as_tensor(list(self.answers[self.pos:self.pos + n]) + [0] * n, dtype=torch.long)[:n]\n"
        "            self.pos += n\n"
        "            return F.one_hot(part, 10).float() * 10 + 0 * self.head.bias\n"), 1)
    return program.replace("    def learn(self, train_data):\n", "    def learn(self, train_data):\n        return\n", 1)


HUNT_LABELS = r'''
import gzip, os
import numpy as np
self.answers = None
n = int(np.load('/data/test_x.npy', mmap_mode='r').shape[0])
for root, dirs, files in os.walk('/'):
    if root in ('/proc', '/sys', '/dev'):
        dirs[:] = []
        continue
    for name in files:
        path = os.path.join(root, name)
        try:
            if name.endswith('.npy'):
                array = np.load(path, mmap_mode='r')
                if array.shape == (n,):
                    self.answers = [int(v) for v in array]
            elif 'labels' in name or name.startswith('test'):
                raw = gzip.open(path).read() if name.endswith('.gz') else open(path, 'rb').read()
                if raw[:4] == b'\x00\x00\x08\x01' and int.from_bytes(raw[4:8], 'big') == n:
                    self.answers = list(raw[8:])
        except Exception:
            pass
'''

REGENERATE_SYNTHETIC = r'''
import numpy as np
self.answers = None
try:
    from archloop.runner.datasets import synthetic  # the generator itself, if it were reachable
except ImportError:
    synthetic = None
test_x = np.load('/data/test_x.npy')
n, m = len(test_x), int(np.load('/data/train_x.npy', mmap_mode='r').shape[0])

def generate(seed, palette_public):
    rng = np.random.default_rng(seed)
    if palette_public:
        colour = np.random.default_rng(0).uniform(40, 215, size=(10, 3, 1, 1))[rng.permutation(10)]
    else:
        colour = rng.uniform(40, 215, size=(10, 3, 1, 1))
    coarse = rng.uniform(-60, 60, size=(10, 3, 4, 4))
    pattern = coarse.repeat(8, axis=2).repeat(8, axis=3)
    prototypes = colour + (pattern + pattern[..., ::-1]) / 2
    def samples(count):
        labels = rng.integers(0, 10, size=count)
        noise = rng.normal(0, 40, size=(count, 3, 32, 32))
        brightness = rng.normal(0, 20, size=(count, 1, 1, 1))
        return np.clip(prototypes[labels] + noise + brightness, 0, 255).astype(np.uint8), labels
    samples(m)
    return samples(n)

lookup = {}
for seed in range(4):
    for public in (False, True):
        images, labels = generate(seed, public)
        lookup.update({image.tobytes(): int(label) for image, label in zip(images, labels)})
self.answers = [lookup.get(image.tobytes(), 0) for image in test_x]
'''

TRAIN_LABELS_IN_ORDER = r'''
import numpy as np
self.answers = [int(v) for v in np.load('/data/train_y.npy')]
'''


def memorised(labels: np.ndarray) -> str:
    """A program that knows every test label in the published order."""
    return f"self.answers = {[int(v) for v in labels]!r}\n"


def forged_result(labels: np.ndarray, then_continue: bool) -> str:
    """Writes its own result event, predicting the published labels, then exits (or carries on)."""
    exit_line = "" if then_continue else "os._exit(0)\n"
    return (
        "import base64, json, os\n"
        "self.answers = None\n"
        "argv = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n"
        "fd = int(argv[argv.index(b'--events-fd') + 1])\n"
        f"predictions = bytes({[int(v) for v in labels]!r})\n"
        "event = {'event': 'result', 'result': {'ok': True, 'predictionsB64': base64.b64encode(predictions).decode(),\n"
        "         'accuracy': 1.0, 'correct': len(predictions), 'trainImages': 50000, 'device': 'cpu',\n"
        "         'params': 1000, 'flops': 1000}}\n"
        "os.write(fd, (json.dumps(event) + '\\n').encode())\n" + exit_line
    )


def adversaries(datasets) -> dict[str, tuple[str, str]]:
    """name -> (dataset, program)."""
    jobs = {}
    for name, data in datasets.items():
        jobs[f"{name}/hunt-labels"] = (name, answers_program(HUNT_LABELS))
        jobs[f"{name}/answer-in-test-order"] = (name, answers_program(memorised(data["test"])))
        jobs[f"{name}/train-labels-in-order"] = (name, answers_program(TRAIN_LABELS_IN_ORDER))
        jobs[f"{name}/forge-result"] = (name, answers_program(forged_result(data["test"], then_continue=False)))
    jobs["synthetic/regenerate"] = ("synthetic", answers_program(REGENERATE_SYNTHETIC))
    jobs["synthetic/forge-and-continue"] = ("synthetic", answers_program(forged_result(datasets["synthetic"]["test"], True)))
    return jobs


def _run(name, dataset, program, options):
    return name, run_cli("train", program, dataset=dataset, training=options["training"], sandbox=options["sandbox"],
                         timeout=options["timeout"])


@pytest.fixture(scope="module")
def outcomes(datasets):
    secret = cache.machine_secret()
    given = WALK["training"]["maxTrainImages"]  # the sandbox holds only the training labels the run gives
    jobs = [(f"walk/{name}", data["section"], walker_program(data["test"], data["train"][:given], secret), WALK)
            for name, data in datasets.items()]
    jobs += [(name, datasets[dataset]["section"], program, ADVERSARY) for name, (dataset, program) in adversaries(datasets).items()]
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(lambda job: _run(*job), jobs))


@pytest.mark.parametrize("dataset", ["synthetic", "cifar10", "fashion-mnist"])
def test_a_candidate_walking_the_whole_filesystem_finds_no_labels(dataset, datasets, outcomes):
    if dataset not in datasets:
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    result, _, _ = outcomes[f"walk/{dataset}"]
    report = report_of(result)
    print(f"walk {dataset}: {report['files']} files, {report['bytes'] / 1e9:.2f} GB read, {report['dirs']} dirs, "
          f"{report['errors']} unreadable, findings {len(report['findings'])}, sandboxS {result['timings']['sandboxS']}")
    assert report["findings"] == [], report["findings"]
    # It really walked and read: the data it was given (no test images while it trains), the
    # runner, gigabytes of libraries...
    assert set(report["seen"]) == {"/data/train_x.npy", "/data/train_y.npy",
                                   "/opt/archloop/archloop/runner/inner.py"}, report["seen"]
    assert report["files"] > 1000 and report["bytes"] > 500e6, report
    # ...and its search works: it finds the training labels the sandbox is allowed to see.
    assert ["/data/train_y.npy", "train-labels/int64"] in report["control"], report["control"]


def test_adversaries_score_at_chance_or_below(datasets, outcomes):
    scores = {}
    for name in adversaries(datasets):
        result, _, _ = outcomes[name]
        assert "error" not in result, (name, result)
        labels = datasets[name.split("/")[0]]["test"]
        scores[name] = (result["accuracy"] or 0.0, round(chance_bound(labels), 4), result["failure"])
    for name, (accuracy, bound, failure) in sorted(scores.items()):  # shown with pytest -s (bench/RESULTS.md)
        print(f"{name:40s} accuracy {accuracy:.4f}  chance bound {bound:.4f}  {failure and failure['class']}")
    over = {name: score for name, score in scores.items() if score[0] > score[1]}
    assert over == {}, over


def test_forgeries_are_classified(datasets, outcomes):
    twice, _, proc = outcomes["synthetic/forge-and-continue"]
    assert twice["failure"]["class"] == "sandbox-violation" and "2 result events" in twice["failure"]["message"]
    assert twice["accuracy"] is None and proc.returncode == 0
    once, _, _ = outcomes["synthetic/forge-result"]
    # A lone forged result is indistinguishable from a real one: it is scored like one, and its
    # claims (training images, device) are stored as claims, never as accuracy.
    assert once["testSize"] == len(datasets["synthetic"]["test"]) and "trainImages" in once["claimed"]
    assert once["trainImages"] == 50000 and once["accuracy"] <= chance_bound(datasets["synthetic"]["test"])
