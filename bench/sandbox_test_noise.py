"""What the per-job test-image perturbation (training.testNoise) costs in accuracy, and what
the evaluation window (training.evalWindow*) leaves an honest program: issue 20.

Each net of the test corpus trains once (one epoch, its own train_setup/learn, in-process,
Fashion-MNIST, the demo's 12,000 training images and batch 64); the same trained network is
then scored on the clean test images and on perturbed copies at several amplitudes, so
the differences are paired (the same weights), not two trainings' noise. Also printed: the
seconds before evaluation (import .. learn) and of evaluation, whose ratio is what the
window must cover.

    PYTHONPATH=python .venv/bin/python bench/sandbox_test_noise.py [--dataset fashion-mnist] [--amplitudes 2 4 8]
"""

import argparse
import base64
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from archloop.runner import train  # noqa: E402
from archloop.runner.datasets import cache, registry  # noqa: E402
from archloop.runner.protocol import ContractSection, DatasetSection, InnerRequest, TrainingSection  # noqa: E402
from archloop.runner.sandbox.jobdata import perturbed  # noqa: E402
from tests.runner.corpus import VALID  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--amplitudes", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--train-images", type=int, default=12_000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    directory = registry.prepare(DatasetSection(name=args.dataset))
    spec = cache.read_spec(directory)
    labels = cache.read_test_labels(directory)
    clean = np.load(directory / "test_x.npy")
    rng = np.random.default_rng(20)
    copies = {0: clean, **{a: perturbed(clean, a, rng) for a in args.amplitudes}}
    print(f"{args.dataset}: {len(clean)} test images; pixels unchanged at amplitude a: "
          + ", ".join(f"{a}: {np.mean(copies[a] == clean):.3f}" for a in args.amplitudes)
          + "; images byte-identical to the public copy: "
          + ", ".join(f"{a}: {sum(np.array_equal(x, y) for x, y in zip(copies[a], clean))}" for a in args.amplitudes))
    print(f"{'net':22s} " + " ".join(f"{'acc@' + str(a):>8s}" for a in copies) + f" {'beforeS':>8s} {'evalS':>6s}")
    deltas = {a: [] for a in args.amplitudes}
    stacked = np.concatenate([copies[a] for a in copies])  # one evaluation scores every copy: the same weights
    for name, code in VALID.items():
        request = InnerRequest(kind="train", code=code, spec=spec, data_dir=str(directory), contract=ContractSection(),
                               training=TrainingSection(threads=1, batch_size=args.batch, max_train_images=args.train_images,
                                                        time_limit_s=3600), audit_hook=False, job_dir=tempfile.mkdtemp())
        started = time.perf_counter()
        result = train.run(request, lambda *a, **k: None, started, lambda: stacked)
        assert result.ok, (name, result.failure)
        eval_s = result.timings["evalS"] / len(copies)
        before_s = time.perf_counter() - started - result.timings["evalS"]
        predictions = np.frombuffer(base64.b64decode(result.predictions_b64), dtype=np.uint8).reshape(len(copies), -1)
        scored = {a: float((row == labels).mean()) for a, row in zip(copies, predictions)}
        for a in args.amplitudes:
            deltas[a].append(scored[a] - scored[0])
        print(f"{name:22s} " + " ".join(f"{scored[a]:8.4f}" for a in copies) + f" {before_s:8.1f} {eval_s:6.2f}",
              flush=True)
    for a in args.amplitudes:
        print(f"amplitude {a}: mean change {np.mean(deltas[a]):+.4f}, largest drop {min(deltas[a]):+.4f} "
              f"(one standard error of an accuracy near 0.75 over {len(clean)} images: {np.sqrt(0.75 * 0.25 / len(clean)):.4f})")


if __name__ == "__main__":
    main()
